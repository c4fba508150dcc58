"""Notifier adapters: telling people a gate opened or was decided.

Implementations of :class:`~metaflow_hitl.ports.Notifier`. Each imports its client library
on first use, so importing this package costs nothing.
"""

from __future__ import annotations

from metaflow_hitl.notify.apprise import (
    APPRISE_URLS_ENV,
    AppriseNotifier,
    DeliveryReport,
    NotificationReport,
    notifier_from_setting,
    redact_url,
)

__all__ = [
    "APPRISE_URLS_ENV",
    "AppriseNotifier",
    "DeliveryReport",
    "NotificationReport",
    "notifier_from_setting",
    "redact_url",
]
