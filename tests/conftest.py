"""Shared fixtures: settings for a test, and the real app on the embedded engine (or MONGODB_URI)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, get_unused_port_socket
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from pymongo import AsyncMongoClient

from gateway.app import create_app
from gateway.config import Settings, parse_settings
from tests.helpers import API_TOKEN, WIDGET_SECRET, merged

# The same examples on every run, so a failure is a change in the code, not luck; bench/fuzz.py roams wider.
hypothesis_settings.register_profile(
    "gateway", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
hypothesis_settings.load_profile("gateway")


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable[[], Any]]:
    """Every test runs on the event loop `gateway run` uses: uvloop where it is installed."""
    try:
        import uvloop
    except ImportError:
        return {"asyncio": asyncio.new_event_loop}
    return {"uvloop": uvloop.new_event_loop}


SettingsFactory = Callable[..., Settings]
Serve = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def make_settings(tmp_path: Path) -> AsyncIterator[SettingsFactory]:
    """Build Settings for one test: its own database (and data dir), plus any overrides."""
    database = f"test_{uuid.uuid4().hex[:12]}"
    uri = os.environ.get("MONGODB_URI", "embedded")

    def factory(**override: Any) -> Settings:
        raw = {
            "server": {"public_url": "http://gateway.test", "secret": "test-server-secret-0123456789"},
            # The engine as a thread of the test process: a child process per test would cost a second each.
            "storage": {"uri": uri, "database": database, "data_dir": str(tmp_path / "data"), "engine": "thread"},
            "webwidget": {"secret": WIDGET_SECRET, "allowed_origins": ["https://shop.example"]},
            "api": {"tokens": [API_TOKEN]},
            "delivery": {"retry_base_seconds": 0.05, "poll_seconds": 0.05},
        }
        return parse_settings(merged(raw, override), source="test.toml", environ={})

    yield factory
    if uri != "embedded":
        client: AsyncMongoClient = AsyncMongoClient(uri)
        await client.drop_database(database)
        await client.close()


@pytest.fixture
async def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest.fixture
async def gateway(aiohttp_client: Any, settings: Settings) -> TestClient:
    """The real app, started, behind a real HTTP server on localhost."""
    return await aiohttp_client(create_app(settings))


@pytest.fixture
def serve(aiohttp_client: Any, make_settings: SettingsFactory) -> Serve:
    """Start the real app on a free port that is also its public URL, so webhooks and callbacks reach it."""

    async def start(**override: Any) -> TestClient:
        # Bound before the app is built and handed over as is: a port only looked up could be taken meanwhile.
        sock = get_unused_port_socket("127.0.0.1")
        port = sock.getsockname()[1]
        settings = make_settings(**merged({"server": {"public_url": f"http://127.0.0.1:{port}"}}, override))
        return await aiohttp_client(create_app(settings), server_kwargs={"socket_factory": lambda *_: sock})

    return start
