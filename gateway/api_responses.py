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
from gateway.privacy import Export
from gateway.storage.duplicates import Duplicate, DuplicateStatus
from gateway.storage.erasures import ErasureRecord
from gateway.storage.merges import MergeRecord, MergeStatus


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


class RatingOut(Output):
    """The customer's satisfaction rating of a closed conversation."""

    score: int = Field(ge=1, le=5, description="1 (poor) to 5 (excellent).")
    comment: str | None
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
    erased_at: datetime | None = Field(description="When its customer was erased: only its timings are left.")
    csat: RatingOut | None = Field(description="The customer's rating, once they rated the conversation.")


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


class MediaLinkOut(Output):
    """A file of a stored message, with a link to fetch it through the gateway."""

    message_id: str
    index: int = Field(description="Which file of the message (from 0).")
    source: str = Field(description="Where the file lives: the channel it came through, or the operator bot.")
    mime_type: str | None
    size: int | None
    name: str | None
    url: str = Field(description="A signed gateway link to the file, valid for 24 hours.")


class ThreadExportOut(ThreadOut):
    """A conversation with all its messages (and their delivery statuses), oldest first."""

    messages: list[MessageOut]


class MergeOut(Output):
    """A merge that kept or merged away one of the person's cards."""

    number: int
    kept_id: str
    other_id: str
    status: MergeStatus
    reason: str
    by: int | None = Field(description="The operator who merged (null: the gateway itself).")
    created_at: datetime
    finished_at: datetime | None
    undone_at: datetime | None
    undone_by: int | None
    identities: list[str] = Field(description="The channel identities that moved, as channel:account:id.")
    card_before: dict[str, JsonValue] = Field(description="The merged-away card as it was: what an unmerge restores.")
    added: dict[str, JsonValue] = Field(description="What the merge added to the kept card: what an unmerge removes.")


class MatchOut(Output):
    kind: str = Field(description="phone or email.")
    value: str
    verified: bool
    unverified: bool


class DuplicateOut(Output):
    """A pair of cards the gateway found sharing a phone or an e-mail, and what was decided."""

    id: str
    contact_ids: list[str]
    status: DuplicateStatus
    matches: list[MatchOut]
    similarity: int | None = Field(description="How alike the two names are, 0-100.")
    created_at: datetime
    decided_by: int | None
    decided_at: datetime | None


class ExportOut(Output):
    """Everything the gateway stores about one person."""

    exported_at: datetime
    contact: ContactOut = Field(description="Their card: identities, phones, e-mails, attributes, notes, visitor data.")
    merged_cards: list[ContactOut] = Field(description="Cards merged into it, with what they still hold.")
    threads: list[ThreadExportOut]
    merges: list[MergeOut]
    duplicates: list[DuplicateOut]
    media: list[MediaLinkOut] = Field(description="Every file of their conversations.")


class LeftoverOut(Output):
    """Where some of the person's data stays that the gateway cannot delete."""

    place: str = Field(
        description="telegram, whatsapp, webwidget (the customer's side), operator_chats, forum_mirror, "
        "database_history."
    )
    detail: str
    count: int | None = Field(description="How many messages (or topics) it is about, when known.")


class ErasureOut(Output):
    """What an erasure did; asked again, the first erasure of the person is answered."""

    erasure_id: str
    contact_id: str = Field(description="The card the erasure was asked for.")
    contact_ids: list[str] = Field(description="Every card erased: the person's card and those merged into it.")
    already_erased: bool = Field(description="True when this request found the person erased already.")
    via: str = Field(description="api, operator_bot or retention.")
    by_operator: int | None = Field(description="The supervisor who erased from the operator bot.")
    started_at: datetime
    erased_at: datetime | None
    cards: int
    threads: int = Field(description="Conversations kept as timings only (for the KPIs), with no personal data.")
    messages: int = Field(description="Messages deleted, with their files' references.")
    duplicates: int = Field(description="Duplicate candidates deleted.")
    merges: int = Field(description="Merge records stripped of what moved.")
    not_deleted: list[LeftoverOut] = Field(description="What the gateway could not delete, and where it is.")


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
        erased_at=_utc(thread.erased_at),
        csat=RatingOut(score=thread.csat.score, comment=thread.csat.comment, at=_at(thread.csat.at))
        if thread.csat
        else None,
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


def merge_out(merge: MergeRecord) -> MergeOut:
    """A merge record as an export shows it."""
    return MergeOut(
        number=merge.number,
        kept_id=str(merge.kept_id),
        other_id=str(merge.other_id),
        status=merge.status,
        reason=merge.reason,
        by=merge.by,
        created_at=_at(merge.created_at),
        finished_at=_utc(merge.finished_at),
        undone_at=_utc(merge.undone_at),
        undone_by=merge.undone_by,
        identities=list(merge.identities),
        card_before={str(k): _json(v) for k, v in merge.other_before.items()},
        added={str(k): _json(v) for k, v in merge.added.items()},
    )


def duplicate_out(duplicate: Duplicate) -> DuplicateOut:
    """A duplicate candidate as an export shows it."""
    return DuplicateOut(
        id=str(duplicate.id),
        contact_ids=[str(i) for i in duplicate.contact_ids],
        status=duplicate.status,
        matches=[
            MatchOut(kind=m.kind, value=m.value, verified=m.verified, unverified=m.unverified)
            for m in duplicate.matches
        ],
        similarity=duplicate.similarity,
        created_at=_at(duplicate.created_at),
        decided_by=duplicate.decided_by,
        decided_at=_utc(duplicate.decided_at),
    )


def export_out(export: Export) -> ExportOut:
    """Everything stored about a person, as one document."""
    return ExportOut(
        exported_at=_at(export.exported_at),
        contact=contact_out(export.contact),
        merged_cards=[contact_out(c) for c in export.merged],
        threads=[
            ThreadExportOut(**thread_out(t.thread).model_dump(), messages=[message_out(m) for m in t.messages])
            for t in export.threads
        ],
        merges=[merge_out(m) for m in export.merges],
        duplicates=[duplicate_out(d) for d in export.duplicates],
        media=[
            MediaLinkOut(
                message_id=str(link.message_id),
                index=link.index,
                source=link.media.source,
                mime_type=link.media.mime_type,
                size=link.media.size,
                name=link.media.name,
                url=link.url,
            )
            for link in export.media
        ],
    )


def erasure_out(record: ErasureRecord, *, already: bool) -> ErasureOut:
    """An erasure as the API answers it."""
    counts = record.counts
    return ErasureOut(
        erasure_id=str(record.id),
        contact_id=str(record.contact_id),
        contact_ids=[str(i) for i in record.contact_ids],
        already_erased=already,
        via=record.via,
        by_operator=record.by_operator,
        started_at=_at(record.started_at),
        erased_at=_utc(record.finished_at),
        cards=counts.get("cards", 0),
        threads=counts.get("threads", 0),
        messages=counts.get("messages", 0),
        duplicates=counts.get("duplicates", 0),
        merges=counts.get("merges", 0),
        not_deleted=[LeftoverOut(place=x.place, detail=x.detail, count=x.count) for x in record.leftovers],
    )
