"""Twilio's WhatsApp webhook forms, normalised: inbound messages and status callbacks."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from channels.base import DeliveryUpdate, InboundMessage, Profile
from channels.whatsapp.errors import failure_reason
from gateway.config import WhatsAppTemplateSettings
from gateway.inputs import media_type, parse_int
from gateway.model import Content, IdentityRef, Kind, Location, Media, MessageStatus
from gateway.vcards import VCARD_TYPES

CHANNEL = "whatsapp"
MAX_MEDIA = 10  # WhatsApp through Twilio carries at most ten files per message
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")

# Statuses before "sent" are still on Twilio's side: nothing to record for the operator.
STATUSES: Mapping[str, MessageStatus | None] = {
    "queued": None,
    "accepted": None,
    "scheduled": None,
    "sending": None,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "failed": MessageStatus.FAILED,
    "undelivered": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
}


class MalformedWebhook(ValueError):
    """A correctly signed webhook we cannot interpret; the message names the parameter."""


def whatsapp_number(address: str | None, parameter: str) -> str:
    """'whatsapp:+14155552671' -> '+14155552671'."""
    number = (address or "").removeprefix("whatsapp:")
    if not address or not address.startswith("whatsapp:") or not _E164.match(number):
        raise MalformedWebhook(f"{parameter} must be a whatsapp:+E.164 address, got {address!r}")
    return number


def media_kind(content_type: str) -> Kind:
    """What a customer's file is, from its MIME type."""
    mime = content_type.split(";", 1)[0].strip().lower()
    major = mime.partition("/")[0]
    if mime in VCARD_TYPES:
        return Kind.CONTACT
    if major in ("image", "video"):
        return Kind.IMAGE if major == "image" else Kind.VIDEO
    if mime == "audio/ogg":  # WhatsApp records voice notes as Opus in Ogg
        return Kind.VOICE
    return Kind.AUDIO if major == "audio" else Kind.FILE


def parse_inbound(form: Mapping[str, str], account: str) -> InboundMessage:
    """One customer message from Twilio's incoming-message webhook."""
    message_id = _required(form, "MessageSid")
    number = whatsapp_number(form.get("From"), "From")
    media = _media(form, account)
    location = _location(form)
    text = form.get("ButtonText") or form.get("Body", "")
    payload = form.get("ButtonPayload") or None
    if media:
        kind = media_kind(media[0].mime_type or "")
        if form.get("MessageType") == "sticker":
            kind = Kind.STICKER
    elif location is not None:
        kind = Kind.LOCATION
    else:
        kind = Kind.TEXT if text or payload else Kind.UNSUPPORTED
    wa_id = form.get("WaId", "")
    return InboundMessage(
        sender=IdentityRef(CHANNEL, account, number),
        message_id=message_id,
        content=Content(kind, text, media, location, reply_to=form.get("OriginalRepliedMessageSid") or None),
        profile=Profile(
            display_name=form.get("ProfileName") or None,
            phone="+" + wa_id if wa_id.isascii() and wa_id.isdigit() else number,
            phone_verified=True,
        ),
        payload=payload,
    )


def parse_status(
    form: Mapping[str, str], account: str, templates: Sequence[WhatsAppTemplateSettings]
) -> DeliveryUpdate | None:
    """A delivery report from a status callback; None for statuses that change nothing for us."""
    message_id = _required(form, "MessageSid")
    raw = _required(form, "MessageStatus").lower()
    status = STATUSES.get(raw)
    if status is None:
        return None
    error = error_code = None
    if status is MessageStatus.FAILED:
        error_code = form.get("ErrorCode") or None
        error = failure_reason(error_code, form.get("ChannelStatusMessage") or None, raw, templates)
    return DeliveryUpdate(
        channel=CHANNEL,
        account=account,
        channel_message_id=message_id,
        status=status,
        error=error,
        error_code=error_code,
    )


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise MalformedWebhook(f"{name} is missing")
    return value


def _media(form: Mapping[str, str], account: str) -> tuple[Media, ...]:
    raw = form.get("NumMedia") or "0"
    try:
        count = parse_int(raw, low=0, high=MAX_MEDIA)
    except ValueError:
        raise MalformedWebhook(f"NumMedia must be a number from 0 to {MAX_MEDIA}, got {raw[:20]!r}") from None
    media = []
    for index in range(count):
        url = form.get(f"MediaUrl{index}")
        if not url or not url.startswith(("https://", "http://")):
            raise MalformedWebhook(f"MediaUrl{index} is missing or not a URL")
        media.append(
            Media(source=CHANNEL, account=account, ref=url, mime_type=media_type(form.get(f"MediaContentType{index}")))
        )
    return tuple(media)


def _location(form: Mapping[str, str]) -> Location | None:
    if "Latitude" not in form and "Longitude" not in form:
        return None
    try:
        latitude, longitude = float(form.get("Latitude", "")), float(form.get("Longitude", ""))
    except ValueError:
        raise MalformedWebhook("Latitude and Longitude must both be numbers") from None
    if not (
        math.isfinite(latitude) and math.isfinite(longitude) and -90 <= latitude <= 90 and -180 <= longitude <= 180
    ):
        raise MalformedWebhook(f"no place on Earth is at {latitude}, {longitude}")
    return Location(
        latitude=latitude, longitude=longitude, title=form.get("Label") or None, address=form.get("Address") or None
    )
