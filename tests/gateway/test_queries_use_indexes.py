"""Every query the gateway sends is served by an index.

A broad scenario runs through the real app and its emulators (Telegram, Twilio, the widget, the REST API): customers
new and known on every channel, operators and supervisors using every command and button, deliveries failing and
retried, merges and unmerges. PyMongo's command monitoring records every command with a filter (find, aggregate's
leading $match, count, distinct, findAndModify, update and delete statements) with the gateway method that sent
it; each distinct shape (collection, filter and sort with the values replaced by placeholders) is then explained
on the same database, and the test fails listing every shape whose winning plan scans the collection (COLLSCAN).
Runs unchanged on a real MongoDB with MONGODB_URI.
"""

from __future__ import annotations

import inspect
import json
import os
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pymongo import monitoring
from pymongo.errors import PyMongoError

from gateway.keys import STORE
from tests.emulators.telegram import TelegramEmulator
from tests.emulators.twilio import TwilioEmulator
from tests.helpers import AUTH, Widget, eventually, settle
from tests.operators.conftest import BOSS, EVE, OLGA, OPERATOR_BOT, SAM, Desk

ROOT = Path(__file__).resolve().parents[2]
OURS = tuple(f"{ROOT / package}{os.sep}" for package in ("gateway", "operators", "channels"))
STORAGE = f"{ROOT / 'gateway' / 'storage'}{os.sep}"
TESTS = f"{ROOT / 'tests'}{os.sep}"
# What the driver adds to every command; the rest is the query as the gateway wrote it.
DRIVER_FIELDS = {
    "lsid", "$db", "$clusterTime", "txnNumber", "$readPreference", "readConcern", "writeConcern", "autocommit",
    "startTransaction", "apiVersion", "apiStrict", "apiDeprecationErrors", "maxTimeMS", "comment",
}  # fmt: skip
FILTERED = {"find", "aggregate", "count", "distinct", "findAndModify", "update", "delete"}

CUSTOMER_BOT = "7000002:customer-bot-token"
SUPERVISORS = -1001234567890
SENDER = "whatsapp:+14155238886"
ACCOUNT_SID = "AC" + "5f0e" * 8
TEMPLATE = "HX" + "0a" * 16
ANN_TG, CID_TG = 5001, 5002
ANN_WA, BOB_WA, DAN_WA = "+14155552671", "+14155552672", "+14155552673"


# -- recording ---------------------------------------------------------------------------------


@dataclass
class Shape:
    """One query shape: the collection and the filter and sort with every value replaced by a placeholder."""

    collection: str
    filter: str
    sort: str
    database: str
    example: dict[str, Any]  # the first command of this shape, as the gateway sent it (one statement)
    sites: dict[str, int] = field(default_factory=dict)  # the repository method (and its caller) -> times sent

    def __str__(self) -> str:
        return f"{self.collection} {self.filter}" + (f" sort {self.sort}" if self.sort != "null" else "")


class QueryRecorder(monitoring.CommandListener):
    """Collects every filtered command sent while `recording` is on, by shape; inert otherwise."""

    def __init__(self) -> None:
        self.recording = False
        self.shapes: dict[tuple[str, str, str], Shape] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not self.recording or event.command_name not in FILTERED:
            return
        site = issuer(inspect.currentframe())
        if site is None:  # the test looking at the database itself, not the gateway
            return
        for collection, query, sort, example in statements(event.command_name, event.command):
            key = (collection, canonical(shape_of(query)), canonical(sort))
            shape = self.shapes.setdefault(key, Shape(*key, database=event.database_name, example=example))
            shape.sites[site] = shape.sites.get(site, 0) + 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def issuer(frame: FrameType | None) -> str | None:
    """`file:Class.method` of the gateway code that sent a command (the repository method, and its first caller
    outside gateway/storage); None when the first code outside the driver is the test's own."""
    ours: list[str] = []
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(TESTS) and not ours and frame.f_code is not QueryRecorder.started.__code__:
            return None
        if path.startswith(OURS) and (not ours or not path.startswith(STORAGE)):
            name = re.sub(r"\.<locals>\.<(listcomp|dictcomp|setcomp|genexpr)>$", "", frame.f_code.co_qualname)
            ours.append(f"{path[len(str(ROOT)) + 1 :]}:{name}")
            if not path.startswith(STORAGE):
                break
        frame = frame.f_back
    return " ← ".join(ours) if ours else None


def statements(name: str, command: Mapping[str, Any]) -> Iterator[tuple[str, Any, Any, dict[str, Any]]]:
    """(collection, filter, sort, the command to explain) for each query in a command."""
    body = {key: value for key, value in command.items() if key not in DRIVER_FIELDS}
    collection = str(command[name])
    if name == "find":
        yield collection, body.get("filter") or {}, body.get("sort"), body
    elif name == "aggregate":
        pipeline = list(body.get("pipeline") or [])
        if pipeline and "$changeStream" in pipeline[0]:
            return
        match = pipeline[0].get("$match", {}) if pipeline and "$match" in pipeline[0] else {}
        sorted_by = next((stage["$sort"] for stage in pipeline[:2] if "$sort" in stage), None)
        yield collection, match, sorted_by, body
    elif name == "count":
        if body.get("query"):  # without a query a count reads the collection's size, not its documents
            yield collection, body["query"], None, body
    elif name == "distinct":
        yield collection, body.get("query") or {}, None, body
    elif name == "findAndModify":
        yield collection, body.get("query") or {}, body.get("sort"), body
    else:
        many = "updates" if name == "update" else "deletes"
        for statement in body.get(many) or []:
            yield collection, statement.get("q") or {}, None, {**body, many: [statement]}


def shape_of(value: Any) -> Any:
    """The structure of a filter with its values replaced by "?" (array positions in paths by "<n>")."""
    if isinstance(value, Mapping):
        return {re.sub(r"\.\d+(?=\.|$)", ".<n>", str(key)): shape_of(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [shape_of(item) for item in value if isinstance(item, Mapping)] or ["?"]
    return "?"


def canonical(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def winning_stages(reply: Any) -> list[list[str]]:
    """Each winning plan in an explain reply as its chain of stages, outermost first ("IXSCAN(by_thread)")."""
    chains: list[list[str]] = []

    def chain(plan: Any) -> list[str]:
        stages: list[str] = []
        while isinstance(plan, Mapping):
            plan = plan.get("queryPlan", plan)
            if "stage" in plan:
                stages.append(plan["stage"] + (f"({plan['indexName']})" if "indexName" in plan else ""))
            for branch in plan.get("inputStages") or []:
                stages.extend(chain(branch))
            plan = plan.get("inputStage")
        return stages

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, child in node.items():
                if key == "winningPlan":
                    chains.append(chain(child))
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(reply)
    return chains


RECORDER: QueryRecorder | None = None


@pytest.fixture
def recorder() -> Iterator[QueryRecorder]:
    """The one listener, registered before the app creates its client (PyMongo tells only clients made later);
    it records nothing outside this test."""
    global RECORDER
    if RECORDER is None:
        RECORDER = QueryRecorder()
        monitoring.register(RECORDER)
    RECORDER.shapes.clear()
    yield RECORDER
    RECORDER.recording = False
    RECORDER.shapes.clear()


# -- the gateway and its emulators ---------------------------------------------------------------


@pytest.fixture
async def tg() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator() as emulator:
        emulator.add_bot(OPERATOR_BOT, "desk_bot", first_name="Support desk")
        emulator.add_bot(CUSTOMER_BOT, "shop_support_bot", first_name="Shop")
        emulator.user(OLGA, "Olga", username="olga")
        emulator.user(SAM, "Sam", username="sam", language_code="ru")
        emulator.user(BOSS, "Boss", username="boss")
        emulator.user(EVE, "Eve", username="eve")
        emulator.user(ANN_TG, "Ann", "Lee", username="annlee")
        emulator.user(CID_TG, "Cid", username="cid")
        emulator.supergroup(SUPERVISORS, "Support supervisors", is_forum=True, members=[BOSS, OLGA])
        yield emulator


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioEmulator]:
    async with TwilioEmulator(
        ACCOUNT_SID, "twilio-auth-token-for-tests", whatsapp_number=SENDER, auto_status_callbacks=False
    ) as emulator:
        yield emulator


class Scene(Desk):
    """The desk, with customers on Telegram, WhatsApp and the widget and a client of the REST API."""

    def __init__(self, client: TestClient, tg: TelegramEmulator, twilio: TwilioEmulator) -> None:
        super().__init__(client, tg)
        self.twilio = twilio

    async def telegram(self, update: dict[str, Any]) -> dict[str, Any]:
        assert await self.tg.deliver(CUSTOMER_BOT, update) == 200
        await settle(self.app)
        return update

    async def whatsapp(self, params: dict[str, str], path: str = "/channels/whatsapp/inbound") -> None:
        status, _ = await self.twilio.post_inbound(str(self.client.make_url(path)), params)
        assert status == 200
        await settle(self.app)

    async def api(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.client.request(method, f"/api/v1{path}", headers=AUTH, **kwargs) as response:
            assert response.status < 300, (path, response.status, await response.text())
            return await response.json()

    def number(self, text: str) -> int:
        """The thread number a customer's message was tagged with in an operator chat or the forum."""
        for sent in self.tg.sent(token=OPERATOR_BOT):
            if (found := re.match(r"#(\d+) · (.*)", sent.text or sent.caption or "", re.S)) and found[2] == text:
                return int(found[1])
        raise AssertionError(f"no operator saw {text!r}")

    def copy(self, chat_id: int, text: str) -> int:
        """The message id of the latest bot message in a chat that ends with `text`."""
        return next(m.message_id for m in reversed(self.chat(chat_id)) if (m.text or m.caption or "").endswith(text))

    def buttons(self, chat_id: int, prefix: str) -> list[tuple[int, str]]:
        """(message id, data) of every button in a chat's bot messages, as they are now, whose data starts with
        `prefix`; latest first."""
        found = []
        for sent in reversed(self.chat(chat_id)):
            now = self.tg.message(OPERATOR_BOT, chat_id, sent.message_id) or {}
            for row in (now.get("reply_markup") or {}).get("inline_keyboard", []):
                found += [
                    (sent.message_id, b["callback_data"]) for b in row if b.get("callback_data", "").startswith(prefix)
                ]
        return found

    async def tap(self, chat_id: int, prefix: str) -> None:
        """Press the latest button in a chat whose data starts with `prefix`."""
        found = self.buttons(chat_id, prefix)
        assert found, f"no button {prefix}… in chat {chat_id}"
        assert await self.press(chat_id, *found[0]) == 200


@pytest.fixture
async def scene(serve: Any, tg: TelegramEmulator, twilio: TwilioEmulator, recorder: QueryRecorder) -> Scene:
    recorder.recording = True  # start-up's queries count too (operators from the config, unfinished merges)
    client = await serve(
        operator_bot={
            "token": OPERATOR_BOT,
            "webhook_secret": "desk-secret",
            "api_base": tg.base_url,
            "supervisors_chat_id": SUPERVISORS,
            # The scenario posts far more into the forum than Telegram's 20 a minute; its pace is not the point.
            "supervisors_messages_per_minute": 600,
        },
        operators=[
            {"telegram_id": OLGA, "name": "Olga", "username": "olga", "groups": ["billing"]},
            {"telegram_id": SAM, "name": "Sam", "username": "sam"},
            {"telegram_id": BOSS, "name": "Boss", "username": "boss", "role": "supervisor"},
        ],
        routing={"max_chats_per_operator": 3, "offline_grace_seconds": 0},
        csat={"enabled": True},
        telegram={
            "api_base": tg.base_url,
            "bots": [{"name": "support", "token": CUSTOMER_BOT, "webhook_secret": "customer-secret"}],
        },
        whatsapp={
            "account_sid": twilio.account_sid,
            "auth_token": twilio.auth_token,
            "sender": SENDER,
            "api_base": twilio.base_url,
            "templates": [{"name": "order_update", "content_sid": TEMPLATE, "variables": ["1"]}],
        },
    )
    return Scene(client, tg, twilio)


# -- the scenario ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cast:
    """The first conversations' numbers, and the widget visitor's token."""

    ann: int
    bob: int
    web: int
    cid: int
    token: str


async def customers_write_and_operators_answer(s: Scene) -> Cast:
    """New and known contacts on every channel, queued, assigned, answered by reply and plainly."""
    await s.say(BOSS, "/away")
    await s.telegram(s.tg.text_update(CUSTOMER_BOT, ANN_TG, "Hi, my parcel is late"))  # nobody online: queued
    await s.say(BOSS, "/queue")
    await s.say(OLGA, "/online")  # takes the queue
    await s.whatsapp(s.twilio.inbound_text(BOB_WA, "Hi from WhatsApp", profile_name="Bob"))
    widget = await Widget.connect(s.client)
    await widget.say("Hello from the widget", "w-1")
    await settle(s.app)
    await s.say(SAM, "/online")
    await s.telegram(s.tg.text_update(CUSTOMER_BOT, CID_TG, "Cid here, question about billing"))
    assert widget.token is not None
    n = Cast(
        ann=s.number("Hi, my parcel is late"),
        bob=s.number("Hi from WhatsApp"),
        web=s.number("Hello from the widget"),
        cid=s.number("Cid here, question about billing"),
        token=widget.token,
    )

    # Known contacts write again; the widget visitor comes back with their token and says who they are.
    await s.telegram(s.tg.text_update(CUSTOMER_BOT, ANN_TG, "any news?"))
    await s.whatsapp(s.twilio.inbound_text(BOB_WA, "Still waiting", profile_name="Bob"))
    again = await Widget.connect(s.client, widget.token)
    await again.ws.send_json({"type": "page", "url": "https://shop.example/cart", "title": "Cart"})
    await again.ws.send_json({"type": "identify", "name": "Wendy", "email": "bob@example.com", "phone": ANN_WA})
    await again.say("I am back", "w-2")
    edited = await s.telegram(s.tg.text_update(CUSTOMER_BOT, ANN_TG, "I ordred two"))
    await s.telegram(s.tg.edited_update(CUSTOMER_BOT, ANN_TG, edited["message"]["message_id"], text="I ordered two"))
    await settle(s.app)

    # Answers: a Telegram reply, a plain message to the one active chat, and after /chat.
    await s.say(OLGA, "Hello Ann!", reply_to=s.copy(OLGA, "any news?"))
    await s.say(SAM, "Hello Cid")
    await s.say(OLGA, "Which one of you?")  # ambiguous: the bot asks
    await s.tap(OLGA, "pick:")
    await s.say(OLGA, f"/chat {n.bob}")
    await s.say(OLGA, "Your parcel left today.")
    await s.say(OLGA, "Widget answer", reply_to=s.copy(OLGA, "I am back"))
    repeated = s.tg.text_update(OPERATOR_BOT, OLGA, "/chats")
    for _ in range(2):  # Telegram re-delivers an update it got no answer for in time: handled once
        assert await s.send(repeated) == 200
    await s.telegram(edited)  # and a customer's
    for command in ("/chats", "/next", "/status"):
        await s.say(OLGA, command)
    await widget.close()
    await again.close()
    return n


async def deliveries_fail_and_are_retried(s: Scene, n: Cast) -> None:
    """Twilio status callbacks (in order, late, for an unknown message, failed), Telegram failures retried."""
    first = s.twilio.messages[0]
    await s.twilio.play_statuses(first.sid, ["sent", "delivered", "read"])
    await s.twilio.send_status(first.sid, "delivered")  # late: changes nothing
    unknown = s.twilio.status_params(first, "delivered") | {"MessageSid": "SM" + "0" * 32, "SmsSid": "SM" + "0" * 32}
    await s.whatsapp(unknown, "/channels/whatsapp/status")  # before its message is known: parked
    s.twilio.inject_delivery_failure(63016)
    await s.say(OLGA, "Window closed?", reply_to=s.copy(OLGA, "Still waiting"))
    await s.twilio.send_status(s.twilio.messages[-1].sid, "undelivered")
    await settle(s.app)
    await s.tap(OLGA, "tpl:")

    s.tg.block(ANN_TG, CUSTOMER_BOT)
    await s.say(OLGA, "Are you there?", reply_to=s.copy(OLGA, "any news?"))
    s.tg.unblock(ANN_TG, CUSTOMER_BOT)
    await s.tap(OLGA, "retry:")
    s.tg.fail(ANN_TG, 500, "Internal Server Error", token=CUSTOMER_BOT)  # retried by the outbox poll
    await s.say(OLGA, "Sorry, once more", reply_to=s.copy(OLGA, "any news?"))

    async def resent() -> bool:
        return any(m.text == "Sorry, once more" for m in s.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT))

    await eventually(resent, "the outbox retried the failed send")
    await settle(s.app)


async def operators_work_the_conversations(s: Scene, n: Cast) -> None:
    """Every operator command, the card's buttons, canned replies, search and transfers."""
    ann, bob, web, cid = n.ann, n.bob, n.web, n.cid
    for command in (
        f"/history {ann}",
        f"/history {ann} media",
        f"/history {ann} customer",
        f"/history {n.web} pages",
        f"/template {bob}",
        f"/info {ann}",
        f"/info {bob} email bob@example.com",  # the widget visitor typed it too: a possible duplicate
        f"/info {bob} phone +1 415 555 2672",
        f"/note {ann} VIP customer",
        "/canned add greet Hello, how can I help?",
        "/canned",
        "/search Ann",
        "/search parcel",
        "/search +1 415 555 2672",
    ):
        await s.say(OLGA, command)
    await s.say(OLGA, "!greet", reply_to=s.copy(OLGA, "any news?"))
    await s.say(OLGA, "/canned remove greet")
    for action in ("info", "history", "block", "unblock"):
        await s.tap(OLGA, f"{action}:{ann}")
    if s.buttons(OLGA, f"hist:{ann}:"):
        await s.tap(OLGA, f"hist:{ann}:")  # an older page of the history
    await s.say(SAM, f"/block {cid}")
    await s.say(SAM, f"/unblock {cid}")
    await s.say(SAM, "/note the customer prefers e-mail")
    await s.say(BOSS, "/search Cid")
    await s.say(BOSS, "/search billing")
    await s.say(OLGA, f"/transfer {web} @sam please take this one")
    await s.tap(SAM, f"transfer:{web}")
    await s.tap(SAM, f"xfer:{web}:")
    await s.say(OLGA, f"/transfer {bob} billing")


async def duplicates_are_offered_merged_and_unmerged(s: Scene, n: Cast) -> None:
    """Ann on two channels (same verified phone), merged by the button; a dismissal; /merge and /unmerge."""
    await s.whatsapp(s.twilio.inbound_text(ANN_WA, "Ann on WhatsApp now", profile_name="Ann"))
    await s.telegram(s.tg.contact_update(CUSTOMER_BOT, ANN_TG, ANN_WA.lstrip("+"), first_name="Ann", last_name="Lee"))
    await s.tap(OLGA, "dup:m:")  # Olga handles Ann's Telegram conversation
    await s.telegram(s.tg.text_update(CUSTOMER_BOT, ANN_TG, "written while merged"))
    for operator in (OLGA, SAM):
        if s.buttons(operator, "dup:n:"):
            await s.tap(operator, "dup:n:")
            break  # Bob's card and the visitor's: not the same person
    await s.say(BOSS, "/duplicates")
    visitor = await Widget.connect(s.client, n.token)  # the same pair again, by another match
    await visitor.ws.send_json({"type": "identify", "phone": BOB_WA})
    await visitor.say("my number too", "w-3")
    await visitor.close()
    await settle(s.app)
    await s.whatsapp(s.twilio.inbound_text(DAN_WA, "Dan writing", profile_name="Dan"))
    dan = s.number("Dan writing")
    await s.say(BOSS, f"/merge {n.cid} {dan}")
    await s.say(BOSS, "/unmerge 2")
    await s.say(BOSS, "/unmerge 1")
    await s.telegram(s.tg.text_update(CUSTOMER_BOT, ANN_TG, "after the unmerge"))


async def supervisors_look_and_decide(s: Scene, n: Cast) -> None:
    """Supervisor commands, a supervisor answering in a forum topic, dead letters."""
    garbage = {"update_id": 999_999, "message": {"message_id": "not a number", "chat": []}}
    assert await s.tg.deliver(CUSTOMER_BOT, garbage) == 200
    today = datetime.now(UTC).date().isoformat()
    for command in (
        "/queue",
        "/operators",
        "/all",
        f"/assign {n.cid} @olga",
        "/stats",
        "/stats 7d",
        f"/stats {today}",
        f"/operator add {EVE} Eve @eve",
        "/operator capacity @eve 5",
        "/operator role @eve supervisor",
        "/operator remove @eve",
        "/deadletters",
    ):
        await s.say(BOSS, command)
    topic = next(m.message_thread_id for m in s.chat(SUPERVISORS) if m.message_thread_id is not None)
    update = s.tg.text_update(OPERATOR_BOT, BOSS, "A supervisor answers here", chat_id=SUPERVISORS,
                              message_thread_id=topic)  # fmt: skip
    assert await s.send(update) == 200


async def conversations_close_and_reopen(s: Scene, n: Cast) -> None:
    """/close and the Close button; a customer writing after close gets a new thread linked to the old one."""
    await s.say(OLGA, f"/close {n.ann}")
    rate = f"csat:{n.ann}:5"
    sent = s.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)
    question = next((m for m in sent if rate in str((m.reply_markup or {}).get("inline_keyboard"))), None)
    await s.telegram(s.tg.text_update(CUSTOMER_BOT, ANN_TG, "one more thing"))
    if question is not None:  # the satisfaction survey, answered after the next conversation opened
        await s.telegram(s.tg.callback_update(CUSTOMER_BOT, ANN_TG, question.message_id, rate))
    await s.tap(SAM, "close:")
    await s.say(OLGA, "/close")


async def the_api_lists_and_looks_up(s: Scene, n: Cast) -> None:
    """The REST API's listings with every filter and an offset, lookups, an answer and updates; /metrics."""
    for query in (
        "",
        "?status=assigned",
        "?status=queued",
        "?status=closed&limit=2",
        f"?operator={OLGA}",
        "?channel=telegram",
        "?channel=whatsapp&offset=1&limit=1",
        f"?status=assigned&operator={SAM}&channel=webwidget",
    ):
        await s.api("GET", f"/threads{query}")
    thread = await s.api("GET", f"/threads/{n.bob}")
    await s.api("GET", f"/threads/{n.bob}/messages")
    await s.api("GET", f"/threads/{n.bob}/messages?offset=1&limit=2")
    await s.api("POST", f"/threads/{n.cid}/messages", json={"text": "From the CRM", "author_name": "Maria"})
    await s.api("GET", "/contacts?phone=(415) 555-2672")
    await s.api("GET", "/contacts?email=BOB@example.com")
    await s.api("GET", f"/contacts/{thread['contact_id']}")
    await s.api("PATCH", f"/contacts/{thread['contact_id']}", json={"attributes": {"plan": "gold"}})
    await s.api("PATCH", f"/visitors/{n.token}", json={"name": "Wendy Lee", "email": "wendy@example.com"})
    for path in ("/metrics", "/readyz", "/healthz"):
        async with s.client.get(path) as response:
            assert response.status == 200


async def operators_leave(s: Scene) -> None:
    """Away and offline (no grace: their conversations go back to the queue), and a routing round."""
    await s.say(SAM, "/away")
    await s.say(SAM, "/offline")
    await s.say(OLGA, "/offline")
    await s.say(BOSS, "/offline")

    async def round_done() -> bool:  # the routing loop releases lapsed operators at least once a second
        return bool(await s.api("GET", "/threads?status=queued&limit=1"))

    await eventually(round_done, "a routing round")
    await settle(s.app)


# -- the test ------------------------------------------------------------------------------------


async def explain(s: Scene, shape: Shape) -> tuple[bool, str]:
    """Whether the shape's winning plan scans the collection, and the plan (or the error) in one line."""
    try:
        database = s.app[STORE].db.client[shape.database]
        reply = await database.command({"explain": shape.example, "verbosity": "queryPlanner"})
    except PyMongoError as err:
        return True, f"explain failed: {err}"
    chains = winning_stages(reply)
    return any("COLLSCAN" in chain for chain in chains), " | ".join(" <- ".join(chain) for chain in chains)


async def test_every_query_the_gateway_sends_is_served_by_an_index(scene: Scene, recorder: QueryRecorder) -> None:
    s = scene
    try:
        n = await customers_write_and_operators_answer(s)
        await deliveries_fail_and_are_retried(s, n)
        await operators_work_the_conversations(s, n)
        await duplicates_are_offered_merged_and_unmerged(s, n)
        await supervisors_look_and_decide(s, n)
        await conversations_close_and_reopen(s, n)
        await the_api_lists_and_looks_up(s, n)
        await operators_leave(s)
    finally:
        recorder.recording = False
    shapes = list(recorder.shapes.values())
    assert len(shapes) > 40, "the scenario reached too little of the gateway to say anything"

    scans = []
    for shape in sorted(shapes, key=str):
        scanned, plan = await explain(s, shape)
        if scanned:
            sites = "\n".join(f"      sent by {site} (x{count})" for site, count in sorted(shape.sites.items()))
            scans.append(f"  {shape}\n      plan: {plan}\n{sites}")
    if scans:
        pytest.fail(
            f"{len(scans)} of {len(shapes)} query shapes are not served by an index (the winning plan scans the "
            "collection):\n" + "\n".join(scans),
            pytrace=False,
        )
