"""Several gateway processes on one embedded engine, as real processes on real sockets: `gateway embedded-db`
and two `gateway run`, with the Telegram emulator in this process as the Bot API they all call."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from tests.embedded_mongo.processes import REPO_ROOT, free_port
from tests.emulators.telegram import TelegramEmulator

OPERATOR_BOT = "7000001:operator-bot-token"
CUSTOMER_BOT = "7000002:customer-bot-token"
OLGA, SAM = 1001, 1002
ANN = 5001
WIDGET_SECRET = "processes-widget-secret-0123"
API_TOKEN = "processes-api-token-0123456789"
ORIGIN = {"Origin": "https://shop.example"}


class Gateway:
    """One `gateway run` child process."""

    def __init__(self, name: str, port: int, config: Path, log: Path) -> None:
        self.name, self.port, self.config, self.log = name, port, config, log
        self.url = f"http://127.0.0.1:{port}"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, http: aiohttp.ClientSession) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "run", "--config", str(self.config),
                stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=str(REPO_ROOT),
            )  # fmt: skip
        for _ in range(600):
            if self.process.returncode is not None:
                break
            try:
                async with http.get(self.url + "/readyz") as response:
                    if response.status == 200 and (await response.json())["peers"]:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        raise AssertionError(f"gateway {self.name} did not become ready:\n{self.log.read_text(errors='replace')}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


class Cluster:
    """The engine, two gateways on it, the Telegram emulator, and a client to look at the data."""

    def __init__(self, tmp: Path, tg: TelegramEmulator, http: aiohttp.ClientSession) -> None:
        self.tmp, self.tg, self.http = tmp, tg, http
        self.engine: asyncio.subprocess.Process | None = None
        self.uri = ""
        self.gateways: list[Gateway] = []
        self.db: Any = None

    async def start(self) -> None:
        port = free_port()
        with (self.tmp / "engine.log").open("ab") as log:
            self.engine = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "embedded-db", "--port", str(port),
                "--data-dir", str(self.tmp / "db"), stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=str(REPO_ROOT),
            )  # fmt: skip
        self.uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
        client: AsyncMongoClient = AsyncMongoClient(self.uri, serverSelectionTimeoutMS=20_000, tz_aware=True)
        await client.admin.command("ping")
        self.db = client["gateway"]
        for name in ("a", "b"):
            gateway = Gateway(name, free_port(), self.tmp / f"{name}.toml", self.tmp / f"{name}.log")
            gateway.config.write_text(self.config(gateway))
            self.gateways.append(gateway)
        await asyncio.gather(*(g.start(self.http) for g in self.gateways))

    def config(self, gateway: Gateway) -> str:
        return f"""
[server]
port = {gateway.port}
public_url = "{gateway.url}"
secret = "processes-server-secret-0123456789"
lease_seconds = 2

[storage]
uri = "{self.uri}"

[webwidget]
secret = "{WIDGET_SECRET}"
allowed_origins = ["https://shop.example"]
messages_per_minute_per_ip = 100000
frames_per_minute_per_ip = 100000
visitors_per_minute_per_ip = 10000
sockets_per_ip = 10000

[api]
tokens = ["{API_TOKEN}"]

[telegram]
api_base = "{self.tg.base_url}"
mode = "polling"

[[telegram.bots]]
name = "support"
token = "{CUSTOMER_BOT}"
webhook_secret = "processes-customer-secret"

[operator_bot]
token = "{OPERATOR_BOT}"
webhook_secret = "processes-secret"
api_base = "{self.tg.base_url}"
mode = "polling"
catch_up_seconds = 2

[routing]
max_chats_per_operator = 3

[delivery]
poll_seconds = 0.2
retry_base_seconds = 1

[[operators]]
telegram_id = {OLGA}
name = "Olga"

[[operators]]
telegram_id = {SAM}
name = "Sam"
"""

    async def close(self) -> None:
        await asyncio.gather(*(g.stop() for g in self.gateways))
        if self.engine is not None and self.engine.returncode is None:
            self.engine.terminate()
            await self.engine.wait()

    async def poller(self) -> Gateway:
        """The gateway that holds the operator bot's long polling."""
        for _ in range(200):
            lease = await self.db["leases"].find_one({"_id": {"$regex": "^telegram-poll:"}})
            if lease is not None:
                pid = int(lease["holder"].split(":")[1])
                return next(g for g in self.gateways if g.pid == pid)
            await asyncio.sleep(0.05)
        raise AssertionError("nobody polls the operator bot")

    async def operator_says(self, operator_id: int, text: str, reply_to: int | None = None) -> None:
        await self.tg.deliver(OPERATOR_BOT, self.tg.text_update(OPERATOR_BOT, operator_id, text, reply_to=reply_to))

    async def online(self, *operator_ids: int) -> None:
        for operator_id in operator_ids:
            await self.operator_says(operator_id, "/online")

        async def all_online() -> bool:
            return await self.db["operators"].count_documents({"status": "online"}) == len(operator_ids)

        await eventually(all_online, "the operators are online")

    def texts(self, chat_id: int) -> list[str]:
        return [m.text or m.caption or "" for m in self.tg.sent(chat_id=chat_id, token=OPERATOR_BOT)]


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with TelegramEmulator() as tg, aiohttp.ClientSession() as http:
        tg.add_bot(OPERATOR_BOT, "desk_bot", first_name="Support desk")
        tg.add_bot(CUSTOMER_BOT, "shop_support_bot", first_name="Shop")
        tg.user(ANN, "Ann", username="ann")
        tg.user(OLGA, "Olga", username="olga")
        tg.user(SAM, "Sam", username="sam")
        cluster = Cluster(tmp_path, tg, http)
        try:
            await cluster.start()
            yield cluster
        finally:
            await cluster.close()


class Visitor:
    """A widget visitor on one gateway's WebSocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.acked: list[str] = []

    @classmethod
    async def on(cls, http: aiohttp.ClientSession, gateway: Gateway) -> Visitor:
        ws = await http.ws_connect(gateway.url + "/channels/webwidget/ws", headers=ORIGIN)
        await ws.send_json({"type": "hello", "page": {"url": "https://shop.example/", "title": "Shop"}})
        visitor = cls(ws)
        await visitor.expect("welcome")
        return visitor

    async def say(self, text: str) -> None:
        await self.ws.send_json({"type": "message", "text": text, "client_id": text})
        ack = await self.expect("ack")
        assert ack["client_id"] == text
        self.acked.append(text)

    async def expect(self, kind: str, timeout: float = 20.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                frame = json.loads((await self.ws.receive()).data)
                if frame["type"] == kind:
                    return frame


async def eventually(check: Any, what: str, seconds: float = 30.0) -> Any:
    """Poll until `check` returns something truthy; the bound only keeps a broken build from hanging."""
    try:
        async with asyncio.timeout(seconds):
            while not (result := await check()):  # noqa: ASYNC110 - the work happens in other processes
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None
    return result


async def test_a_reply_handled_by_one_process_reaches_a_visitor_on_the_other(cluster: Cluster) -> None:
    await cluster.online(OLGA)
    poller = await cluster.poller()
    other = next(g for g in cluster.gateways if g is not poller)
    visitor = await Visitor.on(cluster.http, other)
    await visitor.say("hello from the other process")

    async def card() -> int | None:
        cards = [m for m in cluster.tg.sent(chat_id=OLGA, token=OPERATOR_BOT) if "hello from" in (m.text or "")]
        return cards[-1].message_id if cards else None

    replied_to = await eventually(card, "the message reaches Olga")
    await cluster.operator_says(OLGA, "answered by the poller", reply_to=replied_to)
    frame = await visitor.expect("message")
    assert frame["text"] == "answered by the poller"  # handled in one process, pushed by the other


async def test_customers_on_both_processes_never_push_an_operator_past_capacity(cluster: Cluster) -> None:
    await cluster.online(OLGA, SAM)
    visitors = await asyncio.gather(*(Visitor.on(cluster.http, cluster.gateways[n % 2]) for n in range(40)))
    await asyncio.gather(*(v.say(f"customer {n} needs help") for n, v in enumerate(visitors)))

    async def assigned() -> bool:
        return await cluster.db["threads"].count_documents({"operator_id": {"$ne": None}}) == 6

    await eventually(assigned, "both operators are full")
    await asyncio.sleep(1.0)  # anything still racing would show now
    for operator in await cluster.db["operators"].find().to_list():
        assert len(operator["chats"]) == 3
        mine = await cluster.db["threads"].count_documents({"operator_id": operator["_id"], "open": True})
        assert mine == 3
    assert await cluster.db["threads"].count_documents({"operator_id": {"$ne": None}}) == 6
    # Each assigned conversation reached one operator's chat, never both.
    numbers = {who: {int(n) for t in cluster.texts(who) for n in re.findall(r"#(\d+)", t)} for who in (OLGA, SAM)}
    assert len(numbers[OLGA]) == len(numbers[SAM]) == 3 and not numbers[OLGA] & numbers[SAM]


async def test_a_process_killed_mid_load_loses_nothing(cluster: Cluster) -> None:
    await cluster.db["operators"].update_many({}, {"$set": {"max_chats": 100}})
    await cluster.online(OLGA)
    a, b = cluster.gateways
    visitors = await asyncio.gather(*(Visitor.on(cluster.http, a if n % 2 else b) for n in range(20)))
    await asyncio.gather(*(v.say(f"customer {n} says hello") for n, v in enumerate(visitors)))

    async def all_shown_to_olga() -> bool:  # the cards and their backlogs are out
        return sum(t.endswith("says hello") for t in cluster.texts(OLGA)) == 20

    await eventually(all_shown_to_olga, "every conversation is Olga's")

    async def talk(n: int, visitor: Visitor) -> None:
        for m in range(10):
            try:
                await visitor.say(f"customer {n} message {m}")
            except (aiohttp.ClientError, TimeoutError, TypeError, json.JSONDecodeError, ConnectionError):
                return  # the process this visitor was on died: what it acknowledged must still arrive

    load = asyncio.gather(*(talk(n, v) for n, v in enumerate(visitors)))
    await asyncio.sleep(0.5)
    a.kill()  # SIGKILL: no shutdown of any kind
    await load
    acked = [text for v in visitors for text in v.acked]
    assert len(acked) > 20  # the hellos, and some of the load

    async def all_shown() -> bool:
        shown = "\n".join(cluster.texts(OLGA))
        return all(text in shown for text in acked)

    await eventually(all_shown, "every acknowledged message reaches Olga", seconds=60)
    shown = cluster.texts(OLGA)
    repeated = [text for text in acked if sum(t.endswith(text) for t in shown) > 1]
    # A relay cut short by the kill may be made again once by the sweep; nothing is shown three times.
    assert all(sum(t.endswith(text) for t in shown) <= 2 for text in acked)
    assert len(repeated) <= 1
    await a.start(cluster.http)  # and the killed process comes back on the same data


async def test_a_reply_whose_send_failed_is_retried_by_the_other_process_when_its_own_is_killed(
    cluster: Cluster,
) -> None:
    await cluster.online(OLGA)
    poller = await cluster.poller()  # handles Olga's updates, so it stores and first sends her reply
    await cluster.tg.deliver(CUSTOMER_BOT, cluster.tg.text_update(CUSTOMER_BOT, ANN, "where is my parcel?"))

    async def shown() -> int | None:
        found = [m for m in cluster.tg.sent(chat_id=OLGA, token=OPERATOR_BOT) if "where is my parcel" in (m.text or "")]
        return found[-1].message_id if found else None

    replied_to = await eventually(shown, "Ann's message reaches Olga")
    cluster.tg.fail(ANN, 502, "Bad Gateway", method="sendMessage", token=CUSTOMER_BOT)
    await cluster.operator_says(OLGA, "it left the warehouse today", reply_to=replied_to)

    async def failed_once() -> bool:
        reply = await cluster.db["messages"].find_one({"text": "it left the warehouse today"})
        return reply is not None and reply.get("attempts", 0) >= 1 and reply["status"] == "queued"

    await eventually(failed_once, "the first send fails and a retry is scheduled")
    poller.kill()  # the process that owns the retry dies before it comes

    def answers() -> list[str]:
        return [m.text or "" for m in cluster.tg.sent(chat_id=ANN, token=CUSTOMER_BOT)]

    async def delivered() -> bool:
        return "it left the warehouse today" in answers()

    await eventually(delivered, "the other process sends the reply", seconds=60)
    await asyncio.sleep(1.0)  # a second sender would show now
    assert answers().count("it left the warehouse today") == 1
    reply = await cluster.db["messages"].find_one({"text": "it left the warehouse today"})
    assert reply["status"] == "sent"
