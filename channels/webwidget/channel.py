"""The website chat widget: a WebSocket per visitor tab, plus the widget's script and demo page."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web

from channels.base import Channel, ChannelHost, OutboundMessage, SentRef, text_fallback
from channels.webwidget.session import VisitorSession
from channels.webwidget.visitor import client_ip, describe_agent
from gateway.config import ServerSettings, Settings, WebWidgetSettings
from gateway.http import HttpClient
from gateway.model import Author, MessageStatus
from gateway.tokens import WIDGET_CHANNEL, VisitorTokens

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
# Close code the widget treats as "stop reconnecting": this site may not embed us.
FORBIDDEN = 4003


class WebWidgetChannel(Channel):
    """Visitors chat from a web page; operator replies are pushed to every open tab of the visitor."""

    name = WIDGET_CHANNEL

    def __init__(self, host: ChannelHost, settings: WebWidgetSettings, server: ServerSettings) -> None:
        super().__init__(host)
        self.settings = settings
        self.server = server
        self.tokens = VisitorTokens(settings.secret)
        self._sockets: dict[str, set[VisitorSession]] = defaultdict(set)
        self._all: set[web.WebSocketResponse] = set()

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

    async def send(self, message: OutboundMessage) -> SentRef:
        """Push to the visitor's open tabs; without one, the reply waits in their history."""
        content = message.content
        text = content.text if not (content.media or content.location or content.buttons) else text_fallback(content)
        author: dict[str, Any] = (
            {"type": "system"}
            if message.author is Author.SYSTEM
            else {"type": "operator", "name": message.author_name or "Support"}
        )
        frame = {
            "type": "message",
            "id": message.message_id,
            "text": text,
            "author": author,
            "created_at": message.created_at.isoformat() if message.created_at else None,
        }
        delivered = await self._push(message.recipient.external_id, frame)
        return SentRef(channel_message_id=None, status=MessageStatus.DELIVERED if delivered else MessageStatus.SENT)

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        """The widget protocol endpoint."""
        # Frames over our own limit get an error frame; only absurd ones make aiohttp close the socket.
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=max(self.settings.max_frame_bytes * 4, 1 << 16))
        await ws.prepare(request)
        origin = request.headers.get("Origin")
        if origin and not self._origin_allowed(origin, request.host):
            logger.warning("widget connection from origin %s refused", origin)
            await ws.send_json(
                {"type": "error", "code": "forbidden_origin", "message": "this site may not use the chat widget"}
            )
            await ws.close(code=FORBIDDEN, message=b"origin not allowed")
            return ws
        client = describe_agent(request.headers.get("User-Agent", "")) | {
            "ip": client_ip(request, self.server.trusted_proxies)
        }
        session = VisitorSession(
            ws, self.host, self.tokens, self.settings, client, on_identified=self._remember, echo=self._echo
        )
        self._all.add(ws)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await session.handle(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await ws.send_json({"type": "error", "code": "bad_frame", "message": "frames must be text"})
        finally:
            self._all.discard(ws)
            if session.ref is not None:
                self._sockets[session.ref.external_id].discard(session)
                if not self._sockets[session.ref.external_id]:
                    del self._sockets[session.ref.external_id]
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
        # The gateway's own pages (the demo) are always same-origin.
        return urlsplit(origin).netloc == host

    def _remember(self, session: VisitorSession) -> None:
        assert session.ref is not None
        self._sockets[session.ref.external_id].add(session)

    async def _echo(self, source: VisitorSession, frame: dict[str, Any]) -> None:
        """Show a visitor's message in their other tabs too."""
        assert source.ref is not None
        await self._push(source.ref.external_id, frame, skip=source)

    async def _push(self, visitor_id: str, frame: dict[str, Any], skip: VisitorSession | None = None) -> bool:
        delivered = False
        for session in list(self._sockets.get(visitor_id, ())):
            if session is skip or session.ws.closed:
                continue
            try:
                await session.ws.send_json(frame)
                delivered = True
            except ConnectionError:
                logger.info("widget socket closed while sending")
        return delivered

    async def _close_sockets(self, app: web.Application) -> None:
        for ws in list(self._all):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
