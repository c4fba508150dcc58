"""Jinja2 templates shipped with metaflow-hitl (installed as ``metaflow_hitl.render.templates``)."""
