"""EngineProcess: the engine in a child process, started and stopped by its parent, and gone with it."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from embedded_mongo import DataDirectoryInUseError, EngineProcess, EngineStartError

from .conftest import engine_only
from .processes import run_python

pytestmark = engine_only


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def gone(pid: int, seconds: float = 20.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if not alive(pid):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_serves_until_closed_and_keeps_what_it_acknowledged(tmp_path: Path) -> None:
    engine = EngineProcess(tmp_path / "db")
    await engine.start()
    pid = engine.pid
    assert pid is not None and pid != os.getpid()
    client: AsyncMongoClient = AsyncMongoClient(engine.uri)
    await client.shop.orders.insert_many([{"_id": n} for n in range(20)])
    await client.close()
    await engine.close()
    assert await gone(pid)
    with pytest.raises(RuntimeError, match="not started"):
        engine.uri  # noqa: B018

    async with EngineProcess(tmp_path / "db") as again:
        client = AsyncMongoClient(again.uri)
        assert await client.shop.orders.count_documents({}) == 20
        await client.close()


async def test_a_second_engine_on_the_same_data_is_refused_naming_the_first(tmp_path: Path) -> None:
    async with EngineProcess(tmp_path / "db") as first:
        with pytest.raises(DataDirectoryInUseError, match=f"in use by another process \\(process {first.pid}\\)"):
            await EngineProcess(tmp_path / "db").start()


async def test_an_engine_that_cannot_open_its_store_says_why(tmp_path: Path) -> None:
    (tmp_path / "db").write_text("a file, not a directory")
    with pytest.raises(EngineStartError, match=r"exited with code 1 before it listened: .*Error"):
        await EngineProcess(tmp_path / "db").start()


async def test_stops_when_its_parent_dies_and_frees_the_data(tmp_path: Path) -> None:
    code, output = await run_python(
        "import asyncio, os, signal, sys\n"
        "from pymongo import AsyncMongoClient\n"
        "from embedded_mongo import EngineProcess\n"
        "async def main():\n"
        "    engine = EngineProcess(sys.argv[1])\n"
        "    await engine.start()\n"
        "    client = AsyncMongoClient(engine.uri)\n"
        "    await client.shop.orders.insert_one({'_id': 1})\n"
        "    print('engine', engine.pid, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "asyncio.run(main())\n",
        str(tmp_path / "db"),
    )
    assert code == -signal.SIGKILL
    pid = int(output.split("engine ")[1].split()[0])
    assert await gone(pid), "the engine outlived the process that started it"
    async with EngineProcess(tmp_path / "db") as engine:
        client: AsyncMongoClient = AsyncMongoClient(engine.uri)
        assert await client.shop.orders.find_one({}) == {"_id": 1}
        await client.close()


async def test_its_log_lines_are_logged_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with EngineProcess(tmp_path / "db"):
        for _ in range(200):
            if any(r.name == "embedded_mongo.server" and "serving" in r.getMessage() for r in caplog.records):
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the engine's own log line was not logged in the parent")


async def test_an_engine_that_dies_is_started_again_on_its_port_and_clients_carry_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with EngineProcess(tmp_path / "db") as engine:
        uri, first = engine.uri, engine.pid
        assert first is not None
        client: AsyncMongoClient = AsyncMongoClient(engine.uri, serverSelectionTimeoutMS=20_000)
        await client.shop.orders.insert_one({"_id": 1})
        os.kill(first, signal.SIGKILL)
        assert await gone(first)
        # The driver retries this write once the engine listens again; what it acknowledged before is kept.
        await client.shop.orders.insert_one({"_id": 2})
        assert [d["_id"] async for d in client.shop.orders.find()] == [1, 2]
        assert engine.uri == uri and engine.pid not in (None, first)
        await client.close()
    said = [r.getMessage() for r in caplog.records if r.name == "embedded_mongo.process"]
    assert any(f"(process {first}) exited with code -9: starting it again" in m for m in said), said


async def test_an_engine_that_cannot_start_again_is_tried_again_until_it_can(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data, aside = tmp_path / "db", tmp_path / "aside"
    async with EngineProcess(data) as engine:
        client: AsyncMongoClient = AsyncMongoClient(engine.uri, serverSelectionTimeoutMS=20_000)
        await client.shop.orders.insert_one({"_id": 1})
        first = engine.pid
        assert first is not None
        data.rename(aside)
        data.write_text("not a directory")  # the next start fails
        os.kill(first, signal.SIGKILL)
        for _ in range(200):
            if any("could not start the embedded engine again" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the failed restart went unreported")
        data.unlink()
        aside.rename(data)
        assert await client.shop.orders.find_one({}) == {"_id": 1}  # a later attempt started it
        await client.close()
