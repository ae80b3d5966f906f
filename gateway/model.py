"""The thread model: contacts and their identities, threads, messages, operators."""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar, Union, cast, get_args, get_origin, get_type_hints

from bson import ObjectId


def utcnow() -> datetime:
    """Now in UTC, at the millisecond precision MongoDB stores."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Direction(StrEnum):
    IN = "in"
    OUT = "out"
    INTERNAL = "internal"


class Kind(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    FILE = "file"
    AUDIO = "audio"
    VIDEO = "video"
    VOICE = "voice"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACT = "contact"
    EVENT = "event"
    UNSUPPORTED = "unsupported"


class Author(StrEnum):
    CONTACT = "contact"
    OPERATOR = "operator"
    SYSTEM = "system"


class MessageStatus(StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


# Delivery reports arrive out of order; a status only ever moves up this ladder.
# A late "failed" cannot undo "delivered", but "delivered" after "failed" is believed.
STATUS_RANK = {
    MessageStatus.RECEIVED: 0,
    MessageStatus.QUEUED: 0,
    MessageStatus.SENT: 1,
    MessageStatus.FAILED: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.READ: 4,
}


class ThreadStatus(StrEnum):
    QUEUED = "queued"
    ASSIGNED = "assigned"
    CLOSED = "closed"


class OperatorStatus(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class Role(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"


@dataclass(frozen=True)
class IdentityRef:
    """Who a customer is on one channel: channel, account (bot, sender, site) and their id there."""

    channel: str
    account: str
    external_id: str

    @property
    def key(self) -> str:
        return f"{self.channel}:{self.account}:{self.external_id}"

    @classmethod
    def parse(cls, key: str) -> IdentityRef:
        """Inverse of `key`; the external id may itself contain ':'."""
        channel, account, external_id = key.split(":", 2)
        return cls(channel, account, external_id)


@dataclass(frozen=True)
class Media:
    """A file attached to a message; `ref` is the channel's own file reference."""

    source: str
    ref: str
    account: str | None = None
    mime_type: str | None = None
    size: int | None = None
    name: str | None = None
    url: str | None = None
    duration: int | None = None


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    title: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class SharedContact:
    """A contact card the customer shared (Telegram contact, WhatsApp vCard)."""

    name: str | None = None
    phones: tuple[str, ...] = ()
    user_id: str | None = None


@dataclass(frozen=True)
class Button:
    text: str
    payload: str


@dataclass(frozen=True)
class Template:
    """A pre-approved WhatsApp template: Twilio ContentSid plus its variables."""

    content_sid: str
    variables: Mapping[str, str] = field(default_factory=dict)
    name: str | None = None


@dataclass(frozen=True)
class Content:
    """What a message says, whichever way it travels: in from a channel, out to one, drafted or stored.

    `reply_to` names the message this one answers: the channel's own message id at the edge
    (InboundMessage, OutboundMessage), the stored message's id inside the gateway (Draft, Message).
    `quote` is the text the customer quoted, as their channel showed it (it may be a message we never stored).
    """

    kind: Kind = Kind.TEXT
    text: str = ""
    media: tuple[Media, ...] = ()
    location: Location | None = None
    shared_contact: SharedContact | None = None
    buttons: tuple[Button, ...] = ()
    template: Template | None = None
    reply_to: str | None = None
    quote: str | None = None
    # A question the channel asks in its own way: "rating:<thread number>" (the satisfaction survey, answered 1-5),
    # "comment" (answer this message with a comment) or "email" (leave an address for the answer).
    ask: str | None = None


@dataclass(frozen=True)
class Notice:
    """A note the gateway writes into a thread: a text key and its values, translated where it is shown."""

    key: str
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Identity:
    """One channel identity of a contact, as stored on the contact card."""

    key: str
    channel: str
    account: str
    external_id: str
    username: str | None = None
    display_name: str | None = None
    reachable: bool = True
    unreachable_reason: str | None = None
    last_inbound_at: datetime | None = None

    @property
    def ref(self) -> IdentityRef:
        return IdentityRef(self.channel, self.account, self.external_id)


@dataclass(frozen=True)
class Note:
    author_id: int | None
    author_name: str | None
    text: str
    created_at: datetime


@dataclass(frozen=True)
class Contact:
    id: ObjectId
    created_at: datetime
    updated_at: datetime
    name: str | None = None
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    # Numbers as typed that are not valid phone numbers: shown, never matched.
    other_phones: tuple[str, ...] = ()
    identities: tuple[Identity, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[Note, ...] = ()
    blocked: bool = False
    merged_into: ObjectId | None = None
    language: str | None = None
    visitor: Mapping[str, Any] | None = None
    # Phones a channel vouched for (the WhatsApp sender, a Telegram share of the user's own number).
    verified_phones: tuple[str, ...] = ()
    # Phones and e-mails only the customer typed (in the widget): shown and matched as unverified.
    unverified: tuple[str, ...] = ()
    # Attribute values that disagreed when cards were merged: name -> every value (this card's first).
    attribute_conflicts: Mapping[str, Any] = field(default_factory=dict)
    # Set while a merge holds the card (gateway.merge): messages for it then take the careful path.
    merge_lock: ObjectId | None = None
    # Set while the card is being erased (gateway.privacy): its identities start fresh cards.
    erase_id: ObjectId | None = None
    # When the card gained a phone or e-mail not yet checked for duplicates (gateway.duplicates); None once checked.
    unchecked_since: datetime | None = None

    @property
    def merging(self) -> bool:
        """Merged away, or held by a merge in progress: where its messages belong must be checked."""
        return self.merged_into is not None or self.merge_lock is not None

    def identity(self, key: str) -> Identity | None:
        return next((i for i in self.identities if i.key == key), None)

    @property
    def display_name(self) -> str:
        """The best name we have for this person."""
        if self.name:
            return self.name
        for identity in self.identities:
            if identity.display_name:
                return identity.display_name
        for identity in self.identities:
            if identity.username:
                return "@" + identity.username
        return self.phones[0] if self.phones else (self.emails[0] if self.emails else "Visitor")


@dataclass(frozen=True)
class Transfer:
    from_operator: int | None
    to_operator: int | None
    to_group: str | None
    comment: str | None
    by: int | None
    at: datetime


@dataclass(frozen=True)
class Rating:
    """The customer's satisfaction rating of a closed thread (CSAT)."""

    score: int
    at: datetime
    comment: str | None = None
    # The message that asked for a comment (Telegram): a reply to it is the comment.
    prompt_id: ObjectId | None = None


@dataclass(frozen=True)
class Thread:
    id: ObjectId
    number: int
    contact_id: ObjectId
    channel: str
    identity: str
    status: ThreadStatus
    created_at: datetime
    last_message_at: datetime
    open: bool = True
    operator_id: int | None = None
    group: str | None = None
    unread: int = 0
    assigned_at: datetime | None = None
    first_assigned_at: datetime | None = None
    queued_at: datetime | None = None
    first_response_at: datetime | None = None
    closed_at: datetime | None = None
    closed_by: int | None = None
    previous_thread_id: ObjectId | None = None
    busy_notice_sent: bool = False
    transfers: tuple[Transfer, ...] = ()
    # Set when a merge closed this thread and moved its messages into another one.
    joined_into: ObjectId | None = None
    # Its topic in the supervisors' forum supergroup, once the conversation is mirrored there.
    topic_chat_id: int | None = None
    topic_id: int | None = None
    # Set when its customer's data was erased: only the conversation's timings are left.
    erased_at: datetime | None = None
    # A widget visitor's last window opened, and (while none is open) when the last one closed.
    visitor_seen_at: datetime | None = None
    visitor_left_at: datetime | None = None
    # The satisfaction survey: when the customer was asked, and their answer.
    csat_asked_at: datetime | None = None
    csat: Rating | None = None

    @property
    def identity_ref(self) -> IdentityRef:
        return IdentityRef.parse(self.identity)


@dataclass(frozen=True)
class Message:
    id: ObjectId
    thread_id: ObjectId
    contact_id: ObjectId
    direction: Direction
    author: Author
    channel: str
    created_at: datetime
    status: MessageStatus
    # Stored flat: the content's fields are top-level fields of the message document.
    content: Content = field(default=Content(), metadata={"flatten": True})
    account: str | None = None
    identity: str | None = None
    channel_message_id: str | None = None
    author_id: int | None = None
    author_name: str | None = None
    forwarded_from: str | None = None
    payload: str | None = None
    error: str | None = None
    error_code: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    edited_at: datetime | None = None
    edits: tuple[str, ...] = ()
    client_id: str | None = None
    notice: Notice | None = None
    # The gateway process that stored a customer message (gateway.leases): while it lives, relaying it is its job.
    stored_by: str | None = None
    # The language a customer message was detected in, and its translation for the operator (with [translation]).
    language: str | None = None
    translation: str | None = None
    translated_to: str | None = None
    # (chat, message id) of the note an operator chat shows while this message waits to be sent.
    wait_note: tuple[int, ...] | None = None
    # (chat, message id) of the operator's own message this one was sent from: where its delivery is shown.
    origin: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Operator:
    id: int
    name: str
    role: Role = Role.OPERATOR
    username: str | None = None
    groups: tuple[str, ...] = ()
    max_chats: int | None = None
    status: OperatorStatus = OperatorStatus.OFFLINE
    status_since: datetime | None = None
    last_assigned_at: datetime | None = None
    language: str | None = None
    active_thread_id: ObjectId | None = None
    active: bool = True
    # Open threads assigned to this operator; its length is the operator's load.
    chats: tuple[ObjectId, ...] = ()

    def capacity(self, default: int) -> int:
        return self.max_chats or default

    @property
    def is_supervisor(self) -> bool:
        return self.role is Role.SUPERVISOR


T = TypeVar("T")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def from_doc(cls: type[T], doc: Mapping[str, Any]) -> T:
    """Build a model dataclass from a MongoDB document, ignoring fields it does not know."""
    hints = _hints(cast(type, cls))
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.metadata.get("flatten"):
            values[f.name] = from_doc(hints[f.name], doc)
            continue
        key = "_id" if f.name == "id" else f.name
        if key in doc:
            values[f.name] = _convert(hints[f.name], doc[key])
    return cls(**values)


def to_doc(obj: Any) -> dict[str, Any]:
    """A model dataclass as a MongoDB document (enums as strings, `id` as `_id`)."""
    doc = _plain(obj)
    if "id" in doc:
        doc["_id"] = doc.pop("id")
    return doc


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        doc: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            plain = _plain(getattr(value, f.name))
            if f.metadata.get("flatten"):
                doc.update(plain)
            else:
                doc[f.name] = plain
        return doc
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _convert(hint: Any, value: Any) -> Any:
    """Turn a stored value back into the type the dataclass declares."""
    if value is None:
        return None
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        return _convert(args[0], value) if len(args) == 1 else value
    if origin is tuple:
        return tuple(_convert(get_args(hint)[0], v) for v in value)
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
            return from_doc(hint, value)
        if issubclass(hint, StrEnum):
            return hint(value)
    return value
