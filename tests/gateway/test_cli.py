"""The `gateway` command: embedded-db runs the engine alone, and keeps its data across restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from tests.embedded_mongo.processes import free_port

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
    port = free_port()
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


async def start_gateway(config: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "run", "--config", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


def gateway_config(tmp_path: Path, name: str, port: int) -> Path:
    config = tmp_path / f"{name}.toml"
    config.write_text(
        f'[server]\nport = {port}\n[storage]\ndata_dir = "{tmp_path / "data"}"\n[logging]\nlevel = "INFO"\n',
        encoding="utf-8",
    )
    return config


async def test_run_says_listening_once_bound_and_a_second_process_on_the_data_dir_is_refused_clearly(
    tmp_path: Path,
) -> None:
    port = free_port()
    first = await start_gateway(gateway_config(tmp_path, "first", port))
    try:
        assert first.stderr is not None
        async with asyncio.timeout(30):
            while b"listening on" not in (line := await first.stderr.readline()):
                assert line, "the gateway stopped before it was listening"
        # Said only once the socket is bound: it answers right away.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.0\r\n\r\n")
        assert b" 200 " in await reader.readline()
        writer.close()

        second = await start_gateway(gateway_config(tmp_path, "second", free_port()))
        _, errors = await asyncio.wait_for(second.communicate(), 30)
        assert second.returncode == 2
        assert b"second.toml: storage.data_dir:" in errors and b"in use by another process" in errors
        assert b"Traceback" not in errors
    finally:
        first.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(first.wait(), 30) == 0


async def test_a_killed_gateway_takes_its_engine_process_along_and_frees_the_data_dir(tmp_path: Path) -> None:
    async def listening(process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        async with asyncio.timeout(30):
            while b"listening on" not in (line := await process.stderr.readline()):
                assert line, "the gateway stopped before it was listening"

    first = await start_gateway(gateway_config(tmp_path, "first", free_port()))
    await listening(first)
    first.kill()  # no chance to stop its engine: the engine notices on its own
    await first.wait()
    second = await start_gateway(gateway_config(tmp_path, "second", free_port()))
    try:
        await listening(second)
    finally:
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 30) == 0
