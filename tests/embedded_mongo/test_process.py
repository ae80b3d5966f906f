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


async def test_its_log_lines_are_logged_again_and_its_death_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with EngineProcess(tmp_path / "db") as engine:
        assert engine.pid is not None
        for _ in range(200):
            if any(r.name == "embedded_mongo.server" and "serving" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the engine's own log line was not logged in the parent")
        os.kill(engine.pid, signal.SIGKILL)
        for _ in range(200):
            if any(r.levelno == logging.ERROR and "exited with code -9" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the engine's death went unreported")
