"""Argo Workflows: compile-time gates (pure transforms over the compiled template)."""
