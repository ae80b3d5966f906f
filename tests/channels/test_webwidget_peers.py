"""Two gateway processes on one database: a reply posted through one reaches a visitor whose socket the other
holds, live; where the server has no change streams, the notes between processes are polled."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from aiohttp.test_utils import TestClient

from channels.webwidget.channel import PEER_PUSH
from gateway.app import create_app
from gateway.keys import SIGNALS, STORE
from gateway.signals import CHANGE_STREAM, POLLING, Signals
from tests.conftest import SettingsFactory
from tests.helpers import AUTH, Widget, eventually


async def two_gateways(aiohttp_client: Any, make_settings: SettingsFactory) -> tuple[TestClient, TestClient]:
    first = await aiohttp_client(create_app(make_settings()))
    # The second runs on the first's engine, as a second process does with storage.uri pointing at it.
    second = await aiohttp_client(create_app(make_settings(storage={"uri": first.app[STORE].uri})))
    for gateway in (first, second):
        await eventually(lambda g=gateway: _now(g.app[SIGNALS].mode), "each follows the other's notes")
    return first, second


async def _now(value: Any) -> Any:
    return value


async def test_a_reply_posted_through_one_process_reaches_a_socket_the_other_holds(
    aiohttp_client: Any, make_settings: SettingsFactory
) -> None:
    first, second = await two_gateways(aiohttp_client, make_settings)
    visitor = await Widget.connect(first)
    await visitor.say("hello from a tab the first process holds", "c-1")
    other_tab = await Widget.connect(second, token=visitor.token)

    response = await second.post("/api/v1/threads/1/messages", json={"text": "answered"}, headers=AUTH)

    assert response.status == 201, await response.text()
    assert (await visitor.expect("message"))["text"] == "answered"
    # (The echo of the visitor's first message may reach the new tab first: it travels after the ack.)
    assert await operator_message(other_tab) == "answered"
    assert first.app[SIGNALS].mode == second.app[SIGNALS].mode == CHANGE_STREAM
    # A visitor's own message shows in their tabs on the other process too.
    await visitor.say("thanks!", "c-2")
    echo = await other_tab.expect("message")
    assert echo["text"] == "thanks!"


async def operator_message(tab: Widget) -> str:
    """The text of the next operator message a tab gets (the visitor's own echoed messages skipped)."""
    while (frame := await tab.expect("message"))["author"]["type"] == "visitor":
        pass
    return str(frame["text"])


async def test_without_change_streams_the_notes_are_polled(aiohttp_client: Any, make_settings: SettingsFactory) -> None:
    first, second = await two_gateways(aiohttp_client, make_settings)
    polling = Signals(first.app[STORE], "a process on a standalone mongod", poll_seconds=0.05)
    polling.mode = POLLING  # what a server refusing $changeStream leads to
    heard: list[Mapping[str, Any]] = []

    async def hear(note: Mapping[str, Any]) -> None:
        heard.append(note)

    polling.listen(PEER_PUSH, hear)
    follower = asyncio.create_task(polling.run())
    try:
        await asyncio.sleep(0.1)
        visitor = await Widget.connect(first)
        await visitor.say("hello", "c-1")
        assert (await second.post("/api/v1/threads/1/messages", json={"text": "polled"}, headers=AUTH)).status == 201
        await eventually(lambda: _now(any(n["frame"].get("text") == "polled" for n in heard)), "the note is polled")
        await asyncio.sleep(0.3)  # several more polls, each looking a little back
        assert [n["frame"].get("text") for n in heard].count("polled") == 1
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
