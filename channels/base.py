"""What every channel adapter implements, and what it may ask of the gateway core."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from aiohttp import web

from gateway.model import Author, Content, IdentityRef, Media, Message, MessageStatus

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.http import HttpClient


@dataclass(frozen=True)
class Profile:
    """What a channel knows about the person behind an identity."""

    display_name: str | None = None
    username: str | None = None
    language: str | None = None
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    # The channel vouches that `phone` is this person's own number (WhatsApp sender,
    # a Telegram share of the user's own contact).
    phone_verified: bool = False
    # The customer typed the phone and e-mail themselves (the widget's identify): nobody vouches for them.
    typed: bool = False
    visitor: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class InboundMessage:
    """One message from a customer, normalised by its channel.

    `message_id` is unique within (channel, account): Telegram ids are prefixed with the
    chat id, because Telegram numbers messages per chat.
    """

    sender: IdentityRef
    message_id: str
    content: Content
    profile: Profile = field(default_factory=Profile)
    edit_of: str | None = None
    forwarded_from: str | None = None
    payload: str | None = None
    client_id: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True)
class OutboundMessage:
    """A stored outbound message, handed to the channel of its recipient."""

    message_id: str
    thread_number: int
    recipient: IdentityRef
    content: Content
    author: Author = Author.OPERATOR
    author_name: str | None = None
    created_at: datetime | None = None
    # When the customer last wrote on this identity (WhatsApp's 24-hour window).
    last_inbound_at: datetime | None = None
    # The gateway's id of the customer's message this one answers (`content.reply_to` is the channel's own).
    quoted_id: str | None = None


@dataclass(frozen=True)
class SentRef:
    """What a channel reports after a successful hand-over."""

    channel_message_id: str | None
    status: MessageStatus = MessageStatus.SENT


@dataclass(frozen=True)
class DeliveryUpdate:
    """A delivery report for an outbound message (Twilio status callback, widget read)."""

    channel: str
    account: str
    channel_message_id: str
    status: MessageStatus
    error: str | None = None
    error_code: str | None = None
    # Set when the recipient reports it themselves (the widget's read): only their own messages are marked.
    identity: str | None = None


class SendError(Exception):
    """A send that did not go through, with a reason an operator can act on.

    `code` is short and stable (blocked, window_closed, too_large, rate_limited,
    bad_request, unavailable, unsupported); `permanent` failures are not retried;
    `unreachable` marks the identity as one we can no longer write to.
    """

    def __init__(
        self,
        reason: str,
        *,
        code: str,
        permanent: bool = False,
        unreachable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.permanent = permanent
        self.unreachable = unreachable
        self.retry_after = retry_after


class ChannelCapabilityError(SendError):
    """The channel cannot do this at all (e.g. a voice note to a web page)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, code="unsupported", permanent=True)


class HostUnavailable(Exception):
    """The gateway cannot store anything right now: leave the input unacknowledged, so it is delivered again."""


class ChannelHost(Protocol):
    """The narrow part of the core a channel may call."""

    async def on_inbound(self, message: InboundMessage) -> Message | None:
        """Store an inbound message (idempotently) and route it; returns the stored message.

        Raises HostUnavailable when storage is down; any other exception means the input is not understood.
        """

    async def on_delivery(self, update: DeliveryUpdate) -> None:
        """Record a delivery report (HostUnavailable as on_inbound)."""

    async def on_waiting(self, message_id: str, seconds: float, reason: str) -> None:
        """Say that the send of an outbound message (OutboundMessage.message_id) is held up for about `seconds`,
        and why (flood control), so that its author sees it; never raises."""

    async def on_rating(self, sender: IdentityRef, thread: int | None, score: int, comment: str | None) -> int | None:
        """Store the customer's 1-5 rating of thread #thread (None: their last one); returns the number of the thread
        rated, None when they were not asked to rate it (HostUnavailable as on_inbound). Rating again is no error:
        the first rating stays."""

    async def on_unreadable(self, source: str, reason: str, payload: str) -> None:
        """Keep an input the channel accepted but cannot understand, with the reason (a dead letter)."""

    async def on_profile(self, sender: IdentityRef, profile: Profile, *, create: bool = False) -> bool:
        """Update what we know about a person; returns whether a contact exists for them."""

    async def history(self, sender: IdentityRef, limit: int = 50) -> Sequence[Message]:
        """The customer-visible messages of this identity's contact, oldest first."""

    async def on_presence(self, sender: IdentityRef, activity: str, at: datetime | None = None) -> None:
        """A customer is typing, or left (their last window closed at `at`), or is back; shown to their
        operator, never raises."""

    async def fetch_media(self, media: Media) -> bytes:
        """The bytes of a file, fetched from whichever channel holds it."""

    async def run_alone(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run `work` in whichever single gateway process holds the lease `name` (this one, or another; if
        that one stops, this one may take over), until cancelled."""

    async def tell_peers(self, kind: str, payload: Mapping[str, Any]) -> None:
        """Hand a note to every other gateway process on this database (say, a reply for a socket one of them
        holds); never raises: a note that cannot be written is logged."""

    def listen_to_peers(self, kind: str, listener: Callable[[Mapping[str, Any]], Awaitable[None]]) -> None:
        """Call `listener` with the payload of every note of this kind another process sends."""


class Channel(ABC):
    """A messenger adapter: translates at the edge, hands inbound messages to the host."""

    name: ClassVar[str]
    # Whether a message the customer already has can be changed in place (see `edit`).
    can_edit: ClassVar[bool] = False
    # Whether delivery reports (`ChannelHost.on_delivery`) follow a send; they may come before its answer.
    reports_delivery: ClassVar[bool] = False

    def __init__(self, host: ChannelHost) -> None:
        self.host = host

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings, host: ChannelHost, http: HttpClient) -> Channel | None:
        """Build the channel from the settings, or None when its section is absent or disabled.

        `http` is the process's shared HTTP client, open once the channel starts.
        """

    def register(self, app: web.Application) -> None:
        """Add this channel's HTTP routes (called once, before the app starts)."""

    async def start(self) -> None:
        """Open sessions, check credentials, register webhooks."""

    async def close(self) -> None:
        """Release everything `start` opened."""

    def ready(self) -> bool:
        """Whether the channel can currently receive and send."""
        return True

    @abstractmethod
    async def send(self, message: OutboundMessage) -> SentRef:
        """Deliver one outbound message or raise SendError."""

    async def edit(self, message: OutboundMessage, channel_message_id: str | None) -> None:
        """Change the customer's copy of a delivered message to `message.content` or raise SendError.

        `channel_message_id` is what `send` reported for it. Only channels with `can_edit` implement it.
        """
        raise ChannelCapabilityError(f"{self.name} cannot change a message once it is sent")

    async def fetch_media(self, media: Media) -> bytes:
        """Download a file this channel holds a reference to."""
        raise ChannelCapabilityError(f"{self.name} cannot download files")


def text_fallback(content: Content) -> str:
    """The content as plain text, for channels that cannot show a rich part of it."""
    parts = [content.text] if content.text else []
    if content.location:
        loc = content.location
        label = ", ".join(p for p in (loc.title, loc.address) if p)
        link = f"https://maps.google.com/?q={loc.latitude},{loc.longitude}"
        parts.append(f"📍 {label} {link}".replace("  ", " ") if label else f"📍 {link}")
    parts.extend(" ".join(p for p in (f"📎 {m.name or m.mime_type or 'file'}", m.url) if p) for m in content.media)
    parts.extend(f"{number}. {button.text}" for number, button in enumerate(content.buttons, 1))
    return "\n".join(parts)
