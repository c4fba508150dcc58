"""Registers metaflow-hitl with Metaflow: the ``@hitl`` step decorator and the ``hitl`` CLI."""

STEP_DECORATORS_DESC = [("hitl", ".hitl_decorator.HitlDecorator")]
CLIS_DESC = [("hitl", ".hitl_cli.cli")]
