"""What Twilio's errors mean for the operator: reasons they can act on, and whether a retry helps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from twilio.base.exceptions import TwilioRestException, TwilioServiceException

from channels.base import SendError
from gateway.config import WhatsAppTemplateSettings
from gateway.inputs import parse_int

WINDOW_CLOSED = 63016
# Twilio's 20429 means too many concurrent requests: it clears as soon as ours in flight finish.
RATE_LIMIT_PAUSE = 1.0

_REASONS = {
    63003: "this number is not on WhatsApp",
    63018: "WhatsApp rate limit reached",
}
# Codes after which writing to this number again is pointless until the customer writes to us.
_UNREACHABLE = frozenset({21211, 21614, 63003})


def window_reason(templates: Sequence[WhatsAppTemplateSettings], last_inbound: str | None = None) -> str:
    """Why a free-form message cannot go out, and what the operator can send instead."""
    context = f" (the customer {last_inbound})" if last_inbound else ""
    if templates:
        hint = "send an approved template: " + ", ".join(t.name for t in templates)
    else:
        hint = "only an approved template may be sent, and none is configured ([[whatsapp.templates]])"
    return f"outside WhatsApp's 24-hour window{context}: {hint}"


def last_inbound_text(last_inbound_at: datetime | None, now: datetime) -> str:
    """'last wrote 2 days ago', for the window reason."""
    if last_inbound_at is None:
        return "has not written on WhatsApp yet"
    age = now - last_inbound_at
    if age < timedelta(hours=48):
        return f"last wrote {int(age.total_seconds() // 3600)} hours ago"
    return f"last wrote {age.days} days ago"


def failure_reason(
    code: str | None, detail: str | None, status: str, templates: Sequence[WhatsAppTemplateSettings]
) -> str:
    """The reason stored with a message Twilio reports as failed or undelivered."""
    try:
        number: int | None = parse_int(code or "", low=0)
    except ValueError:
        number = None
    if number == WINDOW_CLOSED:
        return window_reason(templates)
    if number in _REASONS:
        return _REASONS[number]
    if code:
        return f"Twilio error {code}" + (f": {detail}" if detail else "")
    return f"Twilio reported the message as {status}" + (f": {detail}" if detail else "")


def rest_error(
    err: TwilioRestException | TwilioServiceException, templates: Sequence[WhatsAppTemplateSettings]
) -> SendError:
    """A SendError for a create Twilio refused synchronously."""
    status, code = err.status, err.code
    detail = _detail(err)
    if status == 429 or code == 20429:
        return SendError(
            f"Twilio is rate limiting our requests ({code}); retrying shortly",
            code="rate_limited",
            retry_after=RATE_LIMIT_PAUSE,
        )
    if status == 401 or code == 20003:
        return SendError(
            "Twilio rejected the account credentials: check whatsapp.account_sid and whatsapp.auth_token",
            code="unavailable",
            permanent=True,
        )
    if code == WINDOW_CLOSED:
        return SendError(window_reason(templates), code="window_closed", permanent=True)
    if status >= 500:
        return SendError(f"Twilio is unavailable (HTTP {status}): {detail}", code="unavailable")
    reason = _REASONS.get(code) if isinstance(code, int) else None
    return SendError(
        reason or f"Twilio refused the message: {detail} (error {code})",
        code="bad_request",
        permanent=True,
        unreachable=code in _UNREACHABLE,
    )


def _detail(err: TwilioRestException | TwilioServiceException) -> str:
    if isinstance(err, TwilioServiceException):
        return err.detail or err.title
    return str(err.msg).removeprefix("Unable to create record: ")
