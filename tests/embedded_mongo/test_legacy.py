"""Engine-only: a data directory of the previous engine is converted on first start."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from embedded_mongo import EmbeddedMongo

from . import legacy_fixture
from .conftest import engine_only

pytestmark = engine_only


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def test_old_format_is_converted_once(tmp_path, caplog):
    data = tmp_path / "db"
    legacy_fixture.sample(data)
    caplog.set_level(logging.INFO, logger="embedded_mongo")
    async with EmbeddedMongo(data) as server:
        client = AsyncMongoClient(server.uri)
        contacts = client.app.contacts
        assert [d async for d in contacts.find({}, sort=[("_id", 1)])] == [
            {"_id": 0, "key": "k0", "n": 0},
            {"_id": 1, "key": "k1", "n": 5},
            {"_id": 2, "key": "k2", "n": 0},
            {"_id": 3, "key": "k3", "n": 0},
        ]
        assert sorted(await client.app.list_collection_names()) == ["contacts", "reports"]
        with pytest.raises(DuplicateKeyError):
            await contacts.insert_one({"key": "k2"})
        assert (await client.app.reports.index_information())["expiry"]["expireAfterSeconds"] == 86400
        assert await contacts.find_one({"key": "k3"}) == {"_id": 3, "key": "k3", "n": 0}
        await contacts.insert_one({"_id": 9, "key": "new"})
        await client.close()
    converted = [r for r in caplog.records if "converted" in r.getMessage()]
    assert len(converted) == 1 and str(data) in converted[0].getMessage()
    assert _names(data / "legacy-backup") == ["journal-00000001.bin", "journal-00000002.bin", "snapshot.bin"]
    assert not (data / "snapshot.bin").exists()
    caplog.clear()
    async with EmbeddedMongo(data) as server:  # the second start opens the store as it is
        client = AsyncMongoClient(server.uri)
        assert await client.app.contacts.count_documents({}) == 5
        await client.close()
    assert not [r for r in caplog.records if "converted" in r.getMessage()]
