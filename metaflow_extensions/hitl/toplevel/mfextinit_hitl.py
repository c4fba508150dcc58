"""Top-level hook: ``from metaflow import hitl_version`` and the extension's version string."""

toplevel = "hitl_toplevel"
