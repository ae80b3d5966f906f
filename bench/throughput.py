"""End-to-end messages per second, customer webhook -> stored -> the operator bot's sendMessage at the Telegram
emulator, for Telegram (webhook and long-polling mode), WhatsApp and the widget, with 50 and 500 distinct
customers; and the gateway's CPU per customer message, and per customer message plus its operator reply.

The gateway runs as `python -m gateway run` in a child process on the embedded engine (a fresh data directory);
the Telegram and Twilio emulators and the customers run in this process. Ten operators are online with room for
every conversation. Each phase keeps 40 messages in flight (Telegram's default webhook max_connections; Twilio and
the widget are offered the same), each one end to end: sent, stored, shown to the operator.

  new    every customer's first message (a new contact: card, thread, assignment)
  known  more messages from the same customers (an open thread assigned to an online operator)
  reply  one more message each, and the operator answers it with a Telegram reply; done when the customer has the
         answer (for WhatsApp, Twilio's status callbacks for it are counted too)

CPU is the gateway process's user+system time (/proc/PID/stat, the engine's threads included) over the phase,
divided by its messages; "bench CPU" is this process's (emulators and customers), to tell when the load generator,
not the gateway, is the limit. The machine is small and shared: read the ratios as much as the figures.

    python bench/throughput.py [--customers 50,500] [--channels telegram,whatsapp,widget] [--modes webhook,polling]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    FIRST_CUSTOMER,
    FIRST_OPERATOR,
    OPERATOR_BOT,
    WEBHOOK_CONNECTIONS,
    WIDGET_ORIGIN,
    BotCall,
    Config,
    Desk,
    Gateway,
    Others,
    Relayed,
    Telegram,
    gather_limited,
    median,
    own_cpu_seconds,
    percentile,
    reproduce,
    revision,
    setup_telegram,
    text,
    twilio_emulator,
)
from tests.emulators.twilio import TwilioEmulator

OPERATORS = 10
TARGET_RATE = 400.0  # known-contact Telegram messages per second
TARGET_CPU_MS = 5.0  # gateway CPU per customer message plus its operator reply


class Customers(Protocol):
    async def send(self, i: int, marker: int) -> None: ...

    def reply(self, i: int) -> Awaitable[Any]: ...


class TelegramCustomers:
    def __init__(self, desk: Desk, relayed: Relayed, ids: list[int]) -> None:
        self.desk, self.relayed, self.ids = desk, relayed, ids

    async def send(self, i: int, marker: int) -> None:
        await self.desk.telegram(self.ids[i], marker)

    def reply(self, i: int) -> Awaitable[Any]:
        return self.relayed.expect_reply(self.ids[i])


class Outgoing(list):  # type: ignore[type-arg]
    """Twilio's list of created messages, telling who waits for a message to a number."""

    def __init__(self) -> None:
        super().__init__()
        self.waiters: dict[str, asyncio.Future[None]] = {}

    def append(self, message: Any) -> None:
        super().append(message)
        if (waiter := self.waiters.pop(message.to, None)) and not waiter.done():
            waiter.set_result(None)


class WhatsAppCustomers:
    def __init__(self, desk: Desk, twilio: TwilioEmulator, outgoing: Outgoing, ids: list[int]) -> None:
        self.desk, self.twilio, self.outgoing, self.ids = desk, twilio, outgoing, ids

    async def send(self, i: int, marker: int) -> None:
        await self.desk.whatsapp(self.ids[i], marker)

    def reply(self, i: int) -> Awaitable[Any]:
        number = f"whatsapp:+1415{2_000_000 + self.ids[i] % 8_000_000:07d}"
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.outgoing.waiters[number] = waiter
        return waiter


class WidgetCustomers:
    """Visitors on their own WebSockets; a message is sent once the server acknowledged it (stored)."""

    def __init__(self, sockets: list[aiohttp.ClientWebSocketResponse]) -> None:
        self.sockets = sockets

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, base: str, count: int) -> WidgetCustomers:
        async def visitor() -> aiohttp.ClientWebSocketResponse:
            ws = await session.ws_connect(base + "/channels/webwidget/ws", headers={"Origin": WIDGET_ORIGIN})
            page = {"url": "https://shop.example/pricing", "title": "Pricing", "referrer": ""}
            await ws.send_json({"type": "hello", "page": page})
            await cls._frame(ws, "welcome")
            return ws

        sockets = await gather_limited([visitor] * count, WEBHOOK_CONNECTIONS)
        return cls(sockets)

    @staticmethod
    async def _frame(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
        async with asyncio.timeout(60):
            while True:
                frame = await ws.receive_json()
                if frame.get("type") == kind:
                    return frame

    async def send(self, i: int, marker: int) -> None:
        await self.sockets[i].send_json({"type": "message", "text": text(marker), "client_id": f"c{marker}"})
        await self._frame(self.sockets[i], "ack")

    def reply(self, i: int) -> Awaitable[Any]:
        return self._frame(self.sockets[i], "message")

    async def close(self) -> None:
        for ws in self.sockets:
            await ws.close()


@dataclass
class Phase:
    mode: str
    channel: str
    customers: int
    kind: str
    count: int
    seconds: float
    latencies: list[float]
    gateway_cpu: float
    bench_cpu: float
    others: float  # cores the rest of the machine kept busy meanwhile

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @property
    def cpu_ms(self) -> float:
        return self.gateway_cpu / self.count * 1000

    @property
    def bench_ms(self) -> float:
        return self.bench_cpu / self.count * 1000


class Run:
    """One gateway (one Telegram mode) with its emulators, operators online."""

    def __init__(self, mode: str, workdir: Path, customer_ids: list[int], capacity: int, engine: str) -> None:
        self.mode = mode
        self.engine = engine
        self.workdir = workdir
        self.customer_ids = customer_ids
        self.capacity = capacity
        self.markers = itertools.count(1)
        self.stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Run:
        try:
            return await self._start()
        except BaseException:
            await self.stack.aclose()
            raise

    async def _start(self) -> Run:
        self.tg = await self.stack.enter_async_context(Telegram())
        setup_telegram(self.tg, OPERATORS, self.customer_ids)
        self.twilio = await self.stack.enter_async_context(twilio_emulator())
        self.outgoing = Outgoing()
        self.twilio.messages = self.outgoing
        # No cap on connections: each widget visitor holds one for its WebSocket.
        self.session = await self.stack.enter_async_context(
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        )
        self.relayed = Relayed(self.tg)
        answers: list[BotCall] = []

        def answered(call: BotCall) -> None:
            chat = call.result.get("chat", {}).get("id") if isinstance(call.result, dict) else None
            if call.token == OPERATOR_BOT and call.method == "sendMessage" and chat in operators:
                answers.append(call)

        operators = range(FIRST_OPERATOR, FIRST_OPERATOR + OPERATORS)
        self.tg.watchers.append(answered)
        config = Config(self.workdir, self.workdir / "data", self.tg.base_url, self.twilio.base_url, mode=self.mode,
                        operators=OPERATORS, max_chats=self.capacity, engine=self.engine)  # fmt: skip
        self.gateway = Gateway(config)
        await self.gateway.start(self.session)
        self.stack.push_async_callback(self.gateway.stop)
        self.desk = Desk(self.tg, self.gateway, self.twilio)
        await self.desk.operators_online(OPERATORS)
        await until(lambda: len(answers) >= OPERATORS, "the operators to be online")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stack.aclose()

    async def quiet(self) -> None:
        """Until the gateway stops calling the emulators (its event handlers and callbacks have caught up)."""
        seen = -1
        while (now := len(self.tg.requests) + len(self.twilio.requests) + len(self.twilio.status_callbacks)) != seen:
            seen = now
            await asyncio.sleep(0.3)
            with contextlib.suppress(TimeoutError):
                await self.twilio.settle(timeout=10)

    async def phase(self, channel: str, customers: Customers, n: int, kind: str, rounds: int) -> Phase:
        def job(i: int, marker: int) -> Callable[[], Awaitable[float]]:
            return lambda: self._one(customers, i, marker, kind)

        # Customers take turns, and no more lanes than customers: each has one message in flight at a time.
        jobs = [job(i, next(self.markers)) for _ in range(rounds) for i in range(n)]
        await self.quiet()
        cpu, own, started = self.gateway.cpu(), own_cpu_seconds(), time.perf_counter()
        others = Others(*self.gateway.pids())
        latencies = await gather_limited(jobs, min(n, WEBHOOK_CONNECTIONS))
        elapsed = time.perf_counter() - started
        busy = others.cores()
        await self.quiet()
        return Phase(self.mode, channel, n, kind, len(jobs), elapsed, latencies, self.gateway.cpu() - cpu,
                     own_cpu_seconds() - own, busy)  # fmt: skip

    async def _one(self, customers: Customers, i: int, marker: int, kind: str) -> float:
        """Send one message; its latency to the operator's sendMessage (to the customer's answer for replies)."""
        started = time.perf_counter()
        await customers.send(i, marker)
        shown_at, chat, message_id = await self.relayed.shown(marker)
        if kind != "reply":
            return shown_at - started
        answer = customers.reply(i)
        await self.desk.operator_reply(chat, message_id)
        async with asyncio.timeout(60):
            await answer
        return time.perf_counter() - started


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(1200):
        if check():
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"gave up waiting for {what}")


async def run_mode(mode: str, sizes: list[int], channels: list[str], engine: str) -> tuple[list[Phase], list[str]]:
    """Every phase of every channel and size on one gateway in `mode`."""
    ids = iter(range(FIRST_CUSTOMER, FIRST_CUSTOMER + 10_000_000))
    plan = {(c, n): [next(ids) for _ in range(n)] for c in channels for n in sizes}
    telegram_ids = [uid for (c, _), us in plan.items() if c == "telegram" for uid in us]
    phases: list[Phase] = []
    with tempfile.TemporaryDirectory(prefix=f"bench-throughput-{mode}-") as workdir:
        capacity = sum(len(us) for us in plan.values())  # one operator could take every conversation
        async with Run(mode, Path(workdir), telegram_ids, capacity, engine) as run:
            idle_cpu = run.gateway.cpu()
            await asyncio.sleep(2.0)
            idle = (run.gateway.cpu() - idle_cpu) / 2.0
            for n in sizes:
                for channel in channels:
                    customers: Customers
                    if channel == "telegram":
                        customers = TelegramCustomers(run.desk, run.relayed, plan[channel, n])
                    elif channel == "whatsapp":
                        customers = WhatsAppCustomers(run.desk, run.twilio, run.outgoing, plan[channel, n])
                    else:
                        customers = await WidgetCustomers.open(run.session, run.gateway.base, n)
                    known_rounds = max(2, 500 // n)
                    for kind, rounds in (("new", 1), ("known", known_rounds), ("reply", 1)):
                        phase = await run.phase(channel, customers, n, kind, rounds)
                        phases.append(phase)
                        print(f"  ... {mode} {channel} {n} customers {kind}: {phase.rate:,.0f}/s", flush=True)
                    if isinstance(customers, WidgetCustomers):
                        await customers.close()
            notes = [f"{mode}: gateway idle CPU {idle * 1000:.1f} ms/s (outbox poll, routing rounds)"]
            errors = run.gateway.errors()
            if errors:
                notes.append(f"{mode}: {len(errors)} error lines in the gateway's log, e.g. {errors[0][:200]}")
    return phases, notes


def report(phases: list[Phase], notes: list[str], engine: str) -> None:
    reference = next((p for p in phases if p.kind == "known" and p.channel == "telegram"), phases[0])
    print(f"\nend-to-end throughput, gateway in a child process, embedded engine in a {engine} ({revision()})")
    print(f"ratios (x) are to {reference.mode} {reference.channel} {reference.customers} customers, known contacts")
    header = (
        f"{'mode':<8} {'channel':<9} {'cust.':>5} {'phase':<6} {'msgs':>5} {'msg/s':>7} {'x':>5} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'gw CPU ms/msg':>14} {'x':>5} {'bench CPU ms/msg':>17} {'others':>7}"
    )
    print(header)
    print("-" * len(header))
    for p in phases:
        print(
            f"{p.mode:<8} {p.channel:<9} {p.customers:>5} {p.kind:<6} {p.count:>5} {p.rate:>7,.0f} "
            f"{p.rate / reference.rate:>5.2f} {median(p.latencies) * 1000:>7.1f} "
            f"{percentile(p.latencies, 99) * 1000:>7.1f} "
            f"{p.cpu_ms:>14.2f} {p.cpu_ms / reference.cpu_ms:>5.2f} {p.bench_ms:>17.2f} {p.others:>7.2f}"
        )
    print("('reply' rows: one customer message plus its operator reply, latency to the customer's answer; 'others':")
    print(" cores other processes on this machine kept busy meanwhile, out of 2: the noise in these figures)")
    for note in notes:
        print(note)
    known = [p for p in phases if p.kind == "known" and p.channel == "telegram"]
    replies = [p for p in phases if p.kind == "reply"]
    best = max(known, key=lambda p: p.rate) if known else None
    worst_cpu = max(replies, key=lambda p: p.cpu_ms) if replies else None
    summary = []
    if best:
        summary.append(
            f"known-contact Telegram up to {best.rate:,.0f} msg/s ({best.mode}, {best.customers} customers; "
            f"target >= {TARGET_RATE:.0f})"
        )
    if worst_cpu:
        summary.append(
            f"gateway CPU per message + operator reply {min(p.cpu_ms for p in replies):.1f}-{worst_cpu.cpu_ms:.1f} ms "
            f"(target <= {TARGET_CPU_MS:.0f})"
        )
    print("\nsummary: " + "; ".join(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", default="50,500", help="distinct customers per channel (default 50,500)")
    parser.add_argument("--channels", default="telegram,whatsapp,widget")
    parser.add_argument("--modes", default="webhook,polling", help="Telegram modes; polling runs Telegram only")
    parser.add_argument("--engine", default="process", choices=["process", "thread"], help="storage.engine")
    args = parser.parse_args()
    sizes = [int(s) for s in args.customers.split(",")]
    channels = [c for c in args.channels.split(",") if c]
    phases: list[Phase] = []
    notes: list[str] = []
    for mode in args.modes.split(","):
        chosen = channels if mode == "webhook" else [c for c in channels if c == "telegram"]
        if not chosen:
            continue
        got, said = asyncio.run(run_mode(mode, sizes, chosen, args.engine))
        phases += got
        notes += said
    report(phases, notes, args.engine)
    print(f"reproduce: {reproduce('throughput.py', sys.argv[1:])}")


if __name__ == "__main__":
    main()
