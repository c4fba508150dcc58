"""Registers metaflow-hitl with Metaflow: the ``@hitl`` step decorator and the ``hitl`` CLI."""

STEP_DECORATORS_DESC = [("hitl", ".hitl_step.HitlDecorator")]
CLIS_DESC = [("hitl", ".hitl_cli.cli")]
