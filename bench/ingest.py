"""End-to-end ingest: widget visitors over real WebSockets into the gateway on the durable embedded engine.

Prints messages per second and the latency from sending a message to its ack (the ack comes after the
message is journaled and fsync'd). Uses MONGODB_URI instead of the embedded engine when it is set.

    python bench/ingest.py [visitors] [messages per visitor]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.config import parse_settings


async def visitor(session: ClientSession, url: str, messages: int, latencies: list[float]) -> None:
    async with session.ws_connect(url) as ws:
        await ws.send_json({"type": "hello", "page": {"url": "https://shop.example/", "title": "Shop"}})
        await ws.receive_json()
        for n in range(messages):
            started = time.perf_counter()
            await ws.send_json({"type": "message", "text": f"message {n}", "client_id": f"c{n}"})
            while (await ws.receive_json())["type"] != "ack":
                pass
            latencies.append(time.perf_counter() - started)


async def main(visitors: int, messages: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = parse_settings(
            {
                "storage": {
                    "uri": os.environ.get("MONGODB_URI", "embedded"),
                    "data_dir": data_dir,
                    "database": "bench_ingest",
                },
                "webwidget": {
                    "secret": "bench-widget-secret-0123456789",
                    "messages_per_minute": 100_000,
                    # every simulated visitor comes from 127.0.0.1
                    "messages_per_minute_per_ip": 1_000_000,
                    "frames_per_minute_per_ip": 1_000_000,
                    "visitors_per_minute_per_ip": 1_000,
                },
            },
            environ={},
        )
        server = TestServer(create_app(settings))
        await server.start_server()
        url = str(server.make_url("/channels/webwidget/ws"))
        latencies: list[float] = []
        try:
            async with ClientSession() as session:
                started = time.perf_counter()
                await asyncio.gather(*(visitor(session, url, messages, latencies) for _ in range(visitors)))
                elapsed = time.perf_counter() - started
        finally:
            await server.close()
    total = visitors * messages
    latencies.sort()
    print(f"ingest over WebSockets, {settings.storage.uri} storage, {visitors} visitors x {messages} messages")
    print(f"  {total} messages in {elapsed:.2f} s = {total / elapsed:,.0f} messages/s")
    print(
        f"  ack latency p50={statistics.median(latencies) * 1000:.1f} ms "
        f"p99={latencies[int(len(latencies) * 0.99) - 1] * 1000:.1f} ms"
    )


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*(args + [50, 40][len(args) :])))
