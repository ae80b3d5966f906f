"""One visitor's WebSocket: the widget protocol, validated frame by frame."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, Protocol

from aiohttp import WSCloseCode, web

from channels.base import ChannelHost, DeliveryUpdate, InboundMessage, Profile
from channels.webwidget.limits import Limits
from gateway.config import WebWidgetSettings
from gateway.contacts import normalize_email
from gateway.inputs import InputError, parse_json, text_problem
from gateway.model import Author, Content, Direction, IdentityRef, Kind, Message, MessageStatus
from gateway.tokens import VisitorTokens

logger = logging.getLogger(__name__)

# The protocol's frames nest two levels deep (hello.page); a little room for what clients add.
MAX_FRAME_DEPTH = 4
UNAVAILABLE = "the gateway cannot take this right now; try again shortly"
MAX_CLIENT_ID = 64
MAX_MESSAGE_ID = 64
# Longest accepted value of each string field. Page details and names over it are cut (still worth
# keeping); anything else over it is refused, since a cut e-mail, phone or language is a wrong one.
_LIMITS = {
    "url": 2048,
    "title": 512,
    "referrer": 2048,
    "language": 35,
    "name": 200,
    "phone": 40,
    "email": 254,
    "comment": 1000,
}


class FrameError(Exception):
    """A bad frame: answered with an error frame, changes nothing."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Switchboard(Protocol):
    """What a session needs from its channel: the open sockets of every visitor."""

    def admit(self, session: VisitorSession, visitor_id: str) -> bool:
        """Count this socket among the visitor's; False when they already have as many as allowed."""

    def leave(self, session: VisitorSession, visitor_id: str) -> None:
        """No longer count this socket among the visitor's."""

    async def echo(self, source: VisitorSession, frame: dict[str, Any]) -> None:
        """Show a frame in the visitor's other sockets."""


class VisitorSession:
    """Handles the frames of one socket on behalf of one visitor."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        host: ChannelHost,
        tokens: VisitorTokens,
        settings: WebWidgetSettings,
        client: Mapping[str, Any],
        *,
        address: str,
        limits: Limits,
        switchboard: Switchboard,
    ) -> None:
        self.ws = ws
        self.host = host
        self.tokens = tokens
        self.settings = settings
        self.visitor: dict[str, Any] = dict(client)
        self.address = address
        self.ref: IdentityRef | None = None
        self.language: str | None = None
        self._limits = limits
        self._switchboard = switchboard

    async def handle(self, data: bytes, *, binary: bool = False) -> None:
        """Process one frame; whatever it holds, the answer to a bad one is an error frame."""
        client_id = None
        try:
            # Charged before anything else, so that bad frames cost their sender as much as good ones.
            allowed = self._limits.frame(self.address, self.ref.external_id if self.ref else None)
            if binary:
                raise FrameError("bad_frame", "frames must be text: JSON objects")
            frame = self._decode(data)
            client_id = _client_id(frame)
            if not allowed:
                raise FrameError("rate_limited", "too many frames, slow down")
            if (problem := _unstorable(frame, "")) is not None:
                raise FrameError("bad_text", problem)
            await self._dispatch(frame, client_id)
        except FrameError as err:
            await self._refuse(err.code, err.message, client_id)
        except ConnectionError:
            raise
        except Exception:  # a bug or the hub in trouble: the visitor hears so, and the socket lives on
            logger.exception("widget frame could not be handled")
            await self._refuse("unavailable", UNAVAILABLE, client_id)

    def _decode(self, data: bytes) -> dict[str, Any]:
        limit = self.settings.max_frame_bytes
        if len(data) > limit:
            raise FrameError("too_large", f"frames are limited to {limit} bytes")
        try:
            # Capped in size and depth before parsing: json recurses once per level of nesting.
            frame = parse_json(data, max_bytes=limit, max_depth=MAX_FRAME_DEPTH)
        except InputError:
            raise FrameError(
                "bad_json", f"frames must be JSON in UTF-8, nested at most {MAX_FRAME_DEPTH} levels deep"
            ) from None
        if not isinstance(frame, dict):
            raise FrameError("bad_frame", "a frame is a JSON object with a string 'type'")
        return frame

    async def _dispatch(self, frame: dict[str, Any], client_id: str | None) -> None:
        kind = frame.get("type")
        if not isinstance(kind, str):
            raise FrameError("bad_frame", "a frame is a JSON object with a string 'type'")
        handler = self._handlers.get(kind)
        if handler is None:
            raise FrameError("unknown_type", f"unknown frame type {kind[:40]!r}")
        if kind != "hello" and self.ref is None:
            raise FrameError("hello_required", "send a hello frame first")
        await handler(self, frame, client_id)

    async def _refuse(self, code: str, message: str, client_id: str | None) -> None:
        error = {"type": "error", "code": code, "message": message}
        if client_id is not None:
            error["client_id"] = client_id
        await self.ws.send_json(error)

    async def _hello(self, frame: dict[str, Any], client_id: str | None) -> None:
        if self.ref is not None:
            raise FrameError("bad_state", "hello was already received on this socket")
        page = frame.get("page")
        if not isinstance(page, dict):
            raise FrameError("bad_frame", "hello needs a 'page' object with url, title and referrer")
        visitor = {key: _string(page, key, f"page.{key}", cut=True) for key in ("url", "title", "referrer")}
        language = _string(frame, "language")
        token = frame.get("visitor_token")
        if token is not None and not isinstance(token, str):
            raise FrameError("bad_frame", "'visitor_token' must be a string")
        ref = self.tokens.identity(token) if token is not None else None
        if ref is None:
            if token is not None:
                logger.info("widget hello with an invalid visitor token; issuing a new one")
            if not self._limits.new_visitor(self.address):
                raise FrameError("rate_limited", "too many new visitors from this address; try again in a minute")
            token, ref = self.tokens.issue()
        assert token is not None
        visitor_id = ref.external_id
        if not self._switchboard.admit(self, visitor_id):
            await self._refuse("too_many_sockets", "too many chat windows are open; close one and reload", client_id)
            await self.ws.close(code=WSCloseCode.OK, message=b"too many sockets")
            return
        known = self.visitor | {k: v for k, v in visitor.items() if v is not None}
        if language:
            known["language"] = language
        try:
            await self.host.on_profile(ref, Profile(language=language, visitor=known))
            history = await self.host.history(ref, self.settings.history_limit)
        except Exception:
            self._switchboard.leave(self, visitor_id)
            logger.exception("widget hello could not be answered")
            raise FrameError("unavailable", UNAVAILABLE) from None
        self.ref, self.language, self.visitor = ref, language, known
        await self.ws.send_json(
            {"type": "welcome", "visitor_token": token, "history": [message_frame(m) for m in history]}
        )
        await self.host.on_presence(ref, "back")

    async def _message(self, frame: dict[str, Any], client_id: str | None) -> None:
        if client_id is None:
            raise FrameError("bad_frame", f"a message needs a 'client_id' string of 1 to {MAX_CLIENT_ID} characters")
        text = frame.get("text")
        if not isinstance(text, str) or not text.strip():
            raise FrameError("bad_frame", "a message needs a non-empty 'text' string")
        if len(text) > self.settings.max_text_length:
            raise FrameError("too_large", f"messages are limited to {self.settings.max_text_length} characters")
        assert self.ref is not None
        if not self._limits.message(self.address, self.ref.external_id):
            raise FrameError("rate_limited", "too many messages, slow down")
        inbound = InboundMessage(
            sender=self.ref,
            # client ids are chosen by the browser, so scope them to the visitor.
            message_id=f"{self.ref.external_id}:{client_id}",
            content=Content(Kind.TEXT, text),
            client_id=client_id,
            profile=self._profile(),
        )
        try:
            stored = await self.host.on_inbound(inbound)
        except Exception:
            logger.exception("widget message could not be stored")
            stored = None
        if stored is None:
            raise FrameError("unavailable", "the message could not be stored; it will be re-sent")
        await self.ws.send_json({"type": "ack", "client_id": client_id, "id": str(stored.id)})
        await self._switchboard.echo(self, message_frame(stored))

    async def _page(self, frame: dict[str, Any], client_id: str | None) -> None:
        url = _string(frame, "url", cut=True)
        if not url:
            raise FrameError("bad_frame", "a page frame needs a 'url' string")
        known = self.visitor | {"url": url, "title": _string(frame, "title", cut=True)}
        assert self.ref is not None
        await self._learn(Profile(language=self.language, visitor=known))
        self.visitor = known

    async def _typing(self, frame: dict[str, Any], client_id: str | None) -> None:
        """Shown to the operator as Telegram's "typing…" (frames are rate-limited like any other)."""
        assert self.ref is not None
        await self.host.on_presence(self.ref, "typing")

    async def _read(self, frame: dict[str, Any], client_id: str | None) -> None:
        """The visitor saw a message: it is marked read, when it is one sent to them."""
        message_id = frame.get("id")
        if not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID:
            raise FrameError("bad_frame", "a read frame needs the 'id' of a message")
        assert self.ref is not None
        update = DeliveryUpdate(
            self.ref.channel, self.ref.account, message_id, MessageStatus.READ, identity=self.ref.key
        )
        try:
            await self.host.on_delivery(update)
        except Exception:  # a read mark is a courtesy: the socket and the chat go on without it
            logger.exception("widget read mark could not be stored")

    async def _identify(self, frame: dict[str, Any], client_id: str | None) -> None:
        name = _string(frame, "name", cut=True)
        phone = _string(frame, "phone")
        email = _string(frame, "email", code="invalid_email")
        if email and normalize_email(email) is None:
            raise FrameError("invalid_email", "that e-mail address does not look valid")
        if not (name or email or phone):
            raise FrameError("bad_frame", "identify needs a name, email or phone")
        # Typed by the visitor: nobody vouches for this phone or e-mail.
        profile = Profile(
            name=name, email=email, phone=phone, typed=True, language=self.language, visitor=dict(self.visitor)
        )
        await self._learn(profile, create=True)

    async def _rating(self, frame: dict[str, Any], client_id: str | None) -> None:
        score, thread = frame.get("score"), frame.get("thread")
        if type(score) is not int or not 1 <= score <= 5:
            raise FrameError("bad_frame", "a rating needs a 'score' from 1 to 5")
        if thread is not None and (type(thread) is not int or not 0 < thread < 10**12):
            raise FrameError("bad_frame", "'thread' must be the number its rating_request named")
        comment = _string(frame, "comment", cut=True)
        assert self.ref is not None
        try:
            rated = await self.host.on_rating(self.ref, thread, score, comment)
        except Exception:
            logger.exception("widget rating could not be stored")
            raise FrameError("unavailable", UNAVAILABLE) from None
        if rated is None:
            raise FrameError("not_asked", "there is no conversation of yours waiting for this rating")
        await self.ws.send_json({"type": "rated", "thread": rated})

    _handlers: ClassVar[dict[str, Callable[[VisitorSession, dict[str, Any], str | None], Awaitable[None]]]] = {
        "hello": _hello,
        "message": _message,
        "page": _page,
        "typing": _typing,
        "identify": _identify,
        "read": _read,
        "rating": _rating,
    }

    async def _learn(self, profile: Profile, *, create: bool = False) -> None:
        assert self.ref is not None
        try:
            await self.host.on_profile(self.ref, profile, create=create)
        except Exception:
            logger.exception("widget visitor details could not be stored")
            raise FrameError("unavailable", UNAVAILABLE) from None

    def _profile(self) -> Profile:
        return Profile(language=self.language, visitor=dict(self.visitor))


def message_frame(message: Message) -> dict[str, Any]:
    """A stored message as the widget shows it."""
    if message.direction is Direction.IN:
        author: dict[str, Any] = {"type": "visitor"}
    elif message.author is Author.SYSTEM:
        author = {"type": "system"}
    else:
        author = {"type": "operator", "name": message.author_name or "Support"}
    frame = {
        "type": "message",
        "id": str(message.id),
        "text": message.content.text,
        "author": author,
        "created_at": message.created_at.isoformat(),
    }
    if message.client_id:
        frame["client_id"] = message.client_id
    if message.content.reply_to and message.direction is Direction.OUT:
        frame["reply_to"] = message.content.reply_to
    return frame


def _client_id(frame: Mapping[str, Any]) -> str | None:
    """The frame's client_id when it is a usable one (echoed in answers), else None."""
    value = frame.get("client_id")
    if isinstance(value, str) and 0 < len(value) <= MAX_CLIENT_ID and value.strip() and not text_problem(value):
        return value
    return None


def _string(
    frame: Mapping[str, Any], key: str, path: str | None = None, *, cut: bool = False, code: str = "too_large"
) -> str | None:
    """A string field, stripped; None when absent, null or blank; FrameError when of another type or too long."""
    value = frame.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FrameError("bad_frame", f"'{path or key}' must be a string")
    value = value.strip()
    limit = _LIMITS[key]
    if len(value) > limit and not cut:
        raise FrameError(code, f"'{path or key}' is limited to {limit} characters")
    return value[:limit] or None


def _unstorable(value: Any, path: str) -> str | None:
    """Why some string in a parsed frame (a key or a value) cannot be stored, or None when all can."""
    if isinstance(value, str):
        problem = text_problem(value)
        return f"'{path[:80]}' {problem}" if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            if (problem := text_problem(key)) is not None:
                return f"a field name in '{path[:80] or 'the frame'}' {problem}"
            if (problem := _unstorable(item, f"{path}.{key}" if path else key)) is not None:
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (problem := _unstorable(item, f"{path}[{index}]")) is not None:
                return problem
    return None
