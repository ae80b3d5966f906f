"""Engine-only: TTL indexes are enforced by the background reaper."""

from __future__ import annotations

import asyncio
import datetime

from pymongo import AsyncMongoClient

from embedded_mongo import EmbeddedMongo

from .conftest import engine_only
from .test_changestreams import _next

pytestmark = engine_only


async def test_expired_documents_are_reaped(tmp_path):
    now = datetime.datetime.now(datetime.UTC)
    old, fresh = now - datetime.timedelta(hours=2), now + datetime.timedelta(hours=1)
    async with EmbeddedMongo(tmp_path / "db", ttl_interval=0.02) as server:
        client = AsyncMongoClient(server.uri, tz_aware=True)
        reports = client.app.reports
        await reports.create_index("at", expireAfterSeconds=3600)
        await client.app.parked.create_index("at", expireAfterSeconds=0, partialFilterExpression={"kind": "temp"})
        async with await reports.watch(max_await_time_ms=20) as stream:
            await reports.insert_many(
                [
                    {"_id": "old", "at": old},
                    {"_id": "fresh", "at": fresh},
                    {"_id": "text", "at": "yesterday"},
                    {"_id": "none"},
                    {"_id": "mixed", "at": [fresh, old]},
                ]
            )
            await client.app.parked.insert_many(
                [{"_id": "temp", "kind": "temp", "at": old}, {"_id": "kept", "kind": "keep", "at": old}]
            )
            for _ in range(500):
                remaining = sorted(await reports.distinct("_id"))
                if remaining == ["fresh", "none", "text"]:
                    break
                await asyncio.sleep(0.02)
            assert sorted(await reports.distinct("_id")) == ["fresh", "none", "text"]
            deletes = set()
            while len(deletes) < 2:
                event = await _next(stream)
                if event["operationType"] == "delete":
                    deletes.add(event["documentKey"]["_id"])
            assert deletes == {"old", "mixed"}  # TTL deletions are changes like any other
        for _ in range(500):
            if await client.app.parked.distinct("_id") == ["kept"]:
                break
            await asyncio.sleep(0.02)
        assert await client.app.parked.distinct("_id") == ["kept"]
        await client.close()
