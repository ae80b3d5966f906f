"""Fixtures: a MongoDB to test against (MONGODB_URI, or an embedded engine) and a scratch database."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from embedded_mongo import EmbeddedMongo

REAL_MONGODB = bool(os.environ.get("MONGODB_URI"))

engine_only = pytest.mark.skipif(REAL_MONGODB, reason="tests the embedded engine itself")


@pytest_asyncio.fixture
async def mongo_uri() -> AsyncIterator[str]:
    """MONGODB_URI when set, otherwise a fresh embedded engine (with a temporary store: durability has its own
    tests, and conformance tests run faster without an fsync per commit)."""
    uri = os.environ.get("MONGODB_URI")
    if uri:
        yield uri
        return
    server = EmbeddedMongo(None)
    await server.start()
    try:
        yield server.uri
    finally:
        await server.close()


@pytest_asyncio.fixture
async def mongo_client(mongo_uri: str) -> AsyncIterator[AsyncMongoClient]:
    """A tz-aware client, closed afterwards."""
    mongo = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        yield mongo
    finally:
        await mongo.close()


@pytest_asyncio.fixture
async def db(mongo_client: AsyncMongoClient) -> AsyncIterator[AsyncDatabase]:
    """A uniquely named database, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield mongo_client[name]
    finally:
        await mongo_client.drop_database(name)
