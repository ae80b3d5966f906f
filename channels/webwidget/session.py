"""One visitor's WebSocket: the widget protocol, validated frame by frame."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

from aiohttp import web

from channels.base import ChannelHost, InboundMessage, Profile
from gateway.config import WebWidgetSettings
from gateway.contacts import normalize_email
from gateway.model import Author, Content, Direction, IdentityRef, Kind, Message
from gateway.tokens import VisitorTokens

logger = logging.getLogger(__name__)

_LIMITS = {
    "url": 2048,
    "title": 512,
    "referrer": 2048,
    "language": 35,
    "name": 200,
    "phone": 40,
    "email": 254,
    "client_id": 64,
}


class FrameError(Exception):
    """A bad frame: answered with an error frame, changes nothing."""

    def __init__(self, code: str, message: str, client_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.client_id = client_id


class TokenBucket:
    """Allows `rate` events per minute with bursts up to `rate`."""

    def __init__(self, rate: int) -> None:
        self.capacity = float(rate)
        self.tokens = float(rate)
        self.per_second = rate / 60.0
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class VisitorSession:
    """Handles the frames of one socket on behalf of one visitor."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        host: ChannelHost,
        tokens: VisitorTokens,
        settings: WebWidgetSettings,
        client: Mapping[str, Any],
        on_identified: Callable[[VisitorSession], None],
        echo: Callable[[VisitorSession, dict[str, Any]], Awaitable[None]],
    ) -> None:
        self.ws = ws
        self.host = host
        self.tokens = tokens
        self.settings = settings
        self.visitor: dict[str, Any] = dict(client)
        self.ref: IdentityRef | None = None
        self.language: str | None = None
        self._on_identified = on_identified
        self._echo = echo
        self._messages = TokenBucket(settings.messages_per_minute)
        # Navigation, typing and identify frames are cheap but still limited.
        self._frames = TokenBucket(settings.messages_per_minute * 4)

    async def handle(self, data: str) -> None:
        """Process one text frame; any problem becomes an error frame."""
        try:
            await self._handle(data)
        except FrameError as err:
            frame = {"type": "error", "code": err.code, "message": err.message}
            if err.client_id:
                frame["client_id"] = err.client_id
            await self.ws.send_json(frame)

    async def _handle(self, data: str) -> None:
        if len(data.encode()) > self.settings.max_frame_bytes:
            raise FrameError("too_large", f"frames are limited to {self.settings.max_frame_bytes} bytes")
        try:
            frame = json.loads(data)
        except ValueError:
            raise FrameError("bad_json", "frames must be JSON") from None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise FrameError("bad_frame", "a frame is a JSON object with a string 'type'")
        kind = frame["type"]
        handler = self._handlers.get(kind)
        if handler is None:
            raise FrameError("unknown_type", f"unknown frame type {kind[:40]!r}")
        if kind != "hello" and self.ref is None:
            raise FrameError("hello_required", "send a hello frame first")
        bucket = self._messages if kind == "message" else self._frames
        if not bucket.take():
            raise FrameError("rate_limited", "too many frames, slow down", _text(frame, "client_id"))
        await handler(self, frame)

    async def _hello(self, frame: dict[str, Any]) -> None:
        if self.ref is not None:
            raise FrameError("bad_state", "hello was already received on this socket")
        page = frame.get("page")
        if not isinstance(page, dict):
            raise FrameError("bad_frame", "hello needs a 'page' object with url, title and referrer")
        visitor = {"url": _text(page, "url"), "title": _text(page, "title"), "referrer": _text(page, "referrer")}
        language = _text(frame, "language")
        token = frame.get("visitor_token")
        ref = self.tokens.identity(token) if isinstance(token, str) else None
        if ref is None:
            if token is not None:
                logger.info("widget hello with an invalid visitor token; issuing a new one")
            token, ref = self.tokens.issue()
        self.ref, self.language = ref, language
        self.visitor |= {k: v for k, v in visitor.items() if v is not None}
        if language:
            self.visitor["language"] = language
        await self.host.on_profile(ref, self._profile())
        history = await self.host.history(ref, self.settings.history_limit)
        self._on_identified(self)
        await self.ws.send_json(
            {"type": "welcome", "visitor_token": token, "history": [message_frame(m) for m in history]}
        )

    async def _message(self, frame: dict[str, Any]) -> None:
        client_id = _text(frame, "client_id")
        text = frame.get("text")
        if not client_id:
            raise FrameError("bad_frame", "a message needs a 'client_id' string")
        if not isinstance(text, str) or not text.strip():
            raise FrameError("bad_frame", "a message needs a non-empty 'text' string", client_id)
        if len(text) > self.settings.max_text_length:
            raise FrameError(
                "too_large", f"messages are limited to {self.settings.max_text_length} characters", client_id
            )
        assert self.ref is not None
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
            raise FrameError("unavailable", "the message could not be stored; it will be re-sent", client_id) from None
        if stored is None:
            raise FrameError("unavailable", "the message could not be stored; it will be re-sent", client_id)
        await self.ws.send_json({"type": "ack", "client_id": client_id, "id": str(stored.id)})
        await self._echo(self, message_frame(stored))

    async def _page(self, frame: dict[str, Any]) -> None:
        url = _text(frame, "url")
        if not url:
            raise FrameError("bad_frame", "a page frame needs a 'url' string")
        self.visitor |= {"url": url, "title": _text(frame, "title")}
        assert self.ref is not None
        await self.host.on_profile(self.ref, self._profile())

    async def _typing(self, frame: dict[str, Any]) -> None:
        """Accepted and rate-limited; operators are not shown visitor typing yet."""

    async def _identify(self, frame: dict[str, Any]) -> None:
        name, email, phone = _text(frame, "name"), _text(frame, "email"), _text(frame, "phone")
        if email and normalize_email(email) is None:
            raise FrameError("invalid_email", "that e-mail address does not look valid")
        if not (name or email or phone):
            raise FrameError("bad_frame", "identify needs a name, email or phone")
        assert self.ref is not None
        await self.host.on_profile(
            self.ref,
            Profile(name=name, email=email, phone=phone, language=self.language, visitor=self._visitor()),
            create=True,
        )

    _handlers: ClassVar[dict[str, Callable[[VisitorSession, dict[str, Any]], Awaitable[None]]]] = {
        "hello": _hello,
        "message": _message,
        "page": _page,
        "typing": _typing,
        "identify": _identify,
    }

    def _profile(self) -> Profile:
        return Profile(language=self.language, visitor=self._visitor())

    def _visitor(self) -> dict[str, Any]:
        return dict(self.visitor)


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
    return frame


def _text(frame: Mapping[str, Any], key: str) -> str | None:
    """A string field cut to its limit; None when absent or not a string."""
    value = frame.get(key)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[: _LIMITS.get(key, 1000)]
