"""The import path of earlier releases: ``from metaflow_extensions.hitl.plugins.hitl_decorator
import hitl, HitlException, HitlRejected``.

Metaflow registers ``@hitl`` from :mod:`.hitl_step`, not from here: a module that Metaflow
registers cannot be the first one a flow imports (importing it imports ``metaflow``, whose
plugin loader then finds that module half-initialised and fails with "Cannot locate
'HitlDecorator' class"). This one imports ``metaflow`` first, which registers ``@hitl``.
"""

from typing import Any

import metaflow  # noqa: F401 - registers @hitl (metaflow imports .hitl_step while it starts)

from metaflow_extensions.hitl.plugins.hitl_loader import implementation
from metaflow_extensions.hitl.plugins.hitl_step import HitlDecorator, hitl

# HitlException and HitlRejected are importable too (module __getattr__, below).
__all__ = ["HitlDecorator", "hitl"]


def __getattr__(name: str) -> Any:
    # HitlException and HitlRejected are the implementation's; imported when asked for.
    if name in ("HitlException", "HitlRejected"):
        return getattr(implementation("plugin.decorator", f"{name} was imported"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
