"""The least CPU our parts can spend on a customer message plus its operator reply: a floor under throughput.py.

A bare relay bot built only from what the gateway is built from (aiohttp's server, aiogram's Update parsing,
Dispatcher and Bot, PyMongo's async driver, the embedded engine in its own process, uvloop) runs in a child
process and does the least a relay must do for one Telegram customer message and one operator reply:

  customer update   parse it, store the message (insert, keyed by the update), sendMessage to the operator,
                    remember which operator message shows it (update)
  operator update   parse it, find the customer the replied-to message belongs to (find), store the answer before
                    it is sent (insert), sendMessage to the customer, mark it sent (update)

That is 5 MongoDB commands and 2 Bot API calls, where the gateway makes 17 commands and 3 Bot API calls (routing,
assignment, read marks, the outbox, the delivery reaction, idempotent operator updates). `--store none` keeps
the same steps in a dict instead, for what aiohttp and aiogram cost alone. CPU is the bot's and the engine's
user+system time (/proc) over the phase, divided by the messages; the emulator and the customers run here.

It also times a bare `python -c "import aiogram.types"`: no gateway can be ready sooner.

    python bench/floor.py [--customers 50] [--rounds 8] [--store engine,none]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    CUSTOMER_BOT,
    CUSTOMER_SECRET,
    FIRST_CUSTOMER,
    FIRST_OPERATOR,
    OPERATOR_BOT,
    OPERATOR_SECRET,
    WEBHOOK_CONNECTIONS,
    Others,
    Relayed,
    Telegram,
    cpu_seconds,
    free_port,
    gather_limited,
    import_seconds,
    median,
    reproduce,
    revision,
    setup_telegram,
    text,
)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


# -- the bare relay bot (the child process) -----------------------------------------------------------------


class InMemory:
    """The collection calls the bare relay makes, answered from dicts (`--store none`)."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.by_shown: dict[int, dict[str, Any]] = {}

    async def insert_one(self, doc: dict[str, Any]) -> None:
        self.docs[doc["_id"]] = doc

    async def update_one(self, query: dict[str, Any], update: dict[str, Any]) -> None:
        doc = self.docs[query["_id"]]
        doc.update(update["$set"])
        if "shown" in update["$set"]:
            self.by_shown[doc["shown"]] = doc

    async def find_one(self, query: dict[str, Any], projection: dict[str, Any]) -> dict[str, Any] | None:
        return self.by_shown.get(query["shown"])


async def serve(port: int, api_base: str, store: str, data_dir: str, operator: int) -> None:
    """Run the bare relay bot until its standard input closes."""
    from aiogram import Bot, Dispatcher, F, Router
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.types import Message, Update
    from aiohttp import web
    from pymongo import AsyncMongoClient

    from embedded_mongo import EngineProcess

    engine = client = None
    messages: Any = InMemory()
    if store == "engine":
        engine = EngineProcess(data_dir)
        await engine.start()
        client = AsyncMongoClient(engine.uri)
        messages = client.floor.messages
        await messages.create_index("shown")
    api = TelegramAPIServer.from_base(api_base)
    customer_bot = Bot(CUSTOMER_BOT, session=AiohttpSession(api=api))
    operator_bot = Bot(OPERATOR_BOT, session=AiohttpSession(api=api))

    customers = Router()
    operators = Router()

    @customers.message(F.text)
    async def inbound(message: Message, event_update: Update) -> None:
        key = f"tg:{event_update.update_id}"
        await messages.insert_one({"_id": key, "chat": message.chat.id, "text": message.text})
        shown = await operator_bot.send_message(operator, f"{message.from_user.full_name}: {message.text}")
        await messages.update_one({"_id": key}, {"$set": {"shown": shown.message_id}})

    @operators.message(F.reply_to_message)
    async def answer(message: Message, event_update: Update) -> None:
        found = await messages.find_one({"shown": message.reply_to_message.message_id}, {"chat": 1})
        key = f"out:{event_update.update_id}"
        await messages.insert_one({"_id": key, "chat": found["chat"], "text": message.text, "sent": None})
        sent = await customer_bot.send_message(found["chat"], message.text)
        await messages.update_one({"_id": key}, {"$set": {"sent": sent.message_id}})

    def webhook(bot: Bot, secret: str, router: Router) -> Any:
        dispatcher = Dispatcher()
        dispatcher.include_router(router)

        async def handle(request: web.Request) -> web.Response:
            if request.headers.get(SECRET_HEADER) != secret:
                return web.Response(status=401)
            update = Update.model_validate_json(await request.read(), context={"bot": bot})
            await dispatcher.feed_update(bot, update)
            return web.Response()

        return handle

    app = web.Application()
    app.router.add_post("/customer", webhook(customer_bot, CUSTOMER_SECRET, customers))
    app.router.add_post("/operator", webhook(operator_bot, OPERATOR_SECRET, operators))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    await customer_bot.set_webhook(base + "/customer", secret_token=CUSTOMER_SECRET)
    await operator_bot.set_webhook(base + "/operator", secret_token=OPERATOR_SECRET)
    print("ready", engine.pid if engine is not None else 0, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()
    await customer_bot.session.close()
    await operator_bot.session.close()
    if client is not None:
        await client.close()
    if engine is not None:
        await engine.close()


# -- the driver ---------------------------------------------------------------------------------------------


async def measure(store: str, customers: int, rounds: int) -> dict[str, Any]:
    """One bare relay bot: CPU per message and per message plus reply, and the rates."""
    ids = list(range(FIRST_CUSTOMER, FIRST_CUSTOMER + customers))
    async with Telegram() as tg:
        setup_telegram(tg, 1, ids)
        relayed = Relayed(tg)
        with tempfile.TemporaryDirectory(prefix="bench-floor-") as data_dir:
            child = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--serve", str(free_port()), tg.base_url, store, data_dir,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            try:
                assert child.stdout is not None
                line = (await child.stdout.readline()).decode()
                if not line.startswith("ready"):
                    raise RuntimeError(f"the bare relay bot did not start: {line!r}")
                pids = [child.pid] + ([int(line.split()[1])] if line.split()[1] != "0" else [])
                markers = itertools.count(1)

                async def message(customer: int) -> int:
                    marker = next(markers)
                    status = await tg.deliver(CUSTOMER_BOT, tg.text_update(CUSTOMER_BOT, customer, text(marker)))
                    if status != 200:
                        raise RuntimeError(f"the bare relay bot answered {status}")
                    return marker

                async def reply(customer: int) -> None:
                    _, chat, shown = await relayed.shown(await message(customer))
                    update = tg.text_update(OPERATOR_BOT, chat, "Thanks, looking into it", reply_to=shown)
                    if await tg.deliver(OPERATOR_BOT, update) != 200:
                        raise RuntimeError("the bare relay bot failed an operator reply")

                async def phase(step: Any, count: int) -> tuple[float, float]:
                    jobs = [lambda c=c: step(c) for _ in range(count) for c in ids]
                    cpu = sum(cpu_seconds(pid) for pid in pids)
                    began = time.perf_counter()
                    await gather_limited(jobs, WEBHOOK_CONNECTIONS)
                    elapsed = time.perf_counter() - began
                    spent = sum(cpu_seconds(pid) for pid in pids) - cpu
                    return len(jobs) / elapsed, spent * 1000 / len(jobs)

                await phase(message, 2)  # warm up: connections, caches, the first of every code path
                others = Others(*pids)
                known = await phase(message, rounds * 2)
                replied = await phase(reply, rounds)
                return {"store": store, "known": known, "reply": replied, "others": others.cores()}
            finally:
                if child.stdin is not None:
                    child.stdin.close()
                await child.wait()


async def aiogram_import_seconds() -> float:
    """The median of three bare imports of aiogram's types (which build their pydantic models)."""
    return median([await import_seconds("aiogram.types") for _ in range(3)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--store", default="engine,none")
    parser.add_argument("--serve", nargs=4, metavar=("PORT", "API", "STORE", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop  # the gateway's event loop too

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if args.serve:
        port, api, store, data_dir = args.serve
        asyncio.run(serve(int(port), api, store, data_dir, FIRST_OPERATOR))
        return
    print(f"bare relay bot, {args.customers} customers, {revision()}, {os.cpu_count()} cores")
    print(f"{'store':8} {'known msg/s':>11} {'CPU ms/msg':>10} {'msg+reply/s':>11} {'CPU ms/msg+reply':>16}  others")
    for store in args.store.split(","):
        result = asyncio.run(measure(store, args.customers, args.rounds))
        (known_rate, known_cpu), (reply_rate, reply_cpu) = result["known"], result["reply"]
        print(f"{store:8} {known_rate:11.0f} {known_cpu:10.2f} {reply_rate:11.0f} {reply_cpu:16.2f}  "
              f"{result['others']:.2f} cores")  # fmt: skip
    print(f"python -c 'import aiogram.types': {asyncio.run(aiogram_import_seconds()):.2f} s (median of 3)")
    print("rerun:", reproduce("floor.py", sys.argv[1:]))


if __name__ == "__main__":
    main()
