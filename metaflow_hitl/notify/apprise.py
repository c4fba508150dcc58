"""Notifications through Apprise: Slack, Teams, email, webhooks... from one URL each.

An :class:`AppriseNotifier` implements the :class:`~metaflow_hitl.ports.Notifier` port. It
sends a short plain-text title and body when a gate opens, when it is still pending at a
reminder (``remind_every``), and when it is decided or times out, with deep links to the
review (pull request or issue), the Argo UI and the Metaflow UI.

A notification must never fail or block the gate: every URL is tried ``attempts`` times
with exponential backoff, then a failure is logged and returned in a
:class:`NotificationReport`; nothing is raised. Apprise URLs often embed tokens
(``slack://T000/B000/XXXX``), so a URL is only ever logged as its scheme (``slack://***``),
and the secret parts are also redacted from the ``apprise`` and ``urllib3.connectionpool``
loggers' own records.

The Argo UI link comes from ``METAFLOW_HITL_ARGO_UI_URL``
(:func:`~metaflow_hitl.argo.settings.argo_ui_link`), the Metaflow UI link from Metaflow's
``METAFLOW_UI_URL`` as ``{UI_URL}/{flow}/{run_id}`` (the run page Metaflow itself prints),
unless the request recorded its own ``links``.

Apprise is imported on first use (``pip install 'metaflow-hitl[notify]'``). URL syntax:
https://github.com/caronc/apprise/wiki
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from metaflow_hitl.argo.settings import argo_ui_link
from metaflow_hitl.durations import format_duration
from metaflow_hitl.errors import ConfigError
from metaflow_hitl.records import Decision, Reminder, Request
from metaflow_hitl.render.phrases import after_timeout
from metaflow_hitl.timestamps import format_ts

__all__ = [
    "APPRISE_URLS_ENV",
    "METAFLOW_UI_URL_ENV",
    "AppriseNotifier",
    "DeliveryReport",
    "NotificationReport",
    "notifier_from_setting",
    "redact_url",
]

#: The environment variable read by ``notifier="apprise"``: URLs separated by commas/spaces.
APPRISE_URLS_ENV = "METAFLOW_HITL_APPRISE_URLS"
#: Metaflow's own setting for its UI (``metaflow_config.UI_URL``): the Metaflow UI link base.
METAFLOW_UI_URL_ENV = "METAFLOW_UI_URL"
_ARGO_UI_URL_ENV = "METAFLOW_HITL_ARGO_UI_URL"  # read by argo_ui_link

_INSTALL_HINT = "Install the extra: pip install 'metaflow-hitl[notify]'"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,31})://")
# Split on commas/whitespace only where a new ``scheme://`` starts, so a comma inside a
# URL's query (``mailto://...?to=a@x.org,b@x.org``) stays in its URL.
_URL_SPLIT = re.compile(r"[\s,]+(?=[A-Za-z][A-Za-z0-9+.-]{0,31}://)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
_TITLE_MAX = 120
_LINE_MAX = 300
_MESSAGE_MAX = 600
_LINK_MAX = 2000
_BODY_MAX = 3000

Event = Literal["gate_opened", "gate_decided", "gate_reminded"]


def redact_url(url: str) -> str:
    """A URL safe to log: its scheme and ``***`` (``json://***``); ``***`` if no scheme."""
    match = _SCHEME.match(url) if isinstance(url, str) else None
    return f"{match.group(1).lower()}://***" if match else "***"


@dataclass(frozen=True, kw_only=True)
class DeliveryReport:
    """What happened to one notification at one URL.

    Parameters
    ----------
    url
        The redacted URL (``json://***``).
    delivered
        Whether Apprise reported success.
    attempts
        How many times it was tried.
    error
        Why the last attempt failed (never contains the URL), or None.
    """

    url: str
    delivered: bool
    attempts: int
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class NotificationReport:
    """What happened to one notification across all URLs."""

    event: Event
    gate_id: str
    deliveries: tuple[DeliveryReport, ...]
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True if every URL got the notification."""
        return self.error is None and all(d.delivered for d in self.deliveries)

    @property
    def failed(self) -> tuple[DeliveryReport, ...]:
        """The deliveries that failed after all attempts."""
        return tuple(d for d in self.deliveries if not d.delivered)


# ---------------------------------------------------------------------------------------
# Plain text


def _clean(text: object, limit: int, *, multiline: bool = False) -> str:
    """Printable text: control characters removed, whitespace tidied, at most ``limit``."""
    value = _CONTROL.sub("", str(text).replace("\r\n", "\n").replace("\t", " "))
    if not multiline:
        value = " ".join(value.split())
    else:
        lines = [" ".join(line.split()) for line in value.split("\n")]
        value = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def _link(value: object) -> str | None:
    """An http(s) link without whitespace or control characters, or None."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    if (
        not re.match(r"^https?://[^\s/]", url, re.IGNORECASE)
        or _CONTROL.search(url)
        or any(c.isspace() for c in url)
        or len(url) > _LINK_MAX
    ):
        return None
    return url


def _ui_base(value: object, name: str, what: str) -> str | None:
    """A UI base URL without its trailing slash; None if unset.

    Raises
    ------
    ConfigError
        If it is set but not an http(s) URL.
    """
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        return None
    base = text.rstrip("/")
    if _link(base) is None:
        raise ConfigError(
            f"{name}={_clean(text, 80)!r} is not an http(s) URL.",
            hint=f"Set it to {what}, or unset it for no link.",
        )
    return base


def _links(request: Request) -> list[str]:
    lines = []
    for label, value in (
        ("Review", request.review.get("url")),
        ("Argo UI", request.links.get("argo_ui")),
        ("Metaflow UI", request.links.get("metaflow_ui")),
    ):
        url = _link(value)
        if url:
            lines.append(f"{label}: {url}")
    return lines


def _when(value: datetime) -> str:
    try:
        return format_ts(value)
    except (ValueError, AttributeError):
        return _clean(value, 40)


def render_opened(request: Request) -> tuple[str, str]:
    """Title and plain-text body announcing a new gate."""
    gate = _clean(request.gate_id, 200)
    title = _clean(f"Approval needed: {gate}", _TITLE_MAX)
    approvers = ", ".join(_clean(a, 100) for a in request.approvers[:20]) or "(anyone allowed)"
    if len(request.approvers) > 20:
        approvers += f" and {len(request.approvers) - 20} more"
    then = after_timeout(request)
    lines = [
        _clean(request.message, _MESSAGE_MAX, multiline=True) or "(no message)",
        "",
        f"Gate: {gate}",
        f"Approvers: {approvers} ({request.min_approvals} approval"
        f"{'s' if request.min_approvals != 1 else ''} needed)",
        f"Started by: {_clean(request.started_by, 100)}",
        f"Expires: {_when(request.expires_at)}; if nobody decides by then, {then}.",
        *_links(request),
    ]
    return title, _clean("\n".join(lines), _BODY_MAX, multiline=True)


def render_reminded(request: Request, reminder: Reminder) -> tuple[str, str]:
    """Title and plain-text body of reminder ``reminder.number`` of a pending gate."""
    gate = _clean(request.gate_id, 200)
    lead = "Escalation" if reminder.escalated_to else f"Reminder {reminder.number}"
    title = _clean(f"{lead}: approval still needed: {gate}", _TITLE_MAX)
    waited = (reminder.due_at - request.created_at).total_seconds()
    approvers = ", ".join(_clean(a, 100) for a in request.approvers[:20]) or "(anyone allowed)"
    lines = [
        _clean(request.message, _MESSAGE_MAX, multiline=True) or "(no message)",
        "",
        f"Gate: {gate}",
        f"Still undecided {_clean(format_duration(waited), 40)} after it opened "
        f"(reminder {reminder.number}).",
        f"Approvers: {approvers}",
    ]
    if reminder.escalated_to:
        people = ", ".join(_clean(a, 100) for a in reminder.escalated_to[:20])
        lines.append(f"Escalated to: {people} (please decide or follow up)")
    lines.append(f"Expires: {_when(request.expires_at)}")
    lines += _links(request)
    return title, _clean("\n".join(lines), _BODY_MAX, multiline=True)


def render_decided(request: Request, decision: Decision) -> tuple[str, str]:
    """Title and plain-text body announcing a decision or an expiry."""
    gate = _clean(request.gate_id, 200)
    if decision.outcome == "timed_out":
        verdict = "Timed out (approved)" if decision.proceed else "Timed out (rejected)"
    else:
        verdict = "Approved" if decision.outcome == "approved" else "Rejected"
    who = ", ".join(a.login for a in decision.deciders) or decision.decided_by
    lines = [
        f"Outcome: {verdict}",
        f"Gate: {gate}",
    ]
    if decision.outcome != "timed_out":
        lines += [f"By: {_clean(who, _LINE_MAX)}", f"Channel: {_clean(decision.channel, 40)}"]
    if decision.reason:
        lines.append(f"Reason: {_clean(decision.reason, _LINE_MAX)}")
    lines.append(f"Decided at: {_when(decision.decided_at)}")
    lines.append(
        "The gated step runs." if decision.proceed else "The gated step does not run its body."
    )
    evidence = _link(decision.evidence_url)
    if evidence:
        lines.append(f"Evidence: {evidence}")
    lines += _links(request)
    title = _clean(f"{verdict}: {gate}", _TITLE_MAX)
    return title, _clean("\n".join(lines), _BODY_MAX, multiline=True)


# ---------------------------------------------------------------------------------------
# Secrets in the apprise logger's own records


class _RedactSecrets(logging.Filter):
    """Replaces registered URL secrets in third-party log records with ``***``."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: set[str] = set()

    def register(self, url: str) -> None:
        rest = _SCHEME.sub("", url, count=1)
        parts = {rest, rest.split("?", 1)[0]}
        parts.update(p for p in re.split(r"[/:@?&=#,]+", rest) if len(p) >= 6)
        with self._lock:
            self._secrets.update(p for p in parts if p)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        if not secrets:
            return True
        try:
            text = record.getMessage()
        except Exception:
            return True
        redacted = text
        for secret in secrets:
            redacted = redacted.replace(secret, "***")
        if redacted != text:
            record.msg, record.args = redacted, ()
        return True


_REDACTOR = _RedactSecrets()
_REDACTOR_INSTALLED = False


def _install_redactor() -> None:
    global _REDACTOR_INSTALLED
    if not _REDACTOR_INSTALLED:
        # Apprise's DEBUG records show the URL it posts to; urllib3's show the request line.
        for name in ("apprise", "urllib3.connectionpool"):
            logging.getLogger(name).addFilter(_REDACTOR)
        _REDACTOR_INSTALLED = True


def _import_apprise() -> Any:
    try:
        import apprise
    except ImportError:
        raise ConfigError(
            "Apprise notifications need the 'apprise' package, which is not installed.",
            hint=_INSTALL_HINT,
        ) from None
    return apprise


# ---------------------------------------------------------------------------------------
# The notifier


class AppriseNotifier:
    """Sends gate notifications to Apprise URLs; never raises from a notification.

    Parameters
    ----------
    urls
        Apprise URLs (``slack://...``, ``mailto://...``, ``json://host/path``...).
    attempts
        Tries per URL before giving up (at least 1).
    backoff
        Seconds before the first retry; doubled before each further retry.
    sleep
        Called to wait between tries (tests pass a no-op).
    logger
        Where failures are reported; ``metaflow_hitl.notify`` by default.
    metaflow_ui_url
        The Metaflow UI's base URL for the run link; default ``METAFLOW_UI_URL`` from
        ``environ`` (the Metaflow side may pass ``metaflow_config.UI_URL``, which also
        reads the Metaflow profile). No link without one.
    environ
        Where ``METAFLOW_UI_URL`` and ``METAFLOW_HITL_ARGO_UI_URL`` are read;
        ``os.environ`` by default.

    Raises
    ------
    ConfigError
        If Apprise is not installed, there is no URL, a URL is not one Apprise accepts,
        or a UI base URL is not an http(s) URL.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        attempts: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        logger: logging.Logger | None = None,
        metaflow_ui_url: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(urls, str):
            urls = [urls]
        urls = list(urls)
        if not urls:
            raise ConfigError(
                "No Apprise URL was given to notify.",
                hint=f"Pass notifier=['json://host/path', ...] or set {APPRISE_URLS_ENV}.",
            )
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ConfigError(f"attempts={attempts!r} must be an integer of at least 1.")
        if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or backoff < 0:
            raise ConfigError(f"backoff={backoff!r} must be a number of seconds >= 0.")
        self.attempts = attempts
        self.backoff = float(backoff)
        self._sleep = sleep
        self._log = logger or logging.getLogger("metaflow_hitl.notify")
        self._env = os.environ if environ is None else environ
        #: The Metaflow UI base URL (no trailing slash), or None for no Metaflow UI link.
        explicit = metaflow_ui_url is not None
        self.metaflow_ui_url = _ui_base(
            metaflow_ui_url if explicit else self._env.get(METAFLOW_UI_URL_ENV),
            "metaflow_ui_url" if explicit else METAFLOW_UI_URL_ENV,
            "the Metaflow UI's base URL, e.g. https://metaflow.example.com",
        )
        _ui_base(
            self._env.get(_ARGO_UI_URL_ENV),
            _ARGO_UI_URL_ENV,
            "the Argo UI's base URL, e.g. https://argo.example.com",
        )
        self._apprise = _import_apprise()
        _install_redactor()
        self._targets: list[tuple[str, Any]] = []
        #: The report of the latest notification, or None before the first.
        self.last_report: NotificationReport | None = None
        for index, url in enumerate(urls, 1):
            if not isinstance(url, str) or not _SCHEME.match(url.strip()):
                raise ConfigError(
                    f"Apprise URL #{index} "
                    f"({redact_url(url) if isinstance(url, str) else type(url).__name__})"
                    " is not a URL like 'scheme://...'.",
                    hint="See https://github.com/caronc/apprise/wiki for the URL of each service.",
                )
            url = url.strip()
            _REDACTOR.register(url)
            target = self._apprise.Apprise()
            if not target.add(url):
                raise ConfigError(
                    f"Apprise URL #{index} ({redact_url(url)}) is not one Apprise accepts: "
                    "unknown scheme or missing parts.",
                    hint="See https://github.com/caronc/apprise/wiki for the URL of each service.",
                )
            self._targets.append((redact_url(url), target))

    @property
    def urls(self) -> list[str]:
        """The redacted URLs (safe to print)."""
        return [label for label, _ in self._targets]

    def __repr__(self) -> str:
        return f"AppriseNotifier(urls={self.urls!r}, attempts={self.attempts})"

    def deep_links(self, request: Request) -> dict[str, str]:
        """The Argo UI and Metaflow UI links the settings give for ``request``'s run."""
        links: dict[str, str] = {}
        try:
            argo = argo_ui_link(request, self._env)
        except ConfigError as exc:  # the setting changed since __init__ checked it
            self._log.warning("hitl: no Argo UI link in the notification: %s", exc)
            argo = None
        if argo:
            links["argo_ui"] = argo
        if self.metaflow_ui_url:
            gate = request.gate_id
            # The run page, shaped as Metaflow prints it: {UI_URL}/{flow}/{run_id}.
            links["metaflow_ui"] = f"{self.metaflow_ui_url}/{gate.flow}/{gate.run_id}"
        return links

    def _with_links(self, request: Request) -> Request:
        """``request`` with :meth:`deep_links` added where it recorded none of its own."""
        found = self.deep_links(request)
        extra = {k: v for k, v in found.items() if not request.links.get(k)}
        return replace(request, links={**request.links, **extra}) if extra else request

    def gate_opened(self, request: Request) -> None:
        """Announce a new gate (the :class:`Notifier` port); see :attr:`last_report`."""
        self.notify_opened(request)

    def gate_decided(self, request: Request, decision: Decision) -> None:
        """Announce a decision or an expiry (the port); see :attr:`last_report`."""
        self.notify_decided(request, decision)

    def gate_reminded(self, request: Request, reminder: Reminder) -> None:
        """Remind people of a pending gate (the reminder port); see :attr:`last_report`."""
        self.notify_reminded(request, reminder)

    def notify_reminded(self, request: Request, reminder: Reminder) -> NotificationReport:
        """Send a reminder (an escalation from the third on); never raises."""
        return self._send(
            "gate_reminded",
            request,
            lambda: render_reminded(self._with_links(request), reminder),
            "warning",
        )

    def notify_opened(self, request: Request) -> NotificationReport:
        """Announce a new gate; return what was delivered where. Never raises."""
        return self._send(
            "gate_opened", request, lambda: render_opened(self._with_links(request)), "info"
        )

    def notify_decided(self, request: Request, decision: Decision) -> NotificationReport:
        """Announce a decision or an expiry; return what was delivered where. Never raises."""
        kind = {"approved": "success", "rejected": "failure"}.get(
            getattr(decision, "outcome", ""), "warning"
        )
        return self._send(
            "gate_decided",
            request,
            lambda: render_decided(self._with_links(request), decision),
            kind,
        )

    # -- internals ------------------------------------------------------------------------

    def _send(
        self,
        event: Event,
        request: Request,
        render: Callable[[], tuple[str, str]],
        kind: str,
    ) -> NotificationReport:
        gate = str(getattr(request, "gate_id", "?"))
        try:
            title, body = render()
        except Exception as exc:
            self._log.warning(
                "hitl: could not render the %s notification for %s (%s); nothing was sent.",
                event,
                gate,
                type(exc).__name__,
            )
            self.last_report = NotificationReport(
                event=event, gate_id=gate, deliveries=(), error=f"render failed: {exc}"
            )
            return self.last_report
        deliveries = tuple(self._deliver(label, t, title, body, kind) for label, t in self._targets)
        report = NotificationReport(event=event, gate_id=gate, deliveries=deliveries)
        self.last_report = report
        for failed in report.failed:
            self._log.warning(
                "hitl: %s notification for %s to %s failed after %d attempt(s): %s. "
                "The gate is not affected.",
                event,
                gate,
                failed.url,
                failed.attempts,
                failed.error,
            )
        return report

    def _deliver(self, label: str, target: Any, title: str, body: str, kind: str) -> DeliveryReport:
        error: str | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                ok = target.notify(
                    body=body,
                    title=title,
                    notify_type=kind,
                    body_format=self._apprise.NotifyFormat.TEXT,
                    interpret_escapes=False,
                )
            except Exception as exc:
                ok, error = False, f"{type(exc).__name__} in Apprise"
            else:
                error = None if ok else "the service did not accept it (see the apprise log)"
            if ok:
                if attempt > 1:
                    self._log.info(
                        "hitl: notification to %s delivered on attempt %d.", label, attempt
                    )
                return DeliveryReport(url=label, delivered=True, attempts=attempt)
            if attempt < self.attempts:
                self._log.info(
                    "hitl: notification to %s failed (attempt %d of %d); retrying.",
                    label,
                    attempt,
                    self.attempts,
                )
                try:
                    self._sleep(self.backoff * 2 ** (attempt - 1))
                except Exception:  # a sleep that fails must not fail the gate either
                    self._log.debug("hitl: backoff sleep failed", exc_info=True)
        return DeliveryReport(url=label, delivered=False, attempts=self.attempts, error=error)


# ---------------------------------------------------------------------------------------
# Settings


def _split_urls(text: str) -> list[str]:
    return [u for u in (p.strip(" ,\t\r\n") for p in _URL_SPLIT.split(text.strip())) if u]


def notifier_from_setting(
    value: object,
    *,
    environ: Mapping[str, str] | None = None,
    **options: Any,
) -> AppriseNotifier | None:
    """Resolve the decorator's ``notifier=`` option.

    ``None``
        No notifications.
    ``"apprise"``
        URLs from ``METAFLOW_HITL_APPRISE_URLS``, separated by commas or spaces.
    ``"slack://..."``
        One URL (several may be given, separated by commas or spaces before each scheme).
    ``["json://...", "mailto://..."]``
        A list of URLs.

    ``options`` (``attempts``, ``backoff``, ``sleep``, ``logger``) go to
    :class:`AppriseNotifier`.

    Raises
    ------
    ConfigError
        For anything else, an empty environment variable, or a URL Apprise does not accept.
    """
    if value is None:
        return None
    env = os.environ if environ is None else environ
    urls: list[str]
    if isinstance(value, str):
        if value.strip().lower() == "apprise":
            urls = _split_urls(env.get(APPRISE_URLS_ENV, ""))
            if not urls:
                raise ConfigError(
                    f"notifier='apprise' reads its URLs from {APPRISE_URLS_ENV}, which is "
                    "unset or empty.",
                    hint=f"export {APPRISE_URLS_ENV}='slack://TokenA/TokenB/TokenC' "
                    "(several URLs: separate them with commas or spaces)",
                )
        elif _SCHEME.match(value.strip()):
            urls = _split_urls(value)
        else:
            raise ConfigError(
                f"notifier={_clean(value, 60)!r} is not understood.",
                hint="Use notifier='apprise' (URLs from "
                f"{APPRISE_URLS_ENV}), an Apprise URL such as 'json://host/path', "
                "a list of URLs, or None.",
            )
    elif isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        urls = []
        for index, item in enumerate(value, 1):
            if not isinstance(item, str) or not item.strip():
                raise ConfigError(
                    f"notifier list item #{index} is {type(item).__name__}, not an Apprise "
                    "URL string.",
                    hint="Use a list of URLs such as ['json://host/path', 'mailto://...'].",
                )
            urls.append(item.strip())
        if not urls:
            raise ConfigError(
                "notifier=[] lists no Apprise URL.",
                hint="Give at least one URL, or notifier=None for no notifications.",
            )
    else:
        raise ConfigError(
            f"notifier must be None, 'apprise', an Apprise URL or a list of URLs, not "
            f"{type(value).__name__}.",
        )
    return AppriseNotifier(urls, environ=environ, **options)
