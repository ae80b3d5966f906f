"""How the gateway behaves as its store grows: stores of 0, 100k and 1M messages on the embedded engine.

For each size it prints the gateway's time from spawn to /readyz and its RSS (when ready, after the load, peak),
ingest latency at a fixed offered rate of 50 Telegram messages per second (webhook answered = stored; and end to
end, to the operator bot's sendMessage), the cost of the outbox poll (MessageRepo.claim_due, timed from a client
on the gateway's own engine, and the engine's CPU per call), and the gateway's idle CPU (the outbox and routing
loops).

The stores are generated through the engine itself: bulk inserts of contacts, threads and messages built from the
gateway's own model (about 20 messages and 2 closed threads per contact, on Telegram, WhatsApp and the widget),
with every index of gateway.storage.mongo.INDEXES created first. They are cached under
$TMPDIR/gateway-bench-scale/ (keyed by the engine's storage format and the index set), and each run works on a
copy, so a rerun starts at once. The load, with ten operators online: 200 Telegram customers new to the store write
their first message, 10 a second; then they write 1000 more at 50 a second, none twice within a second, each sent
at its time whatever the gateway's pace (an open loop).

    python bench/scale.py [--sizes 0,100000,1000000] [--rate 50] [--messages 1000] [--rebuild]

Targets: p99 at 1M within 2x of the empty store; RSS under 400 MB and ready in under 5 s at 1M.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from bson import ObjectId
from pymongo import AsyncMongoClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    CUSTOMER_BOT,
    FIRST_CUSTOMER,
    SENDER,
    Config,
    Desk,
    Gateway,
    Others,
    Relayed,
    Telegram,
    import_seconds,
    median,
    percentile,
    reproduce,
    revision,
    setup_telegram,
    text,
    twilio_emulator,
)
from embedded_mongo import EmbeddedMongo, History
from embedded_mongo.storage import FORMAT
from gateway.model import (
    Author,
    Contact,
    Content,
    Direction,
    Identity,
    Message,
    MessageStatus,
    Thread,
    ThreadStatus,
    to_doc,
)
from gateway.storage.messages import MessageRepo
from gateway.storage.mongo import INDEXES, ensure_indexes

GENERATOR = 1  # bump when the generated documents change
OPERATORS = 10
CUSTOMERS = 200
NEW_RATE = 10.0  # first messages per second, before the measured stream
POLLS = 300
DATABASE = "gateway"
TARGETS = "p99 at 1M within 2x of the empty store; RSS < 400 MB and ready < 5 s at 1M"
NOW = datetime.now(UTC).replace(microsecond=0)
FIRST_NAMES = ("Ann", "Bob", "Carla", "David", "Eva", "Farid", "Grace", "Hugo", "Ines", "Jamal", "Kim", "Lena")
LAST_NAMES = ("Lee", "Smith", "Garcia", "Novak", "Okafor", "Rossi", "Tanaka", "Weber", "Silva", "Khan")
WORDS = [
    "order",
    "parcel",
    "delivery",
    "refund",
    "invoice",
    "address",
    "payment",
    "broken",
    "late",
    "thanks",
    "please",
    "help",
    "account",
]


# -- the stores --------------------------------------------------------------------------------------


def cache_root() -> Path:
    index_set = json.dumps({c: [sorted(m.document.items()) for m in ms] for c, ms in INDEXES.items()}, default=str)
    key = hashlib.sha256(f"{GENERATOR}:{FORMAT}:{index_set}".encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / "gateway-bench-scale" / key


class People:
    """Contacts, threads and messages shaped as the gateway stores them, generated in order."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.numbers = 0

    def object_id(self, at: datetime) -> ObjectId:
        """An id made at `at`, as the gateway's would have been: ids grow with creation time."""
        return ObjectId(int(at.timestamp()).to_bytes(4, "big") + self.rng.randbytes(8))

    def contact(self, n: int) -> tuple[dict, list[str], str]:
        """A contact card; returns it, its identity keys and the channel its customer writes from."""
        rng = self.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        since = NOW - timedelta(days=rng.uniform(1, 365))
        channel = rng.choices(("telegram", "whatsapp", "webwidget"), (60, 25, 15))[0]
        phone = f"+1415{3_000_000 + n:07d}"
        if channel == "telegram":
            uid = str(10_000_000 + n)
            identity = Identity(f"telegram:support:{uid}", "telegram", "support", uid, username=f"{first.lower()}{n}",
                                display_name=f"{first} {last}", last_inbound_at=since)  # fmt: skip
            phones: tuple[str, ...] = ()
        elif channel == "whatsapp":
            identity = Identity(f"whatsapp:{SENDER[9:]}:{phone}", "whatsapp", SENDER[9:], phone,
                                display_name=first, last_inbound_at=since)  # fmt: skip
            phones = (phone,)
        else:
            visitor = f"v{n:012x}"
            identity = Identity(f"webwidget:web:{visitor}", "webwidget", "web", visitor, last_inbound_at=since)
            phones = ()
        emails = (f"{first.lower()}.{last.lower()}{n}@example.com",) if rng.random() < 0.4 else ()
        card = Contact(
            id=self.object_id(since), created_at=since, updated_at=since, name=f"{first} {last}", phones=phones,
            emails=emails, identities=(identity,), verified_phones=phones,
        )  # fmt: skip
        return to_doc(card), [identity.key], channel

    def thread(self, contact: dict, key: str, channel: str, opened: datetime, previous: ObjectId | None) -> dict:
        """A closed conversation, answered and resolved by an operator."""
        self.numbers += 1
        operator = 1001 + self.rng.randrange(OPERATORS)
        thread = Thread(
            id=self.object_id(opened), number=self.numbers, contact_id=contact["_id"], channel=channel, identity=key,
            status=ThreadStatus.CLOSED, created_at=opened, last_message_at=opened + timedelta(minutes=20),
            open=False, operator_id=operator, assigned_at=opened + timedelta(seconds=40),
            first_assigned_at=opened + timedelta(seconds=40), queued_at=opened,
            first_response_at=opened + timedelta(minutes=2), closed_at=opened + timedelta(minutes=25),
            closed_by=operator, previous_thread_id=previous,
        )  # fmt: skip
        return to_doc(thread)

    def message(self, thread: dict, k: int, at: datetime) -> dict:
        """The k-th message of a thread: the customer and the operator take turns."""
        inbound = k % 2 == 0
        channel, key = thread["channel"], thread["identity"]
        account = key.split(":")[1]
        external = key.split(":", 2)[2]
        if channel == "whatsapp":
            channel_id = "SM" + self.rng.randbytes(16).hex()
        elif channel == "telegram":
            channel_id = f"{external}:{thread['number'] * 100 + k}"
        else:
            channel_id = f"{external}:c{thread['number'] * 100 + k}" if inbound else None
        words = " ".join(self.rng.choices(WORDS, k=self.rng.randint(3, 14)))
        message = Message(
            id=self.object_id(at), thread_id=thread["_id"],
            contact_id=thread["contact_id"], direction=Direction.IN if inbound else Direction.OUT,
            author=Author.CONTACT if inbound else Author.OPERATOR, channel=channel, created_at=at,
            status=MessageStatus.RECEIVED if inbound else MessageStatus.READ, content=Content(text=words.capitalize()),
            account=account, identity=key, channel_message_id=channel_id,
            author_id=None if inbound else thread["operator_id"], author_name=None if inbound else "Operator",
            sent_at=at if inbound else at + timedelta(seconds=1),
        )  # fmt: skip
        return to_doc(message)


async def generate(data_dir: Path, size: int) -> float:
    """A store of `size` messages in data_dir, through the engine; returns the seconds it took."""
    began = time.perf_counter()
    people = People(seed=size)
    # Little change history: a store that has run for months keeps only its last day of changes anyway.
    async with EmbeddedMongo(data_dir, history=History(max_bytes=8 * 1024 * 1024, max_age_seconds=3600)) as engine:
        client: AsyncMongoClient = AsyncMongoClient(engine.uri, tz_aware=True)
        db = client[DATABASE]
        await ensure_indexes(db)
        contacts: list[dict] = []
        threads: list[dict] = []
        messages: list[dict] = []

        async def flush(final: bool = False) -> None:
            for name, batch in (("contacts", contacts), ("threads", threads), ("messages", messages)):
                if batch and (final or len(batch) >= 5000):
                    await db[name].insert_many(batch, ordered=False)
                    batch.clear()

        made, n = 0, 0
        while made < size:
            contact, keys, channel = people.contact(n)
            contacts.append(contact)
            previous = None
            opened = contact["created_at"]
            for _ in range(people.rng.choice((1, 2, 2, 3))):
                thread = people.thread(contact, keys[0], channel, opened, previous)
                threads.append(thread)
                for k in range(min(size - made, people.rng.randint(6, 14))):
                    messages.append(people.message(thread, k, opened + timedelta(minutes=2 * k)))
                    made += 1
                previous = thread["_id"]
                opened += timedelta(days=people.rng.uniform(1, 60))
                if made >= size:
                    break
            n += 1
            await flush()
        await flush(final=True)
        if people.numbers:
            await db.counters.insert_one({"_id": "thread_number", "seq": people.numbers})
        await client.close()
    return time.perf_counter() - began


async def store(size: int, rebuild: bool) -> tuple[Path, float | None]:
    """The cached store of this size (generated when missing); the seconds generating took, if it was now."""
    path = cache_root() / f"messages-{size}"
    done = path / "complete"
    if rebuild and path.exists():
        shutil.rmtree(path)
    if done.exists():
        return path, None
    if path.exists():
        shutil.rmtree(path)  # half made by a run that was stopped
    path.mkdir(parents=True)
    took = await generate(path / "data", size)
    done.write_text(f"{size} messages\n")
    return path, took


# -- one run ----------------------------------------------------------------------------------------


@dataclass
class Load:
    """What one stream of messages met."""

    ingest: list[float] = field(default_factory=list)  # until the webhook was answered (the message stored)
    shown: list[float] = field(default_factory=list)  # until the operator bot's sendMessage
    late: int = 0  # messages sent more than 20 ms after their time (the load generator fell behind)
    unshown: list[int] = field(default_factory=list)  # markers of messages no operator was shown within a minute
    others: float = float("nan")  # cores the rest of the machine kept busy meanwhile (the noise)

    @property
    def p99(self) -> float:
        return percentile(self.ingest, 99)


@dataclass
class Result:
    size: int
    generated_s: float | None
    ready_s: float
    rss_ready: float
    rss_after: float
    rss_peak: float
    new: Load = field(default_factory=lambda: Load())  # the customers' first messages
    known: Load = field(default_factory=lambda: Load())  # their later messages, at the offered rate
    log: Path | None = None  # the gateway's log, kept when something went wrong
    polls: list[float] = field(default_factory=list)
    poll_cpu_ms: float = float("nan")
    idle_ms_per_s: float = float("nan")
    errors: int = 0
    slow: list[str] = field(default_factory=list)  # the engine's slow-command and slow-commit warnings


def copy_store(source: Path, dest: Path) -> None:
    """Copy a cached store and flush the copy to disk: otherwise the gateway's first fsync of the file (a WAL
    checkpoint) would write out the whole copy, a second or more at 1M, and be counted as its latency."""
    shutil.copytree(source, dest)
    for path in dest.rglob("*"):
        if path.is_file():
            with path.open("rb") as copied:
                os.fsync(copied.fileno())


async def run(size: int, cached: Path, generated: float | None, rate: float, count: int) -> Result:
    with tempfile.TemporaryDirectory(prefix=f"bench-scale-{size}-") as workdir:
        work = Path(workdir)
        await asyncio.to_thread(copy_store, cached / "data", work / "data")
        customers = [FIRST_CUSTOMER + n for n in range(CUSTOMERS)]
        async with Telegram() as tg, twilio_emulator() as twilio, aiohttp.ClientSession() as session:
            setup_telegram(tg, OPERATORS, customers)
            relayed = Relayed(tg)
            config = Config(work, work / "data", tg.base_url, twilio.base_url, operators=OPERATORS, max_chats=CUSTOMERS)
            gateway = Gateway(config)
            try:
                await gateway.start(session)
                rss_ready, _ = gateway.memory()
                result = Result(size, generated, gateway.ready_seconds, rss_ready, float("nan"), float("nan"))
                desk = Desk(tg, gateway, twilio)
                await desk.operators_online(OPERATORS)
                await measure_polls(gateway, result)
                markers = itertools.count(1_000_000 * (size + 1))
                result.new = await offered(desk, relayed, customers, NEW_RATE, markers)
                result.known = await offered(desk, relayed, schedule(customers, count, rate), rate, markers)
                idle = gateway.cpu()
                await asyncio.sleep(3.0)
                result.idle_ms_per_s = (gateway.cpu() - idle) / 3.0 * 1000
                result.rss_after, result.rss_peak = gateway.memory()
                result.errors = len(gateway.errors())
                result.slow = gateway.slow()
            finally:
                await gateway.stop()
            if result.errors or result.slow or result.new.unshown or result.known.unshown:
                result.log = cache_root().parent / f"gateway-{size}.log"
                shutil.copyfile(gateway.log, result.log)
    return result


async def measure_polls(gateway: Gateway, result: Result) -> None:
    """MessageRepo.claim_due as the outbox calls it, from a client on the gateway's engine."""
    uri = gateway.engine_uri()
    if uri is None:
        return
    client: AsyncMongoClient = AsyncMongoClient(uri, tz_aware=True)
    try:
        db = client[DATABASE]
        repo = MessageRepo(db["messages"], db["early_reports"])
        await repo.claim_due(datetime.now(UTC), datetime.now(UTC))  # connect first
        cpu = gateway.cpu()
        for _ in range(POLLS):
            now = datetime.now(UTC)
            started = time.perf_counter()
            await repo.claim_due(now, now + timedelta(seconds=120))
            result.polls.append(time.perf_counter() - started)
        result.poll_cpu_ms = (gateway.cpu() - cpu) / POLLS * 1000
    finally:
        await client.close()


def schedule(customers: list[int], count: int, rate: float) -> list[int]:
    """Who writes each of `count` messages: customers who wrote before, none of them twice within a second."""
    rng = random.Random(count)
    last = {c: -len(customers) + i for i, c in enumerate(customers)}
    gap = max(1, int(rate))  # a second's worth of messages
    order = []
    for k in range(count):
        due = [c for c, at in last.items() if k - at >= gap] or [min(last, key=last.__getitem__)]
        who = rng.choice(due)
        last[who] = k
        order.append(who)
    return order


async def offered(desk: Desk, relayed: Relayed, senders: list[int], rate: float, markers: Iterator[int]) -> Load:
    """One message from each of `senders` in turn, `rate` per second, each sent at its own time whatever happened
    to the others (an open loop)."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.5
    load = Load()
    others = Others(*desk.gateway.pids())

    async def one(k: int, customer: int, marker: int) -> None:
        slot = start + k / rate
        await asyncio.sleep(max(0.0, slot - loop.time()))
        if loop.time() - slot > 0.02:
            load.late += 1
        began = time.perf_counter()
        await desk.tg.deliver(CUSTOMER_BOT, desk.tg.text_update(CUSTOMER_BOT, customer, text(marker)))
        load.ingest.append(time.perf_counter() - began)
        try:
            shown_at, _, _ = await relayed.shown(marker)
        except TimeoutError:
            load.unshown.append(marker)
            return
        load.shown.append(shown_at - began)

    await asyncio.gather(*(one(k, customer, next(markers)) for k, customer in enumerate(senders)))
    load.others = others.cores()
    return load


def report(results: list[Result], rate: float, floor: float) -> None:
    base = results[0]
    print(f"\nthe gateway on stores of growing size (embedded engine; {revision()})")
    print(
        f"known: customers who wrote before, {rate:g} messages/s offered; new: first messages, {NEW_RATE:g}/s; "
        f"ingest = until the webhook is answered, shown = until the operator's sendMessage; ratios (x) are to the "
        f"{base.size:,}-message store"
    )
    header = (
        f"{'messages':>9} {'ready s':>8} {'x':>5} {'RSS MB ready':>13} {'after':>6} {'peak':>6} "
        f"{'known ingest p50':>17} {'p99 ms':>7} {'x':>5} {'shown p50':>10} {'p99':>7} "
        f"{'new ingest p50':>15} {'p99':>7} {'x':>5} "
        f"{'claim_due p50 ms':>17} {'p99':>6} {'x':>5} {'engine CPU ms':>14} {'idle CPU ms/s':>14} {'others':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        known, new = r.known, r.new
        print(
            f"{r.size:>9,} {r.ready_s:>8.2f} {r.ready_s / base.ready_s:>5.2f} {r.rss_ready:>13.0f} "
            f"{r.rss_after:>6.0f} {r.rss_peak:>6.0f} "
            f"{median(known.ingest) * 1000:>17.1f} {known.p99 * 1000:>7.1f} {known.p99 / base.known.p99:>5.2f} "
            f"{median(known.shown) * 1000:>10.1f} {percentile(known.shown, 99) * 1000:>7.1f} "
            f"{median(new.ingest) * 1000:>15.1f} {new.p99 * 1000:>7.1f} {new.p99 / base.new.p99:>5.2f} "
            f"{median(r.polls) * 1000:>17.2f} {percentile(r.polls, 99) * 1000:>6.2f} "
            f"{median(r.polls) / median(base.polls):>5.2f} {r.poll_cpu_ms:>14.2f} {r.idle_ms_per_s:>14.1f} "
            f"{r.known.others:>7.2f}"
        )
    print(f"(a bare interpreter importing the gateway's modules takes {floor:.2f} s of every 'ready'; engine CPU: "
          "the gateway process's CPU per claim_due; others: cores other processes on this machine kept busy during "
          "the known stream, out of 2: the noise in these figures)")  # fmt: skip
    for r in results:
        notes = []
        if r.generated_s is not None:
            notes.append(f"store generated in {r.generated_s:.0f} s")
        for name, load in (("known", r.known), ("new", r.new)):
            if load.unshown:
                notes.append(f"{name}: {len(load.unshown)} messages not shown to an operator within a minute")
            if load.late:
                notes.append(f"{name}: {load.late} messages sent over 20 ms late (the load generator fell behind)")
        if r.errors:
            notes.append(f"{r.errors} error lines in the gateway's log")
        if r.slow:
            notes.append(f"{len(r.slow)} slow engine commands or commits (over 100 ms), the first: {r.slow[0]}")
        if r.log:
            notes.append(f"gateway log kept at {r.log}")
        if notes:
            print(f"{r.size:>9,}: " + "; ".join(notes))
    last = results[-1]
    print(
        f"\nsummary: at {last.size:,} messages ingest p99 {last.known.p99 * 1000:.0f} ms "
        f"({last.known.p99 / base.known.p99:.2f}x the {base.size:,} store; new contacts "
        f"{last.new.p99 / base.new.p99:.2f}x), RSS {last.rss_after:.0f} MB, ready in {last.ready_s:.1f} s, "
        f"claim_due p50 {median(last.polls) * 1000:.2f} ms (targets: {TARGETS})"
    )


async def main_async(sizes: list[int], rate: float, count: int, rebuild: bool) -> None:
    floor = min([await import_seconds() for _ in range(2)])
    results = []
    for size in sizes:
        cached, generated = await store(size, rebuild)
        made = f", generated in {generated:.0f} s" if generated is not None else ""
        print(f"  ... {size:,} messages: store at {cached}{made}", flush=True)
        results.append(result := await run(size, cached, generated, rate, count))
        print(f"  ... {size:,} messages: ready in {result.ready_s:.1f} s, ingest p99 "
              f"{result.known.p99 * 1000:.0f} ms", flush=True)  # fmt: skip
    report(results, rate, floor)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0,100000,1000000", help="messages in the store (default 0,100000,1000000)")
    parser.add_argument("--rate", type=float, default=50.0, help="offered messages per second (default 50)")
    parser.add_argument("--messages", type=int, default=1000, help="messages offered per size (default 1000)")
    parser.add_argument("--rebuild", action="store_true", help="generate the stores again")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    asyncio.run(main_async(sizes, args.rate, args.messages, args.rebuild))
    print(f"reproduce: {reproduce('scale.py', sys.argv[1:])}")


if __name__ == "__main__":
    main()
