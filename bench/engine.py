"""Benchmark of the embedded MongoDB engine (embedded_mongo) with gateway-shaped message documents.

For stores of 0, 100k and 1M messages it prints, per operation, throughput and CPU per operation
(of the engine process and of the PyMongo client separately), and the engine's memory and
time-to-ready. The engine runs as `python -m embedded_mongo` in a child process on a durable data
directory; stores are filled in bulk straight through the storage layer before it starts.

Usage: python bench/engine.py [--sizes 0,100000,1000000] [--ops 2000] [--dir DIR]
The machine is shared and noisy: compare the ratios to the empty store as well as absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import bson
from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, ReturnDocument

from embedded_mongo.indexes import IndexSpec
from embedded_mongo.storage import DB_FILE, Storage

INDEXES = [
    IndexModel(
        [("channel", ASCENDING), ("account", ASCENDING), ("channel_message_id", ASCENDING)],
        unique=True,
        partialFilterExpression={"channel_message_id": {"$type": "string"}},
        name="channel_message",
    ),
    IndexModel([("thread_id", ASCENDING), ("created_at", ASCENDING)], name="by_thread"),
    IndexModel([("contact_id", ASCENDING), ("created_at", DESCENDING)], name="by_contact"),
    IndexModel([("next_attempt_at", ASCENDING)], partialFilterExpression={"status": "queued"}, name="outbox"),
]
QUEUED = 50  # messages waiting in the outbox, whatever the size of the store (the empty store too)
T0 = datetime.datetime(2026, 1, 1)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def message(n: int) -> dict:
    """A message document as the gateway stores one."""
    queued = n < QUEUED
    return {
        "_id": ObjectId(),
        "thread_id": ObjectId((n // 20).to_bytes(12, "big")),
        "contact_id": f"c{n // 50}",
        "channel": "telegram" if n % 3 else "whatsapp",
        "account": "support",
        "channel_message_id": f"m{n}",
        "direction": "inbound" if n % 2 else "outbound",
        "kind": "text",
        "text": f"message number {n}: " + "lorem ipsum dolor sit amet " * 3,
        "status": "queued" if queued else "delivered",
        "attempts": 0,
        "next_attempt_at": T0 + datetime.timedelta(seconds=n) if queued else None,
        "created_at": T0 + datetime.timedelta(seconds=n),
    }


def fill(data_dir: Path, start: int, stop: int) -> float:
    """Add messages start..stop-1 straight into the store (no history entries); returns seconds taken."""
    began = time.perf_counter()
    storage = Storage(str(data_dir / DB_FILE), cache_mb=64, durable=True)
    try:
        storage.begin()
        coll = storage.collection("bench", "messages") or storage.create_collection("bench", "messages")
        if not coll.indexes:
            for model in INDEXES:
                storage.create_index(coll, IndexSpec.from_document(dict(model.document)))
        for n in range(start, stop):
            doc = message(n)
            storage.insert(coll, doc, bson.encode(doc), log=False, check=False)
            if n % 50_000 == 49_999:
                storage.commit()
                storage.begin()
        storage.commit()
    finally:
        storage.close()
    return time.perf_counter() - began


def _proc(pid: int) -> tuple[float, int, int]:
    """(CPU seconds, RSS kB, peak RSS kB) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    peak = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return cpu, rss, peak


async def start_engine(data_dir: Path) -> tuple[asyncio.subprocess.Process, str, float]:
    """The engine in a child process; returns it, its URI and seconds from spawn to listening."""
    began = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "embedded_mongo",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    line = (await process.stdout.readline()).decode()
    match = re.search(r"listening on (mongodb://\S+)", line)
    if match is None:
        raise RuntimeError(f"engine did not start: {line!r}")
    return process, match.group(1), time.perf_counter() - began


async def measure(
    label: str, count: int, pid: int, make_op: Callable[[int], Awaitable[object]], concurrency: int
) -> dict[str, float]:
    """Run count operations, `concurrency` at a time; returns ops/s and CPU per op (engine, client)."""
    engine_before = _proc(pid)[0]
    client_before = time.process_time()
    started = time.perf_counter()
    queue = iter(range(count))

    async def lane() -> None:
        for i in queue:
            await make_op(i)

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    engine_cpu = _proc(pid)[0] - engine_before
    client_cpu = time.process_time() - client_before
    return {"ops": count / elapsed, "engine_us": engine_cpu / count * 1e6, "client_us": client_cpu / count * 1e6}


async def run_size(data_dir: Path, size: int, ops: int, concurrency: int) -> dict[str, object]:
    """Start the engine on a store of `size` messages and measure every operation."""
    process, uri, ready = await start_engine(data_dir)
    _cpu, rss_ready, _peak = _proc(process.pid)
    client = AsyncMongoClient(uri)
    results: dict[str, object] = {"ready_s": ready, "rss_ready_mb": rss_ready / 1024}
    try:
        coll = client.bench.messages
        await coll.create_indexes(INDEXES)
        rng = random.Random(size)
        existing = max(size, 1)
        fresh = iter(range(10**9 + size * 10, 2 * 10**9))
        now = T0 + datetime.timedelta(days=3650)

        def poll(i: int) -> Awaitable[object]:
            return coll.find_one_and_update(
                {"status": "queued", "next_attempt_at": {"$lte": now}},
                {"$set": {"next_attempt_at": now - datetime.timedelta(seconds=i % 1000)}, "$inc": {"attempts": 1}},
                sort=[("next_attempt_at", ASCENDING), ("_id", ASCENDING)],
                return_document=ReturnDocument.AFTER,
            )

        operations: list[tuple[str, Callable[[int], Awaitable[object]]]] = [
            ("insert", lambda i: coll.insert_one(message(next(fresh)))),
            (
                "find by index",
                lambda i: coll.find_one(
                    {
                        "channel": "telegram",
                        "account": "support",
                        "channel_message_id": f"m{rng.randrange(existing) | 1}",
                    }
                ),
            ),
            (
                "findAndModify by index",
                lambda i: coll.find_one_and_update(
                    {
                        "channel": "telegram",
                        "account": "support",
                        "channel_message_id": f"m{rng.randrange(existing) | 1}",
                    },
                    {"$set": {"status": "read"}},
                ),
            ),
            ("outbox poll", poll),
        ]
        for label, make_op in operations:
            for lanes in (1, concurrency):
                results[f"{label} x{lanes}"] = await measure(label, ops, process.pid, make_op, lanes)
        assert await coll.find_one({"status": "queued"}) is not None
        scan_started = time.perf_counter()
        scanned = 0
        async for _doc in coll.find({}, batch_size=1000):
            scanned += 1
            if scanned >= 200_000:
                break
        results["scan"] = {"docs": scanned, "seconds": time.perf_counter() - scan_started}
        _cpu, rss_after, peak = _proc(process.pid)
        results["rss_after_mb"] = rss_after / 1024
        results["rss_peak_mb"] = peak / 1024
    finally:
        await client.close()
        process.terminate()
        await process.wait()
    return results


def report(size: int, results: dict[str, object], baseline: dict[str, object] | None, fill_s: float) -> None:
    """Print one store size's figures, with ratios to the empty store."""

    def ratio(key: str, field: str | None = None) -> str:
        if baseline is None:
            return ""
        mine, base = results[key], baseline[key]
        if field is not None:
            mine, base = mine[field], base[field]  # type: ignore[index]
        return f" ({float(mine) / float(base):.2f}x)" if base else ""  # type: ignore[arg-type]

    print(f"\n=== {size:,} messages (filled in {fill_s:.1f}s) ===")
    print(
        f"ready in {results['ready_s']:.2f}s{ratio('ready_s')}; RSS {results['rss_ready_mb']:.0f} MB ready, "
        f"{results['rss_after_mb']:.0f} MB after the run, peak {results['rss_peak_mb']:.0f} MB"
    )
    print(f"{'operation':<30}{'ops/s':>9}{'engine CPU/op':>16}{'client CPU/op':>16}")
    for key, value in results.items():
        if isinstance(value, dict) and "ops" in value:
            print(
                f"{key:<30}{value['ops']:>9.0f}{value['engine_us']:>12.0f} us{ratio(key, 'engine_us'):<8}"
                f"{value['client_us']:>8.0f} us"
            )
    scan = results["scan"]
    assert isinstance(scan, dict)
    print(f"scan: {scan['docs']:,} documents in {scan['seconds']:.1f}s through getMore batches of 1000")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0,100000,1000000")
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--dir", default=None, help="where to build the stores (default: a temporary directory)")
    args = parser.parse_args()
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-engine-"))
    data_dir = root / "store"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    baseline = None
    filled = 0
    try:
        for size in sizes:
            target = max(size, QUEUED)  # the "empty" store still has the outbox's queued messages
            if target < filled:
                raise SystemExit("sizes must increase")
            fill_s = fill(data_dir, filled, target) if target > filled else 0.0
            filled = target
            results = await run_size(data_dir, size, args.ops, args.concurrency)
            report(size, results, baseline, fill_s)
            baseline = baseline or results
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
