"""Throughput of the embedded MongoDB engine through PyMongo: prints ops/s per operation.

Usage: python bench/embedded_ops.py [--docs 100000] [--ops 2000] [--data-dir DIR]
(without --data-dir the engine runs in memory, so fsync cost is excluded).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from pymongo import AsyncMongoClient

from gateway.storage.embedded import EmbeddedMongo


async def _rate(label: str, count: int, make_op) -> None:
    start = time.perf_counter()
    await asyncio.gather(*(make_op(i) for i in range(count)))
    elapsed = time.perf_counter() - start
    print(f"{label:<40} {count / elapsed:>10.0f} ops/s")


async def run(docs: int, ops: int, data_dir: str | None) -> None:
    """Load docs contacts, then time inserts, indexed lookups and updates."""
    async with EmbeddedMongo(data_dir, snapshot_interval=0) as server:
        client = AsyncMongoClient(server.uri)
        coll = client.bench.contacts
        await coll.drop()
        await coll.create_index("identities.key", unique=True)
        await coll.create_index("phone")
        batch = 10_000
        for start in range(0, docs, batch):
            await coll.insert_many(
                [
                    {"_id": i, "phone": f"+1{i:09d}", "identities": [{"key": f"tg:{i}"}], "n": 0}
                    for i in range(start, min(start + batch, docs))
                ]
            )
        print(f"loaded {docs} documents")
        await _rate(
            "insert_one", ops, lambda i: coll.insert_one({"phone": f"+2{i:09d}", "identities": [{"key": f"wa:{i}"}]})
        )
        await _rate("find_one by indexed field", ops, lambda i: coll.find_one({"phone": f"+1{(i * 7919) % docs:09d}"}))
        await _rate(
            "find_one by multikey index", ops, lambda i: coll.find_one({"identities.key": f"tg:{(i * 31) % docs}"})
        )
        await _rate(
            "update_one by _id ($inc)", ops, lambda i: coll.update_one({"_id": (i * 13) % docs}, {"$inc": {"n": 1}})
        )
        await _rate(
            "update_one by indexed field ($set)",
            ops,
            lambda i: coll.update_one({"phone": f"+1{(i * 17) % docs:09d}"}, {"$set": {"seen": i}}),
        )
        await client.close()


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--ops", type=int, default=2_000)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    asyncio.run(run(args.docs, args.ops, args.data_dir))


if __name__ == "__main__":
    main()
