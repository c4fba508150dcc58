"""Rendering a gate's message from the step's input artifacts.

The message is a Python format string written by the flow's author:
``"Accuracy {self.accuracy:.1%}: deploy?"``. ``self`` is the flow as the gated step sees it;
on a join step the step's inputs are reachable as ``inputs`` (``{inputs.train_a.score}`` or
``{inputs[0].score}``), as in the join step's own code.

A message that cannot be rendered is an error naming the missing artifact — never the raw
template, which would show approvers something other than what they are approving.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from typing import Any

from metaflow_hitl.errors import MessageRenderError

__all__ = ["MAX_MESSAGE_CHARS", "MissingArtifact", "render_message"]

#: Rendered messages longer than this are refused (they end up in PR titles and chat).
MAX_MESSAGE_CHARS = 20_000


class MissingArtifact(AttributeError):
    """Raised by artifact views for a name that is not there; carries what is."""

    def __init__(self, name: str, where: str, available: Iterable[str]) -> None:
        self.name = name
        self.where = where
        self.available = sorted(available)
        super().__init__(f"no artifact {name!r} in {where}")


def _fields(template: str) -> list[str]:
    try:
        return [f for _, f, _, _ in string.Formatter().parse(template) if f]
    except ValueError:
        return []


def render_message(template: str, *, step: str, **namespace: Any) -> str:
    """Format ``template`` with ``namespace`` (``self=flow``, ``inputs=...``).

    Parameters
    ----------
    template
        The decorator's ``message``.
    step
        The gated step's name, for error messages.
    **namespace
        The objects the template may reference.

    Returns
    -------
    str

    Raises
    ------
    MessageRenderError
        Naming the missing artifact (and what is available) or the formatting problem.
    """
    try:
        text = template.format(**namespace)
    except MissingArtifact as exc:
        avail = ", ".join(exc.available) or "none"
        raise MessageRenderError(
            f"the message references {exc.name!r}, which is not an artifact in {exc.where} "
            f"(available: {avail}). Message: {template!r}",
            hint="Set the artifact in an earlier step, or fix the name in the message.",
        ) from None
    except AttributeError as exc:
        name = getattr(exc, "name", None) or str(exc)
        raise MessageRenderError(
            f"the message could not be rendered: {name!r} is not available in the inputs of "
            f"step {step!r} ({exc}). Message: {template!r}",
            hint="Set the artifact in an earlier step, or fix the name in the message. On a "
            "join step, read artifacts through inputs: {inputs.STEP.NAME}.",
        ) from None
    except KeyError as exc:
        fields = ", ".join(_fields(template)) or "none"
        raise MessageRenderError(
            f"the message uses the name {exc.args[0]!r}, which is not defined; only self and "
            f"inputs are (fields: {fields}). Message: {template!r}",
            hint="Write {self.NAME} for an artifact, {inputs.STEP.NAME} on a join step.",
        ) from None
    except (ValueError, TypeError, IndexError) as exc:
        raise MessageRenderError(
            f"the message could not be rendered: {exc}. Message: {template!r}",
            hint="Check the format specs, e.g. {self.accuracy:.1%} needs a number.",
        ) from None
    if len(text) > MAX_MESSAGE_CHARS:
        raise MessageRenderError(
            f"the message renders to {len(text)} characters, over the {MAX_MESSAGE_CHARS} "
            f"limit. Message: {template!r}",
            hint="Summarise large artifacts in an earlier step and reference the summary.",
        )
    return text
