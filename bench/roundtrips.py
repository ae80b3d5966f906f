"""The MongoDB commands one customer message costs: a known contact (a Telegram customer whose open thread is
assigned to an online operator) and a new contact (a Telegram user writing for the first time); and what an
operator's answer costs (a Telegram reply to the relayed message, until the customer bot's sendMessage and after).

The gateway runs in this process on the embedded engine (or MONGODB_URI), its customer bot and operator bot on the
Telegram emulator; PyMongo's command monitoring lists every command the message caused, in order, with its
collection, a short filter and the method that sent it. Commands of background loops (the outbox poll, routing
rounds) are left out: only the webhook's request and the event handlers it started count. Two totals: before the
webhook is answered, and in all (the relay to the operator too, up to and after the operator bot's sendMessage).
An operator's reply is one update at the operator bot's webhook; its send happens while that webhook is handled.

    python bench/roundtrips.py [--repeat 3]

Targets the project compares against: known contact at most 3 before the answer and 5 in all; new contact at
most 12 in all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import inspect
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from pymongo import monitoring

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    CUSTOMER_BOT,
    CUSTOMER_SECRET,
    FIRST_CUSTOMER,
    FIRST_OPERATOR,
    OPERATOR_BOT,
    OPERATOR_SECRET,
    ROOT,
    BotCall,
    Telegram,
    free_port,
    reproduce,
    revision,
    setup_telegram,
    text,
)
from gateway.app import create_app
from gateway.config import parse_settings
from gateway.keys import BUS

TARGETS = {"known": (3, 5), "new": (None, 12)}  # (before the answer, in all)
OURS = tuple(f"{ROOT / package}{os.sep}" for package in ("gateway", "operators", "channels"))
STORAGE = f"{ROOT / 'gateway' / 'storage'}{os.sep}"
# Set in the measured webhook's request; event handlers it publishes inherit it (a task copies its context).
CAUSE: contextvars.ContextVar[str | None] = contextvars.ContextVar("cause", default=None)


@dataclass(frozen=True)
class Step:
    """One command, or a moment (the webhook answered, the operator bot's sendMessage)."""

    what: str
    collection: str = ""
    summary: str = ""
    site: str = ""
    in_request: bool = False  # sent while the webhook's request was being handled, before its answer

    @property
    def command(self) -> bool:
        return bool(self.collection)


class Recorder(monitoring.CommandListener):
    """Every command sent on behalf of the measured message, in order, with the moments in between."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.request: asyncio.Task[Any] | None = None  # the task handling the measured webhook

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if CAUSE.get() is None:
            return
        name = event.command_name
        collection = event.command.get(name)
        in_request = self.request is not None and asyncio.current_task() is self.request
        self.steps.append(
            Step(name, str(collection), summary(name, event.command), site(inspect.currentframe()), in_request)
        )

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def mark(self, what: str) -> None:
        self.steps.append(Step(what))


def keys(query: Any) -> str:
    """The fields a filter names, e.g. {contact_id, open}."""
    if not isinstance(query, Mapping):
        return "{…}"
    return "{" + ", ".join(keys(v) if k in ("$or", "$and") else str(k) for k, v in query.items()) + "}"


def summary(name: str, command: Mapping[str, Any]) -> str:
    """What a command does, in a few words."""
    if name == "find":
        sort = f" sort {dict(command['sort'])}" if command.get("sort") else ""
        return f"{keys(command.get('filter', {}))}{sort}" + (" limit 1" if command.get("limit") == 1 else "")
    if name == "findAndModify":
        ops = ",".join(command.get("update", {})) if isinstance(command.get("update"), Mapping) else "replace"
        return f"{keys(command.get('query', {}))} {ops}" + (" upsert" if command.get("upsert") else "")
    if name in ("update", "delete"):
        statements = command.get("updates" if name == "update" else "deletes") or []
        parts = [keys(s.get("q", {})) + (" upsert" if s.get("upsert") else "") for s in statements]
        return "; ".join(parts)
    if name == "insert":
        return f"{len(command.get('documents', []))} document(s)"
    if name == "aggregate":
        return " | ".join(next(iter(stage)) for stage in command.get("pipeline", []))
    return ""


def site(frame: FrameType | None) -> str:
    """The repository method that sent a command, and its caller outside gateway/storage."""
    ours: list[str] = []
    while frame is not None and len(ours) < 2:
        path = frame.f_code.co_filename
        if path.startswith(OURS) and (not ours or not path.startswith(STORAGE)):
            ours.append(re.sub(r"\.<locals>\.<\w+>$", "", frame.f_code.co_qualname))
        frame = frame.f_back
    return " ← ".join(ours)


@dataclass(frozen=True)
class Cost:
    label: str
    steps: list[Step]

    @property
    def before_answer(self) -> int:
        return sum(1 for s in self.steps if s.command and s.in_request)

    @property
    def until_relay(self) -> int:
        shown = max((i for i, s in enumerate(self.steps) if s.what == "SHOWN"), default=len(self.steps))
        return sum(1 for s in self.steps[:shown] if s.command)

    @property
    def total(self) -> int:
        return sum(1 for s in self.steps if s.command)


async def measure(repeat: int) -> tuple[list[Cost], list[Cost], list[Cost]]:
    """The steps of `repeat` known-contact and `repeat` new-contact messages, and of `repeat` operator replies."""
    recorder = Recorder()
    monitoring.register(recorder)  # before the app's client exists: PyMongo tells only clients made later
    state: dict[str, Any] = {"armed": False, "measuring": False, "shown_by": OPERATOR_BOT}

    @web.middleware
    async def cause(request: web.Request, handler: Any) -> web.StreamResponse:
        if not (state["armed"] and request.path.startswith(("/channels/telegram/", "/operators/telegram"))):
            return await handler(request)
        state["armed"] = False
        recorder.request = asyncio.current_task()
        token = CAUSE.set(request.path)
        try:
            return await handler(request)
        finally:
            recorder.mark("ANSWER")
            recorder.request = None
            CAUSE.reset(token)  # the connection's task serves the next request on it too

    last_shown: dict[str, int] = {}

    def shown(call: BotCall) -> None:
        if call.token == OPERATOR_BOT and call.method == "sendMessage" and call.status == 200:
            last_shown["message_id"] = call.result["message_id"]
        if state["measuring"] and call.method == "sendMessage" and call.token == state["shown_by"]:
            recorder.mark("SHOWN")

    customers = [FIRST_CUSTOMER + n for n in range(2 * repeat + 1)]
    async with Telegram() as tg:
        setup_telegram(tg, 1, customers)
        tg.watchers.append(shown)
        port = free_port()
        with tempfile.TemporaryDirectory() as data_dir:
            settings = parse_settings(
                {
                    "server": {"public_url": f"http://127.0.0.1:{port}", "secret": "bench-server-secret-0123456789"},
                    "storage": {"uri": os.environ.get("MONGODB_URI", "embedded"), "data_dir": data_dir,
                                "database": f"bench_roundtrips_{port}"},
                    "telegram": {"api_base": tg.base_url, "bots": [
                        {"name": "support", "token": CUSTOMER_BOT, "webhook_secret": CUSTOMER_SECRET}]},
                    "operator_bot": {"token": OPERATOR_BOT, "webhook_secret": OPERATOR_SECRET},
                    "operators": [{"telegram_id": FIRST_OPERATOR, "name": "Olga", "username": "olga"}],
                    "routing": {"max_chats_per_operator": 100},
                },
                environ={},
            )  # fmt: skip
            app = create_app(settings)
            app.middlewares.append(cause)
            server = TestServer(app, port=port)
            await server.start_server()
            try:

                async def write(customer: int, marker: int, label: str | None) -> Cost | None:
                    recorder.steps = []
                    state["armed"] = state["measuring"] = label is not None
                    update = tg.text_update(CUSTOMER_BOT, customer, text(marker))
                    assert await tg.deliver(CUSTOMER_BOT, update) == 200
                    await app[BUS].drain()
                    state["measuring"] = False
                    return Cost(label, recorder.steps) if label else None

                async def answer(label: str) -> Cost:
                    recorder.steps = []
                    state["armed"] = state["measuring"] = True
                    state["shown_by"] = CUSTOMER_BOT
                    words = "Thanks, looking into it"
                    update = tg.text_update(OPERATOR_BOT, FIRST_OPERATOR, words, reply_to=last_shown["message_id"])
                    assert await tg.deliver(OPERATOR_BOT, update) == 200
                    await app[BUS].drain()
                    state["measuring"], state["shown_by"] = False, OPERATOR_BOT
                    return Cost(label, recorder.steps)

                online = tg.text_update(OPERATOR_BOT, FIRST_OPERATOR, "/online")
                assert await tg.deliver(OPERATOR_BOT, online) == 200
                await app[BUS].drain()
                known, new, replies = [], [], []
                for n in range(repeat):
                    customer = customers[2 * n]
                    await write(customer, 10 * n, None)  # the first message: from now on a known contact
                    known.append(await write(customer, 10 * n + 1, "known contact"))
                    new.append(await write(customers[2 * n + 1], 10 * n + 2, "new contact"))
                    await write(customer, 10 * n + 3, None)
                    replies.append(await answer("operator reply"))
            finally:
                await server.close()
                if settings.storage.uri != "embedded":
                    from pymongo import AsyncMongoClient

                    client: AsyncMongoClient = AsyncMongoClient(settings.storage.uri)
                    await client.drop_database(settings.storage.database)
                    await client.close()
    return [c for c in known if c], [c for c in new if c], replies


def show(cost: Cost) -> None:
    print(f"\n{cost.label}: one Telegram message")
    bot = "customer" if cost.label == "operator reply" else "operator"
    print(f"  {'#':>3}  {'command':<14} {'collection':<15} {'filter / what':<52} sent by")
    n = 0
    for step in cost.steps:
        if step.what == "ANSWER":
            print(f"  {'':>3}  ---- webhook answered ({n} commands so far) ----")
        elif step.what == "SHOWN":
            print(f"  {'':>3}  ---- {bot} bot sendMessage at the Telegram emulator ({n} commands so far) ----")
        else:
            n += 1
            where = "" if step.in_request else "  [event handler]"
            print(f"  {n:>3}  {step.what:<14} {step.collection:<15} {step.summary[:52]:<52} {step.site}{where}")


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="messages of each kind measured (default 3)")
    args = parser.parse_args()
    known, new, replies = asyncio.run(measure(args.repeat))
    storage = os.environ.get("MONGODB_URI", "embedded engine")
    print(f"MongoDB commands per customer message ({storage}; {revision()})")
    show(known[-1])
    show(new[-1])
    show(replies[-1])

    print(
        f"\n{'message':<15} {'before answer':>14} {'target':>7} {'until sendMessage':>18} {'in all':>7} {'target':>7}"
    )
    totals = {}
    for label, costs in (("known", known), ("new", new), ("reply", replies)):
        before_target, total_target = TARGETS.get(label, (None, None))
        counts = {(c.before_answer, c.until_relay, c.total) for c in costs}
        before, until, total = costs[-1].before_answer, costs[-1].until_relay, costs[-1].total
        varied = "" if len(counts) == 1 else f"  (varied over {len(costs)} messages: {sorted(counts)})"
        print(
            f"{costs[-1].label:<15} {before:>14} {_or_dash(before_target):>7} "
            f"{until:>18} {total:>7} {_or_dash(total_target):>7}{varied}"
        )
        totals[label] = (before, total)
    print(
        f"\nsummary: known contact {totals['known'][0]} commands before the answer, {totals['known'][1]} in all "
        f"(targets 3 and 5); new contact {totals['new'][1]} in all (target 12); "
        f"operator reply {totals['reply'][1]} in all"
    )
    print(f"reproduce: {reproduce('roundtrips.py', sys.argv[1:])}")


if __name__ == "__main__":
    main()
