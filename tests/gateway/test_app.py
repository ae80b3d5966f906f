"""The app as a whole: health, readiness, metrics, logs with context, surviving a restart."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app, make_runner
from gateway.keys import STORE
from tests.helpers import AUTH, Widget, eventually, settle


async def test_health_and_readiness(gateway: TestClient) -> None:
    assert await (await gateway.get("/healthz")).json() == {"status": "ok"}
    ready = await gateway.get("/readyz")
    assert ready.status == 200
    body = await ready.json()
    assert body | {"peers": None} == {"ready": True, "storage": True, "channels": {"webwidget": True}, "peers": None}

    async def peers() -> str | None:
        return (await (await gateway.get("/readyz")).json())["peers"]

    # The embedded engine has change streams: other processes' notes come through one.
    assert await eventually(peers, "the process follows the others' notes") == "change stream"


async def test_readiness_fails_when_storage_is_gone(gateway: TestClient) -> None:
    await gateway.app[STORE].close()
    ready = await gateway.get("/readyz")
    assert ready.status == 503 and (await ready.json())["storage"] is False


async def test_metrics_count_messages_and_open_threads(gateway: TestClient) -> None:
    widget = await Widget.connect(gateway)
    await widget.say("one", "c-1")
    await widget.say("two", "c-2")
    number = (await (await gateway.get("/api/v1/threads", headers=AUTH)).json())["threads"][0]["number"]
    await gateway.post(f"/api/v1/threads/{number}/messages", headers=AUTH, json={"text": "reply"})

    response = await gateway.get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    assert 'gateway_messages_in_total{channel="webwidget"} 2.0' in text
    assert 'gateway_messages_out_total{channel="webwidget"} 1.0' in text
    assert "gateway_open_threads 1.0" in text
    assert 'gateway_ingest_seconds_count{channel="webwidget"} 2.0' in text


async def test_logs_carry_thread_number_and_channel(gateway: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        widget = await Widget.connect(gateway)
        await widget.say("hello", "c-1")
        await settle(gateway.app)
    opened = next(r for r in caplog.records if "opened for contact" in r.getMessage())
    number = (await gateway.app[STORE].threads.find())[0].number
    assert opened.context == {"channel": "webwidget", "thread": number}


async def test_conversation_survives_a_gateway_restart(aiohttp_client: Any, make_settings: Any) -> None:
    settings = make_settings()
    first = await aiohttp_client(create_app(settings))
    widget = await Widget.connect(first)
    await widget.say("before the restart", "c-1")
    number = (await (await first.get("/api/v1/threads", headers=AUTH)).json())["threads"][0]["number"]
    await first.post(f"/api/v1/threads/{number}/messages", headers=AUTH, json={"text": "an answer"})
    token = widget.token
    await widget.close()
    await first.close()  # stops the app: the embedded engine writes its snapshot

    second = await aiohttp_client(create_app(settings))
    threads = (await (await second.get("/api/v1/threads", headers=AUTH)).json())["threads"]
    assert [t["number"] for t in threads] == [number]
    messages = (await (await second.get(f"/api/v1/threads/{number}/messages", headers=AUTH)).json())["messages"]
    assert [m["text"] for m in messages] == ["before the restart", "an answer"]
    again = await Widget.connect(second, token=token)
    assert [m["text"] for m in again.history] == ["before the restart", "an answer"]
    await again.say("after the restart", "c-2")
    assert await second.app[STORE].threads.collection.count_documents({}) == 1


async def test_slow_clients_are_cut_off_and_a_client_gone_mid_body_is_no_error(
    make_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Headers not sent in time: the connection is closed. A body not sent in time: 408. A client gone: quiet."""
    settings = make_settings(server={"read_timeout": 0.3})
    runner = make_runner(create_app(settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # ... and the rest never comes
        async with asyncio.timeout(10):
            assert await reader.read() == b""  # closed by the server
        writer.close()

        path = "/api/v1/contacts/0123456789abcdef01234567"
        head = f"PATCH {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH['Authorization']}\r\n"
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"{head}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{".encode())
        async with asyncio.timeout(10):
            answer = await reader.read(4096)
        assert answer.startswith(b"HTTP/1.1 400 ") and b"not sent within 0.3 s" in answer  # the API answers 400
        writer.close()

        caplog.clear()
        caplog.set_level(logging.INFO)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"{head}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{".encode())
        await writer.drain()
        writer.close()  # gone with the body half sent
        async with asyncio.timeout(10):
            while not any("went away" in r.getMessage() for r in caplog.records):  # noqa: ASYNC110 - polls the log
                await asyncio.sleep(0.05)
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        await runner.cleanup()
