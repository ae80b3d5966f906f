"""The `gateway` command: embedded-db runs the engine alone, and keeps its data across restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port
from pymongo import AsyncMongoClient

pytestmark = pytest.mark.skipif("MONGODB_URI" in os.environ, reason="runs the embedded engine itself")


async def start_engine(port: int, data_dir: Path) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "embedded-db",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    async with asyncio.timeout(30):
        while b"listening" not in await process.stdout.readline():
            pass
    return process


async def test_embedded_db_command_serves_and_keeps_data(tmp_path: Path) -> None:
    port = unused_port()
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    process = await start_engine(port, tmp_path / "db")
    try:
        client: AsyncMongoClient = AsyncMongoClient(uri)
        await client.shop.orders.insert_many([{"_id": n, "total": n * 10} for n in range(50)])
        await client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0

    process = await start_engine(port, tmp_path / "db")
    try:
        client = AsyncMongoClient(uri)
        assert await client.shop.orders.count_documents({}) == 50
        assert (await client.shop.orders.find_one({"_id": 7}))["total"] == 70
        await client.close()
    finally:
        process.kill()
        await process.wait()
