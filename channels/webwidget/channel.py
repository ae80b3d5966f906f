"""The website chat widget: a WebSocket per visitor tab, plus the widget's script and demo page."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web

from channels.base import Channel, ChannelHost, OutboundMessage, SentRef, text_fallback
from channels.webwidget.limits import Limits
from channels.webwidget.session import VisitorSession
from channels.webwidget.visitor import address_key, client_ip, describe_agent
from gateway.config import ServerSettings, Settings, WebWidgetSettings
from gateway.csat import asked_rating
from gateway.http import HttpClient
from gateway.model import Author, IdentityRef, MessageStatus, utcnow
from gateway.tasks import stop
from gateway.tokens import WIDGET_CHANNEL, VisitorTokens

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
# Close code the widget treats as "stop reconnecting": this site may not embed us.
FORBIDDEN = 4003
# aiohttp closes the socket (1009) for frames over its own limit; up to this much over ours, they get
# an error frame instead. aiohttp holds a frame whole, so the headroom is memory per socket.
FRAME_HEADROOM = 1 << 20
# How long a close waits for the peer's answer before the connection is dropped.
CLOSE_SECONDS = 2.0
# The note that carries a push to the other gateway processes, for tabs they hold.
PEER_PUSH = "webwidget.push"


class WebWidgetChannel(Channel):
    """Visitors chat from a web page; operator replies are pushed to every open tab of the visitor."""

    name = WIDGET_CHANNEL
    can_edit = True
    reports_delivery = True

    def __init__(self, host: ChannelHost, settings: WebWidgetSettings, server: ServerSettings) -> None:
        super().__init__(host)
        self.settings = settings
        self.server = server
        self.tokens = VisitorTokens(settings.secret)
        self.limits = Limits(settings)
        self._sockets: dict[str, set[VisitorSession]] = {}
        self._by_address: Counter[str] = Counter()
        # Every open socket, with its connection (to drop one that stopped reading).
        self._all: dict[web.WebSocketResponse, asyncio.Transport | None] = {}
        # Visitors whose last socket here closed: told "left" unless one opens again in time.
        self._leaving: dict[str, asyncio.Task[None]] = {}
        host.listen_to_peers(PEER_PUSH, self._from_peer)

    @classmethod
    def from_settings(cls, settings: Settings, host: ChannelHost, http: HttpClient) -> WebWidgetChannel | None:
        if settings.webwidget is None or not settings.webwidget.enabled:
            return None
        return cls(host, settings.webwidget, settings.server)

    def register(self, app: web.Application) -> None:
        app.router.add_get("/channels/webwidget/ws", self.websocket)
        app.router.add_get("/widget/widget.js", self.script)
        app.router.add_get("/widget/demo", self.demo)
        app.on_shutdown.append(self._close_sockets)

    async def start(self) -> None:
        # The user-agent parser compiles its rules on first use; do it before visitors arrive.
        await asyncio.to_thread(describe_agent, "Mozilla/5.0")

    async def close(self) -> None:
        await stop(*self._leaving.values())
        self._leaving.clear()

    async def send(self, message: OutboundMessage) -> SentRef:
        """Push to the visitor's open tabs; without one, the reply waits in their history."""
        text = _text(message)
        author: dict[str, Any] = (
            {"type": "system"}
            if message.author is Author.SYSTEM
            else {"type": "operator", "name": message.author_name or "Support"}
        )
        frame: dict[str, Any] = {
            "type": "message",
            "id": message.message_id,
            "text": text,
            "author": author,
            "created_at": message.created_at.isoformat() if message.created_at else None,
        }
        visitor = message.recipient.external_id
        if message.quoted_id:
            frame["reply_to"] = message.quoted_id
        if (rated := asked_rating(message.content.ask)) is not None:
            frame = {"type": "rating_request", "thread": rated, "id": message.message_id, "text": text}
        elif message.author is not Author.SYSTEM:
            # What an operator composes cannot be seen from Telegram: the widget shows them typing while the
            # reply is on its way (it hides that when the message lands).
            await self._push(visitor, {"type": "typing"})
        delivered = await self._push(visitor, frame)
        if message.content.ask == "email":
            await self._push(visitor, {"type": "email_request"})
        # The widget names the message by our id; its read frame comes back with it.
        status = MessageStatus.DELIVERED if delivered else MessageStatus.SENT
        return SentRef(channel_message_id=message.message_id, status=status)

    async def edit(self, message: OutboundMessage, channel_message_id: str | None) -> None:
        """An `edit` frame to the visitor's open tabs; the others find the new text in their history."""
        await self._push(
            message.recipient.external_id, {"type": "edit", "id": message.message_id, "text": _text(message)}
        )

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        """The widget protocol endpoint."""
        # Text arrives undecoded, so that invalid UTF-8 gets an error frame rather than a closed socket;
        # no compression: widget frames are small, and zlib state per socket is not.
        ws = web.WebSocketResponse(
            heartbeat=30,
            compress=False,
            max_msg_size=self.settings.max_frame_bytes + FRAME_HEADROOM,
            decode_text=False,
        )
        await ws.prepare(request)
        origin = request.headers.get("Origin")
        if origin and not self._origin_allowed(origin, request.host):
            logger.warning("widget connection from origin %r refused", origin[:200])
            await ws.send_json(
                {"type": "error", "code": "forbidden_origin", "message": "this site may not use the chat widget"}
            )
            await ws.close(code=FORBIDDEN, message=b"origin not allowed")
            return ws
        ip = client_ip(request, self.server.trusted_proxies)
        address = address_key(ip)
        if self._by_address[address] >= self.settings.sockets_per_ip:
            logger.warning("widget connection from %s refused: %d sockets open", address, self._by_address[address])
            await ws.send_json(
                {"type": "error", "code": "too_many_sockets", "message": "too many chat connections from here"}
            )
            await ws.close(code=WSCloseCode.OK, message=b"too many sockets")
            return ws
        self._by_address[address] += 1
        self._all[ws] = request.transport
        session = VisitorSession(
            ws,
            self.host,
            self.tokens,
            self.settings,
            describe_agent(request.headers.get("User-Agent", "")) | {"ip": ip},
            address=address,
            limits=self.limits,
            switchboard=self,
        )
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await session.handle(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await session.handle(msg.data, binary=True)
        except ConnectionError:
            logger.info("widget socket closed while being answered")
        finally:
            self._all.pop(ws, None)
            self._by_address[address] -= 1
            if self._by_address[address] <= 0:
                del self._by_address[address]
            if session.ref is not None:
                self.leave(session, session.ref.external_id)
        return ws

    async def script(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(
            STATIC / "widget.js",
            headers={
                "Content-Type": "application/javascript; charset=utf-8",
                "Cache-Control": "public, max-age=300",
                "Access-Control-Allow-Origin": "*",
            },
        )

    async def demo(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "demo.html", headers={"Content-Type": "text/html; charset=utf-8"})

    def _origin_allowed(self, origin: str, host: str) -> bool:
        allowed = self.settings.allowed_origins
        if "*" in allowed or origin.rstrip("/") in {o.rstrip("/") for o in allowed}:
            return True
        try:
            netloc = urlsplit(origin).netloc
        except ValueError:  # "http://[" and the like
            return False
        # The gateway's own pages (the demo) are always same-origin.
        return netloc == host

    def admit(self, session: VisitorSession, visitor_id: str) -> bool:
        """Count a socket among its visitor's; False when they already have `sockets_per_visitor` open."""
        sockets = self._sockets.setdefault(visitor_id, set())
        if session not in sockets and len(sockets) >= self.settings.sockets_per_visitor:
            return False
        sockets.add(session)
        if (leaving := self._leaving.pop(visitor_id, None)) is not None:
            leaving.cancel()
        return True

    def leave(self, session: VisitorSession, visitor_id: str) -> None:
        """No longer count a socket among its visitor's."""
        sockets = self._sockets.get(visitor_id)
        if sockets is not None:
            sockets.discard(session)
            if not sockets:
                del self._sockets[visitor_id]
                if session.ref is not None and visitor_id not in self._leaving:
                    task = asyncio.create_task(self._left(session.ref, utcnow()), name="widget-visitor-left")
                    self._leaving[visitor_id] = task

    async def _left(self, ref: IdentityRef, closed_at: datetime) -> None:
        """Tell the host a visitor left, unless a window of theirs opens (here or elsewhere) in time."""
        try:
            await asyncio.sleep(self.settings.left_after_seconds)
            if ref.external_id not in self._sockets:
                await self.host.on_presence(ref, "left", closed_at)
        finally:
            if self._leaving.get(ref.external_id) is asyncio.current_task():
                del self._leaving[ref.external_id]

    async def echo(self, source: VisitorSession, frame: dict[str, Any]) -> None:
        """Show a visitor's message in their other tabs too."""
        assert source.ref is not None
        await self._push(source.ref.external_id, frame, skip=source)

    async def _push(self, visitor_id: str, frame: dict[str, Any], skip: VisitorSession | None = None) -> bool:
        """Push to the visitor's tabs here and in every other gateway process; True if a tab here took it."""
        delivered = await self._push_here(visitor_id, frame, skip)
        await self.host.tell_peers(PEER_PUSH, {"visitor": visitor_id, "frame": frame})
        return delivered

    async def _from_peer(self, note: Mapping[str, Any]) -> None:
        visitor, frame = note.get("visitor"), note.get("frame")
        if isinstance(visitor, str) and isinstance(frame, dict):
            await self._push_here(visitor, frame)

    async def _push_here(self, visitor_id: str, frame: dict[str, Any], skip: VisitorSession | None = None) -> bool:
        sessions = [s for s in self._sockets.get(visitor_id, ()) if s is not skip and not s.ws.closed]
        delivered = await asyncio.gather(*(self._deliver(s.ws, frame) for s in sessions))
        return any(delivered)

    async def _deliver(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> bool:
        # A tab that stopped reading must not hold up the outbox or the visitor's other tabs.
        timeout = self.settings.push_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                await ws.send_json(frame)
        except ConnectionError:
            logger.info("widget socket closed while sending")
            return False
        except TimeoutError:
            logger.warning("widget socket not reading for %.1f s: dropped", timeout)
            # No close frame can reach a peer that does not read (and after a cancelled send, aiohttp's
            # writer cannot be drained again): drop the connection.
            transport = self._all.get(ws)
            if transport is not None:
                transport.abort()
            return False
        return True

    async def _close_sockets(self, app: web.Application) -> None:
        await asyncio.gather(*(_close(ws, WSCloseCode.GOING_AWAY, b"server shutdown") for ws in list(self._all)))


def _text(message: OutboundMessage) -> str:
    """What the widget shows of a message: its text, with what a web page cannot show as text."""
    content = message.content
    return content.text if not (content.media or content.location or content.buttons) else text_fallback(content)


async def _close(ws: web.WebSocketResponse, code: int, message: bytes) -> None:
    """Close a socket politely if the peer lets us in time; otherwise drop the connection."""
    # aiohttp closes the transport itself when a close is cut short.
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(CLOSE_SECONDS):
            await ws.close(code=code, message=message)
