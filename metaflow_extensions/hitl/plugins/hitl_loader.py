"""Loads metaflow-hitl's implementation only when a gate, the ``hitl`` command or the card
is used, and explains what is missing when it cannot.

Metaflow imports every installed extension's registration modules on each ``import
metaflow``, in every process, including pods that run a flow's code package
(``metaflow/extension_support/__init__.py``: the code package's INFO file lists the
extension, and the extension's files travel in the package). Those pods usually have only
what Metaflow's bootstrap installs (``boto3`` and ``requests``,
``metaflow/metaflow_environment.py::_get_install_dependencies_cmd``). So the glue under
``metaflow_extensions/hitl/`` imports nothing from :mod:`metaflow_hitl` (nor jsonschema,
jinja2 or git) at import time; this module does it on demand.
"""

import importlib
import importlib.util
from types import ModuleType

from metaflow.exception import MetaflowException

from metaflow_extensions.hitl.toplevel.hitl_toplevel import __version__

__all__ = ["HitlUnavailable", "implementation", "pip_command"]

#: Import name -> distribution for what the implementation imports, core first.
REQUIRED = (
    ("metaflow_hitl", "metaflow-hitl"),
    ("jsonschema", "jsonschema"),
    ("jinja2", "jinja2"),
    ("git", "gitpython"),
)


class HitlUnavailable(MetaflowException):
    """metaflow-hitl's implementation or one of its dependencies cannot be imported here."""

    headline = "@hitl"


def pip_command() -> str:
    """The install command for an image that runs gated flows, pinned to this release."""
    return f'pip install "metaflow-hitl[github,s3]=={__version__}"'


def _missing() -> list[str]:
    out = []
    for module, dist in REQUIRED:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(dist)
    return out


def implementation(module: str, needed_for: str) -> ModuleType:
    """Import ``metaflow_hitl.<module>`` or raise :class:`HitlUnavailable` saying why.

    Parameters
    ----------
    module : str
        The module under ``metaflow_hitl`` (``"plugin.decorator"``...).
    needed_for : str
        What needs it, for the message (``"step 'deploy' has a @hitl gate"``).

    Raises
    ------
    HitlUnavailable
        A package is missing, or the importable ``metaflow_hitl`` is another release than
        this glue (a stale copy in the image shadowing the code package's).
    """
    missing = _missing()
    if missing:
        raise HitlUnavailable(
            f"{needed_for}, but this Python environment lacks "
            f"{', '.join(missing)} (metaflow-hitl {__version__} needs metaflow-hitl, "
            "jsonschema, jinja2 and gitpython; PyGithub for github: reviews, boto3 for S3 "
            "stores, kubernetes for Argo resumes). Flows without @hitl need none of them. "
            f"Add them to the image the steps run in: {pip_command()}"
        )
    try:
        loaded = importlib.import_module(f"metaflow_hitl.{module}")
    except ImportError as exc:
        raise HitlUnavailable(
            f"{needed_for}, but metaflow-hitl could not be imported: "
            f"{type(exc).__name__}: {exc}. Install it in the image the steps run in: "
            f"{pip_command()}"
        ) from None
    found = getattr(importlib.import_module("metaflow_hitl"), "__version__", None)
    if found != __version__:
        root = importlib.import_module("metaflow_hitl")
        raise HitlUnavailable(
            f"{needed_for}, but the metaflow-hitl imported here is {found} "
            f"({getattr(root, '__file__', '?')}) while the flow was deployed with "
            f"{__version__}. Refusing to mix releases: install the deployer's release in the "
            f"image ({pip_command()}) or redeploy with the image's."
        )
    return loaded
