"""What the REST API answers: pydantic models of its responses, built from the thread model by explicit converters.

They show what an integrator needs and nothing of the gateway's own bookkeeping (identity keys, delivery
attempts, file references, merge locks, forum topics).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, Field, JsonValue, RootModel

from gateway.model import (
    Author,
    Contact,
    Direction,
    Identity,
    Kind,
    Media,
    Message,
    MessageStatus,
    Note,
    Thread,
    ThreadStatus,
    Transfer,
)


class Output(BaseModel):
    """A response body."""

    model_config = ConfigDict(extra="forbid")


class ErrorOut(Output):
    """What went wrong; `field` names the parameter or body field at fault (null: the request as a whole)."""

    error: str
    field: str | None = None


class TransferOut(Output):
    from_operator: int | None
    to_operator: int | None
    to_group: str | None
    comment: str | None
    by: int | None
    at: datetime


class ThreadOut(Output):
    """One conversation with one customer on one channel."""

    id: str
    number: int
    contact_id: str
    channel: str
    status: ThreadStatus
    open: bool
    operator_id: int | None = Field(description="The operator's Telegram user id, while assigned.")
    group: str | None
    unread: int
    created_at: datetime
    last_message_at: datetime
    queued_at: datetime | None
    assigned_at: datetime | None
    first_assigned_at: datetime | None
    first_response_at: datetime | None
    closed_at: datetime | None
    closed_by: int | None
    previous_thread_id: str | None = Field(description="The customer's thread before this one.")
    transfers: list[TransferOut]


class ThreadList(Output):
    threads: list[ThreadOut]


class MediaOut(Output):
    """A file attached to a message (its content is not served by the API)."""

    mime_type: str | None
    size: int | None
    name: str | None
    duration: int | None = Field(description="Seconds, for audio and video.")


class LocationOut(Output):
    latitude: float
    longitude: float
    title: str | None
    address: str | None


class SharedContactOut(Output):
    name: str | None
    phones: list[str]
    user_id: str | None


class ButtonOut(Output):
    text: str
    payload: str


class NoticeOut(Output):
    """A note the gateway wrote: a text key and its values, for the reader to phrase in their language."""

    key: str
    values: dict[str, str | int | float | bool | None]


class MessageOut(Output):
    """A message in a thread: from the customer (in), to them (out), or a note for operators (internal)."""

    id: str
    thread_id: str
    contact_id: str
    direction: Direction
    author: Author
    author_id: int | None
    author_name: str | None
    channel: str
    channel_message_id: str | None = Field(description="The message's id on its channel, once known.")
    status: MessageStatus
    created_at: datetime
    sent_at: datetime | None
    edited_at: datetime | None
    edits: list[str] = Field(description="Earlier texts of an edited message, oldest first.")
    error: str | None = Field(description="Why delivery failed.")
    error_code: str | None
    kind: Kind
    text: str
    media: list[MediaOut]
    location: LocationOut | None
    shared_contact: SharedContactOut | None
    buttons: list[ButtonOut]
    reply_to: str | None = Field(description="The id of the message this one answers.")
    forwarded_from: str | None
    payload: str | None = Field(description="The payload of the button the customer pressed.")
    notice: NoticeOut | None


class MessageList(Output):
    messages: list[MessageOut]


class IdentityOut(Output):
    """How the contact is reached on one channel."""

    channel: str
    external_id: str = Field(description="Their id there: a Telegram user id, a WhatsApp number, a widget visitor.")
    username: str | None
    display_name: str | None
    reachable: bool
    unreachable_reason: str | None
    last_inbound_at: datetime | None


class NoteOut(Output):
    author_id: int | None
    author_name: str | None
    text: str
    created_at: datetime


class PageOut(Output):
    url: str | None
    title: str | None
    at: datetime | None


class VisitorOut(Output):
    """What the widget saw of a website visitor."""

    url: str | None = None
    title: str | None = None
    referrer: str | None = None
    language: str | None = None
    browser: str | None = None
    os: str | None = None
    device: str | None = None
    user_agent: str | None = None
    ip: str | None = None
    updated_at: datetime | None = None
    pages: list[PageOut] = []


class ContactOut(Output):
    """One person, whichever channels they write from."""

    id: str
    name: str | None
    display_name: str = Field(description="The best name known: given, shown on a channel, or a phone.")
    phones: list[str] = Field(description="E.164.")
    verified_phones: list[str] = Field(description="Phones a channel vouched for.")
    unverified: list[str] = Field(description="Phones and e-mails only the customer typed (in the widget).")
    other_phones: list[str] = Field(description="Numbers as given that are not valid phone numbers.")
    emails: list[str]
    identities: list[IdentityOut]
    attributes: dict[str, JsonValue]
    attribute_conflicts: dict[str, JsonValue] = Field(description="Values that disagreed when cards were merged.")
    notes: list[NoteOut]
    blocked: bool
    merged_into: str | None = Field(description="Set when this card was merged into another one.")
    language: str | None
    visitor: VisitorOut | None
    created_at: datetime
    updated_at: datetime


class ContactList(Output):
    contacts: list[ContactOut]


class OpenApiOut(RootModel[dict[str, Any]]):
    """An OpenAPI 3.1 document."""


# --- converters ----------------------------------------------------------------------------------


def _id(value: ObjectId | None) -> str | None:
    return None if value is None else str(value)


def _utc(value: datetime | None) -> datetime | None:
    # MongoDB hands back naive datetimes that are UTC; say so.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _at(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _json(value: Any) -> JsonValue:
    """A stored value as plain JSON (ids and times as strings)."""
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, datetime):
        return _at(value).isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _scalar(value: Any) -> str | int | float | bool | None:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def transfer_out(transfer: Transfer) -> TransferOut:
    """A thread's transfer as the API shows it."""
    return TransferOut(
        from_operator=transfer.from_operator,
        to_operator=transfer.to_operator,
        to_group=transfer.to_group,
        comment=transfer.comment,
        by=transfer.by,
        at=_at(transfer.at),
    )


def thread_out(thread: Thread) -> ThreadOut:
    """A thread as the API shows it."""
    return ThreadOut(
        id=str(thread.id),
        number=thread.number,
        contact_id=str(thread.contact_id),
        channel=thread.channel,
        status=thread.status,
        open=thread.open,
        operator_id=thread.operator_id,
        group=thread.group,
        unread=thread.unread,
        created_at=_at(thread.created_at),
        last_message_at=_at(thread.last_message_at),
        queued_at=_utc(thread.queued_at),
        assigned_at=_utc(thread.assigned_at),
        first_assigned_at=_utc(thread.first_assigned_at),
        first_response_at=_utc(thread.first_response_at),
        closed_at=_utc(thread.closed_at),
        closed_by=thread.closed_by,
        previous_thread_id=_id(thread.previous_thread_id),
        transfers=[transfer_out(t) for t in thread.transfers],
    )


def media_out(media: Media) -> MediaOut:
    """An attachment's description, without the channel's file reference."""
    return MediaOut(mime_type=media.mime_type, size=media.size, name=media.name, duration=media.duration)


def message_out(message: Message) -> MessageOut:
    """A message as the API shows it: its content's fields at the top level."""
    content = message.content
    location = content.location
    shared = content.shared_contact
    return MessageOut(
        id=str(message.id),
        thread_id=str(message.thread_id),
        contact_id=str(message.contact_id),
        direction=message.direction,
        author=message.author,
        author_id=message.author_id,
        author_name=message.author_name,
        channel=message.channel,
        channel_message_id=message.channel_message_id,
        status=message.status,
        created_at=_at(message.created_at),
        sent_at=_utc(message.sent_at),
        edited_at=_utc(message.edited_at),
        edits=list(message.edits),
        error=message.error,
        error_code=message.error_code,
        kind=content.kind,
        text=content.text,
        media=[media_out(m) for m in content.media],
        location=None
        if location is None
        else LocationOut(
            latitude=location.latitude, longitude=location.longitude, title=location.title, address=location.address
        ),
        shared_contact=None
        if shared is None
        else SharedContactOut(name=shared.name, phones=list(shared.phones), user_id=shared.user_id),
        buttons=[ButtonOut(text=b.text, payload=b.payload) for b in content.buttons],
        reply_to=content.reply_to,
        forwarded_from=message.forwarded_from,
        payload=message.payload,
        notice=None
        if message.notice is None
        else NoticeOut(key=message.notice.key, values={k: _scalar(v) for k, v in message.notice.values.items()}),
    )


def identity_out(identity: Identity) -> IdentityOut:
    """A channel identity without the gateway's own keys."""
    return IdentityOut(
        channel=identity.channel,
        external_id=identity.external_id,
        username=identity.username,
        display_name=identity.display_name,
        reachable=identity.reachable,
        unreachable_reason=identity.unreachable_reason,
        last_inbound_at=_utc(identity.last_inbound_at),
    )


def note_out(note: Note) -> NoteOut:
    """An operator's note on a contact."""
    return NoteOut(
        author_id=note.author_id, author_name=note.author_name, text=note.text, created_at=_at(note.created_at)
    )


def visitor_out(visitor: Mapping[str, Any]) -> VisitorOut:
    """The widget's view of a visitor; keys the API does not document are left out."""

    def text(key: str, source: Mapping[str, Any] = visitor) -> str | None:
        value = source.get(key)
        return value if isinstance(value, str) else None

    def at(value: Any) -> datetime | None:
        return _utc(value) if isinstance(value, datetime) else None

    pages = [p for p in visitor.get("pages") or () if isinstance(p, Mapping)]
    return VisitorOut(
        url=text("url"),
        title=text("title"),
        referrer=text("referrer"),
        language=text("language"),
        browser=text("browser"),
        os=text("os"),
        device=text("device"),
        user_agent=text("user_agent"),
        ip=text("ip"),
        updated_at=at(visitor.get("updated_at")),
        pages=[PageOut(url=text("url", p), title=text("title", p), at=at(p.get("at"))) for p in pages],
    )


def contact_out(contact: Contact) -> ContactOut:
    """A contact card as the API shows it."""
    return ContactOut(
        id=str(contact.id),
        name=contact.name,
        display_name=contact.display_name,
        phones=list(contact.phones),
        verified_phones=list(contact.verified_phones),
        unverified=list(contact.unverified),
        other_phones=list(contact.other_phones),
        emails=list(contact.emails),
        identities=[identity_out(i) for i in contact.identities],
        attributes={str(k): _json(v) for k, v in contact.attributes.items()},
        attribute_conflicts={str(k): _json(v) for k, v in contact.attribute_conflicts.items()},
        notes=[note_out(n) for n in contact.notes],
        blocked=contact.blocked,
        merged_into=_id(contact.merged_into),
        language=contact.language,
        visitor=None if contact.visitor is None else visitor_out(contact.visitor),
        created_at=_at(contact.created_at),
        updated_at=_at(contact.updated_at),
    )
