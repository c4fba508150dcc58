"""Registration glue for ``@hitl``; the implementation is :mod:`metaflow_hitl.plugin.decorator`.

``from metaflow import hitl`` is the usual import. ``from
metaflow_extensions.hitl.plugins.hitl_decorator import hitl`` keeps working for flows written
against earlier releases.
"""

from functools import partial

from metaflow.decorators import _base_step_decorator

from metaflow_hitl.plugin.decorator import HitlDecorator, HitlException, HitlRejected

#: The decorator function, same as ``metaflow.hitl``.
hitl = partial(_base_step_decorator, HitlDecorator)

__all__ = ["HitlDecorator", "HitlException", "HitlRejected", "hitl"]
