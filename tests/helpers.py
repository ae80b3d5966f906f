"""Small helpers shared by tests: API auth, waiting for events, a widget socket client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType, web
from aiohttp.test_utils import TestClient

from channels.base import InboundMessage, Profile
from gateway.keys import BUS
from gateway.model import Content, IdentityRef, Kind, SharedContact
from operators.keys import MIRROR_QUEUE

API_TOKEN = "test-api-token-0123456789"
WIDGET_SECRET = "test-widget-secret-0123456789"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}

# Ann, one person writing from two channels (a valid number: phonenumbers rejects +1 555 numbers).
PHONE = "+14155552671"
TELEGRAM = IdentityRef("telegram", "support", "5001")
WHATSAPP = IdentityRef("whatsapp", "+14155550000", PHONE)


def inbound(sender: IdentityRef, message_id: str, text: str = "hello", **kw: Any) -> InboundMessage:
    """A customer message as a channel hands it to the hub."""
    content = Content(kw.pop("kind", Kind.TEXT), text, shared_contact=kw.pop("shared_contact", None))
    return InboundMessage(sender=sender, message_id=message_id, content=content, **kw)


def from_whatsapp(message_id: str, text: str = "hi from WhatsApp") -> InboundMessage:
    """What the WhatsApp channel hands over: the sender's number, verified."""
    return inbound(WHATSAPP, message_id, text, profile=Profile(display_name="Ann", phone=PHONE, phone_verified=True))


def telegram_share(message_id: str = "5001:share") -> InboundMessage:
    """What the Telegram channel hands over when a user shares their own contact."""
    return inbound(
        TELEGRAM,
        message_id,
        "",
        kind=Kind.CONTACT,
        shared_contact=SharedContact(name="Ann Lee", phones=("14155552671",), user_id="5001"),
        profile=Profile(display_name="Ann Lee", phone="14155552671", phone_verified=True),
    )


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`base` with `override` merged in, nested tables key by key."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def collect(app: web.Application, event_type: type) -> list[Any]:
    """Every event of this type published from now on, in order."""
    seen: list[Any] = []

    async def record(event: Any) -> None:
        seen.append(event)

    app[BUS].subscribe(event_type, record)
    return seen


async def eventually(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Poll until `check` returns something truthy (background retries, callbacks); a bound, not a timing."""
    for _ in range(1000):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def settle(app: web.Application) -> None:
    """Wait until every published event has been handled, and the supervisors' mirror has caught up."""
    while True:
        await app[BUS].drain()
        mirror = app.get(MIRROR_QUEUE)
        if mirror is None or mirror.idle:
            return
        await mirror.drain()


class Widget:
    """A widget visitor speaking the WebSocket protocol, as the browser script does."""

    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self.ws = ws
        self.token: str | None = None
        self.history: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, client: TestClient, headers: dict[str, str] | None = None) -> Widget:
        """A socket that has not said hello yet."""
        return cls(
            await client.ws_connect("/channels/webwidget/ws", headers=headers or {"Origin": "https://shop.example"})
        )

    @classmethod
    async def connect(cls, client: TestClient, token: str | None = None, **hello: Any) -> Widget:
        headers = hello.pop("headers", {"Origin": "https://shop.example"})
        widget = cls(await client.ws_connect("/channels/webwidget/ws", headers=headers))
        await widget.hello(token, **hello)
        return widget

    async def hello(self, token: str | None = None, page: dict[str, Any] | None = None, **extra: Any) -> dict:
        frame: dict[str, Any] = {
            "type": "hello",
            "page": page
            or {"url": "https://shop.example/pricing", "title": "Pricing", "referrer": "https://search.example/"},
        }
        if token is not None:
            frame["visitor_token"] = token
        await self.ws.send_json(frame | extra)
        welcome = await self.expect("welcome")
        self.token = welcome["visitor_token"]
        self.history = welcome["history"]
        return welcome

    async def say(self, text: str, client_id: str) -> dict:
        await self.ws.send_json({"type": "message", "text": text, "client_id": client_id})
        return await self.expect("ack")

    async def expect(self, frame_type: str, timeout: float = 5.0) -> dict:
        """The next frame of this type (frames of other types before it are dropped)."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.ws.receive_json()
                if frame.get("type") == frame_type:
                    return frame

    async def frames_until(self, frame_type: str, timeout: float = 5.0) -> list[dict]:
        """Every frame received up to and including the next one of this type."""
        frames = []
        async with asyncio.timeout(timeout):
            while not frames or frames[-1].get("type") != frame_type:
                frames.append(await self.ws.receive_json())
        return frames

    async def closed(self, timeout: float = 5.0) -> int | None:
        """The code of the close the server sends next (frames before it are dropped)."""
        async with asyncio.timeout(timeout):
            while (await self.ws.receive()).type not in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                pass
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()
