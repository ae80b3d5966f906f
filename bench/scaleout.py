"""Several gateway processes on one embedded engine: end-to-end messages per second with 1, 2 and 4 processes.

The engine runs alone (`gateway embedded-db`), each gateway as `python -m gateway run` pointed at it; the Telegram
emulator and the customers run in this process, which also stands in for the load balancer: every customer
update is POSTed, with the bot's secret token, to the next process in turn. Ten operators are online. A message
counts when the operator bot's sendMessage showing it reaches the emulator, whichever process sent it; 40 are
in flight at a time (Telegram's default webhook max_connections).

  new    every customer's first message (card, thread, assignment)
  known  more messages from the same customers

CPU is the gateways' and the engine's user+system time over the phase, per message. On a 2-core machine more
processes cannot add cores: read the figures as "what N processes cost", and on bigger machines as a floor.

    python bench/scaleout.py [--processes 1,2,4] [--customers 200] [--rounds 5]
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

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    CUSTOMER_BOT,
    CUSTOMER_SECRET,
    FIRST_CUSTOMER,
    FIRST_OPERATOR,
    OPERATOR_BOT,
    OPERATOR_SECRET,
    ROOT,
    WEBHOOK_CONNECTIONS,
    BotCall,
    Config,
    Gateway,
    Others,
    Relayed,
    Telegram,
    cpu_seconds,
    free_port,
    gather_limited,
    median,
    percentile,
    reproduce,
    revision,
    setup_telegram,
    text,
)

OPERATORS = 10
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass
class Phase:
    processes: int
    kind: str
    count: int
    seconds: float
    latencies: list[float]
    cpu: float  # gateways and engine
    others: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @property
    def cpu_ms(self) -> float:
        return self.cpu / self.count * 1000


class Cluster:
    """The engine, N gateways on it, the Telegram emulator, and this process as their load balancer."""

    def __init__(self, workdir: Path, processes: int, customers: list[int]) -> None:
        self.workdir, self.processes, self.customers = workdir, processes, customers
        self.stack = contextlib.AsyncExitStack()
        self.turn = itertools.count()
        self.gateways: list[Gateway] = []
        self.engine: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Cluster:
        try:
            await self._start()
        except BaseException:
            await self.stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stack.aclose()

    async def _start(self) -> None:
        self.tg = await self.stack.enter_async_context(Telegram())
        setup_telegram(self.tg, OPERATORS, self.customers)
        self.session = await self.stack.enter_async_context(
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        )
        self.relayed = Relayed(self.tg)
        online: set[int] = set()

        def answered(call: BotCall) -> None:
            chat = call.result.get("chat", {}).get("id") if isinstance(call.result, dict) else None
            if call.token == OPERATOR_BOT and call.method == "sendMessage" and chat is not None:
                online.add(chat)

        self.tg.watchers.append(answered)
        uri = await self._start_engine()
        for n in range(self.processes):
            config = Config(self.workdir, self.workdir / "unused", self.tg.base_url, operators=OPERATORS,
                            max_chats=len(self.customers), storage_uri=uri, name=f"gw{n}")  # fmt: skip
            self.gateways.append(Gateway(config))
        await asyncio.gather(*(g.start(self.session) for g in self.gateways))
        for g in self.gateways:
            self.stack.push_async_callback(g.stop)
        for n in range(OPERATORS):
            await self.post(OPERATOR_BOT, self.tg.text_update(OPERATOR_BOT, FIRST_OPERATOR + n, "/online"))
        await until(lambda: len(online) >= OPERATORS, "the operators to be online")

    async def _start_engine(self) -> str:
        port = free_port()
        log = (self.workdir / "engine.log").open("ab")
        self.stack.callback(log.close)
        self.engine = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "embedded-db", "--port", str(port), "--data-dir",
            str(self.workdir / "db"), cwd=ROOT, stdout=log, stderr=log,
        )  # fmt: skip
        self.stack.push_async_callback(self._stop_engine)
        engine_log = self.workdir / "engine.log"
        await until(lambda: "listening" in engine_log.read_text(errors="replace"), "the engine to listen")
        return f"mongodb://127.0.0.1:{port}/?directConnection=true"

    async def _stop_engine(self) -> None:
        if self.engine is not None and self.engine.returncode is None:
            self.engine.terminate()
            await self.engine.wait()

    def cpu(self) -> float:
        assert self.engine is not None
        return sum(cpu_seconds(g.pid) for g in self.gateways) + cpu_seconds(self.engine.pid)

    async def post(self, token: str, update: dict) -> None:
        """What the load balancer does with Telegram's webhook call: hand it to the next process."""
        gateway = self.gateways[next(self.turn) % len(self.gateways)]
        path, secret = (
            ("/operators/telegram", OPERATOR_SECRET) if token == OPERATOR_BOT else
            ("/channels/telegram/support", CUSTOMER_SECRET)
        )  # fmt: skip
        async with self.session.post(gateway.base + path, json=update, headers={SECRET_HEADER: secret}) as answer:
            if answer.status != 200:
                raise RuntimeError(f"{gateway.config.name} answered a webhook with {answer.status}")

    async def one(self, customer: int, marker: int) -> float:
        started = time.perf_counter()
        await self.post(CUSTOMER_BOT, self.tg.text_update(CUSTOMER_BOT, customer, text(marker)))
        shown_at, _, _ = await self.relayed.shown(marker)
        return shown_at - started

    async def phase(self, kind: str, rounds: int, markers: itertools.count) -> Phase:
        def job(customer: int, marker: int) -> Callable[[], Awaitable[float]]:
            return lambda: self.one(customer, marker)

        jobs = [job(customer, next(markers)) for _ in range(rounds) for customer in self.customers]
        await asyncio.sleep(1.0)  # let the previous phase's event handlers finish
        assert self.engine is not None
        others = Others(self.engine.pid, *(g.pid for g in self.gateways))
        cpu, started = self.cpu(), time.perf_counter()
        latencies = await gather_limited(jobs, min(len(self.customers), WEBHOOK_CONNECTIONS))
        elapsed = time.perf_counter() - started
        return Phase(self.processes, kind, len(jobs), elapsed, latencies, self.cpu() - cpu, others.cores())


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(1200):
        if check():
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"gave up waiting for {what}")


async def measure(processes: int, customers: int, rounds: int) -> tuple[list[Phase], list[str]]:
    ids = list(range(FIRST_CUSTOMER, FIRST_CUSTOMER + customers))
    markers = itertools.count(1)
    with tempfile.TemporaryDirectory(prefix=f"bench-scaleout-{processes}-") as workdir:
        async with Cluster(Path(workdir), processes, ids) as cluster:
            phases = [await cluster.phase("new", 1, markers), await cluster.phase("known", rounds, markers)]
            notes = [
                f"{processes} processes: {len(errors)} error lines in {g.config.name}'s log, e.g. {errors[0][:200]}"
                for g in cluster.gateways
                if (errors := g.errors())
            ]
    return phases, notes


def report(phases: list[Phase], notes: list[str]) -> None:
    print(f"\nseveral gateway processes on one embedded engine ({revision()})")
    header = (
        f"{'processes':>9} {'phase':<6} {'msgs':>5} {'msg/s':>7} {'x':>5} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'CPU ms/msg':>11} {'others':>7}"
    )
    print(header)
    print("-" * len(header))
    for p in phases:
        reference = next(q for q in phases if q.kind == p.kind)
        print(
            f"{p.processes:>9} {p.kind:<6} {p.count:>5} {p.rate:>7,.0f} {p.rate / reference.rate:>5.2f} "
            f"{median(p.latencies) * 1000:>7.1f} {percentile(p.latencies, 99) * 1000:>7.1f} {p.cpu_ms:>11.2f} "
            f"{p.others:>7.2f}"
        )
    print("(x: to the first row of the same phase; CPU: gateways and engine; 'others': cores other processes on")
    print(" this machine kept busy meanwhile, out of 2: the noise in these figures)")
    for note in notes:
        print(note)
    known = {p.processes: p.rate for p in phases if p.kind == "known"}
    print("\nsummary: known-contact messages/s " + ", ".join(f"{n} processes {r:,.0f}" for n, r in known.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="known-contact messages per customer")
    args = parser.parse_args()
    phases: list[Phase] = []
    notes: list[str] = []
    for n in (int(p) for p in args.processes.split(",")):
        got, said = asyncio.run(measure(n, args.customers, args.rounds))
        phases += got
        notes += said
        print(f"  ... {n} processes: known {got[-1].rate:,.0f} msg/s", flush=True)
    report(phases, notes)
    print(f"reproduce: {reproduce('scaleout.py', sys.argv[1:])}")


if __name__ == "__main__":
    main()
