"""Duplicate-candidate lookup over 100k contacts: prints p50/p99 of the lookups DuplicateFinder makes.

Usage: python bench/candidates.py [--contacts 100000] [--lookups 1000]
Runs on the in-memory embedded engine, or on MONGODB_URI when set (a throw-away database, dropped
afterwards); against a real MongoDB it also prints the query plan, which must be an index scan.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

from embedded_mongo import EmbeddedMongo
from gateway.contacts import normalize_email, normalize_phone
from gateway.storage.contacts import ContactRepo
from gateway.storage.mongo import ensure_indexes

AREA_CODES = ("212", "303", "312", "415", "503", "617", "646", "702", "718", "805", "917", "206")
FIRST = ("Ann", "Bob", "Carla", "David", "Eva", "Farid", "Grace", "Hugo", "Ines", "Jamal", "Kim", "Lena")
LAST = ("Lee", "Smith", "Garcia", "Novak", "Okafor", "Rossi", "Tanaka", "Weber", "Silva", "Khan")
DOMAINS = ("example.com", "mail.example", "shop.example", "bücher.example", "corp.example")


def person(rng: random.Random, n: int) -> dict:
    """A contact card as the hub stores it: normalised phone and e-mail, one channel identity."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    raw_phone = f"({rng.choice(AREA_CODES)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
    raw_email = f" {first}.{last}{n}@{rng.choice(DOMAINS)} "
    now = datetime.now(UTC)
    return {
        "_id": ObjectId(),
        "name": f"{first} {last}",
        "created_at": now,
        "updated_at": now,
        "phones": [normalize_phone(raw_phone)],
        "emails": [normalize_email(raw_email)],
        "other_phones": [],
        "identities": [
            {
                "key": f"webwidget:web:visitor-{n}",
                "channel": "webwidget",
                "account": "web",
                "external_id": f"visitor-{n}",
            }
        ],
        "attributes": {},
        "notes": [],
        "blocked": False,
        "merged_into": None,
    }


async def timed(label: str, count: int, lookup: Callable[[int], Awaitable[object]]) -> None:
    """Run `count` lookups one after another and print p50/p99 in milliseconds."""
    times = []
    for i in range(count):
        start = time.perf_counter()
        await lookup(i)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"{label:<44} n={count:<5} p50={statistics.median(times):7.3f} ms  p99={p99:7.3f} ms")


async def run(uri: str, total: int, lookups: int) -> None:
    """Load the contacts, then time candidate lookups by phone and e-mail."""
    client: AsyncMongoClient = AsyncMongoClient(uri, tz_aware=True)
    db = client[f"bench_{uuid.uuid4().hex[:8]}"]
    try:
        await ensure_indexes(db)
        rng = random.Random(7)
        people = [person(rng, n) for n in range(total)]
        start = time.perf_counter()
        for at in range(0, total, 5000):
            await db.contacts.insert_many(people[at : at + 5000], ordered=False)
        print(f"loaded {total} contacts in {time.perf_counter() - start:.1f} s (with every gateway index)")

        repo = ContactRepo(db["contacts"])
        known_phones = [p["phones"][0] for p in rng.sample(people, lookups)]
        known_emails = [p["emails"][0] for p in rng.sample(people, lookups)]
        new_phones = [normalize_phone(f"+1 {rng.choice(AREA_CODES)} 555 {n % 10000:04d}") or "" for n in range(lookups)]
        await timed("by phone, a number another card has", lookups, lambda i: repo.by_phone(known_phones[i]))
        await timed("by phone, a number nobody has", lookups, lambda i: repo.by_phone(new_phones[i]))
        await timed("by e-mail, an address another card has", lookups, lambda i: repo.by_email(known_emails[i]))
        await timed("by e-mail, an address nobody has", lookups, lambda i: repo.by_email(f"new{i}@example.com"))
        # For contrast: the same kind of query on a field without an index scans every card.
        await timed("by name (no index: a full scan)", 5, lambda i: db.contacts.find_one({"name": f"Nobody {i}"}))

        for field, value in (("phones", known_phones[0]), ("emails", known_emails[0])):
            try:
                plan = await db.command(
                    "explain",
                    {"find": "contacts", "filter": {field: value, "merged_into": None}},
                    verbosity="executionStats",
                )
            except OperationFailure as err:
                print(f"explain {field}: not available here ({err.details.get('errmsg', err)}); timings above only")
                continue
            winning = plan["queryPlanner"]["winningPlan"]
            stages = []
            while winning:
                index = f"({winning['indexName']})" if "indexName" in winning else ""
                stages.append(winning.get("stage", "?") + index)
                winning = winning.get("inputStage")
            stats = plan.get("executionStats", {})
            print(
                f"explain {field}: {' <- '.join(stages)}; keys examined {stats.get('totalKeysExamined')}, "
                f"documents examined {stats.get('totalDocsExamined')}"
            )
    finally:
        await client.drop_database(db.name)
        await client.close()


async def main(total: int, lookups: int) -> None:
    uri = os.environ.get("MONGODB_URI")
    if uri:
        print(f"MongoDB at {uri}")
        await run(uri, total, lookups)
        return
    async with EmbeddedMongo(None) as server:
        print("embedded engine, a temporary store")
        await run(server.uri, total, lookups)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.contacts, args.lookups))
