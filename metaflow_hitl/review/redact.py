"""Keeping secrets out of what people see: URLs with credentials, tokens in text."""

from __future__ import annotations

import re

__all__ = ["redact"]

_USERINFO = re.compile(r"://[^/@\s]+@")


def redact(text: str) -> str:
    """Hide credentials embedded in URLs (``https://user:token@host`` -> ``https://***@host``)."""
    return _USERINFO.sub("://***@", str(text))
