"""Query execution: a plan's candidates, filtered, sorted, skipped and limited, streamed lazily."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator
from typing import Any

import bson
import mongomock

from . import planner
from .errors import CommandError, translate
from .matcher import compile_filter
from .planner import Choice
from .plans import Stats
from .sorting import Sorter
from .storage import Collection, Storage
from .wire import CODEC

Projector = Callable[[dict], dict]
SORT_MEMORY_LIMIT = 100 * 1024 * 1024


def parse_sort(sort: Any) -> list[tuple[str, int]]:
    """Validate a sort document into (path, direction) pairs."""
    if sort is None:
        return []
    if not isinstance(sort, dict):
        raise CommandError(2, "Expected field sort to be of type object")
    pairs: list[tuple[str, int]] = []
    for path, direction in sort.items():
        if isinstance(direction, dict):
            raise CommandError(238, f"sorting by {direction} is not supported by the embedded engine")
        if isinstance(direction, bool) or direction not in (1, -1):
            raise CommandError(
                2,
                f"$sort key ordering must be 1 (for ascending) or -1 (for descending), found {direction!r} for {path}",
            )
        pairs.append((path, int(direction)))
    return pairs


def decode(raw: bytes) -> dict:
    """A stored document as a dict (naive UTC datetimes)."""
    return bson.decode(raw, codec_options=CODEC)


class Query:
    """One query against a collection: planned once, then read lazily as (rid, BSON, decoded or None)."""

    def __init__(
        self,
        storage: Storage,
        coll: Collection | None,
        query: Any,
        *,
        sort: list[tuple[str, int]] | None = None,
        skip: int = 0,
        limit: int = 0,
        hint: Any = None,
    ) -> None:
        if query is None:
            query = {}
        if not isinstance(query, dict):
            raise CommandError(2, "query filter must be an object")
        self.storage = storage
        self.coll = coll
        self.query = query
        self.sort = sort or []
        self.skip = skip
        self.limit = limit
        self.choice: Choice = planner.choose(storage, coll, query, self.sort, hint)
        self.stats = Stats()
        self.filtered = bool(query) and not self.choice.stage.exact
        # Compiling also rejects an invalid filter before anything is read (an exact plan's filter is valid).
        self._test = compile_filter(query) if self.filtered else None

    @property
    def in_memory_sort(self) -> bool:
        """Whether the documents must be sorted after reading them."""
        return bool(self.sort) and not self.choice.sorted

    def run(self) -> Iterator[tuple[int, bytes, dict | None]]:
        """Matching documents: (rid, BSON, decoded document when it was needed)."""
        # MongoDB takes any int64; islice takes up to sys.maxsize, and a store never holds that many anyway.
        skip, limit = min(self.skip, sys.maxsize // 2), min(self.limit, sys.maxsize // 2)
        first = min(skip + limit, 64) if limit and not self.in_memory_sort else 16
        rows = self.choice.stage.rows(self.storage, self.stats, first)
        matched = self._filter(rows)
        if self.in_memory_sort:
            sorter = Sorter(self.storage.conn, self.sort, skip + limit if limit else None, f"sort_{id(self)}")
            decoded = ((rid, raw, doc if doc is not None else decode(raw)) for rid, raw, doc in matched)
            matched = ((rid, raw, None) for rid, raw in sorter.sort(decoded))
        if skip or limit:
            matched = itertools.islice(matched, skip, skip + limit if limit else None)
        return matched

    def _filter(self, rows: Iterator[tuple[int, bytes]]) -> Iterator[tuple[int, bytes, dict | None]]:
        if not self.filtered:
            for rid, raw in rows:
                yield rid, raw, None
            return
        test = self._test
        assert test is not None
        for rid, raw in rows:
            doc = decode(raw)
            if test(doc):
                yield rid, raw, doc

    def documents(self) -> Iterator[tuple[int, bytes, dict]]:
        """Matching documents, always decoded."""
        for rid, raw, doc in self.run():
            yield rid, raw, doc if doc is not None else decode(raw)

    def count(self) -> int:
        """How many documents match (counting index entries when the index answers exactly)."""
        if not self.skip and not self.limit:
            counted = self.choice.stage.count(self.storage)
            if counted is not None:
                return counted
        return sum(1 for _ in self.run())

    def winning_plan(self, projection: Any = None) -> dict[str, Any]:
        """The plan as explain's queryPlanner.winningPlan shows it."""
        plan = self.choice.stage.describe()
        if self.in_memory_sort:
            sort_stage: dict[str, Any] = {
                "stage": "SORT",
                "sortPattern": dict(self.sort),
                "memLimit": SORT_MEMORY_LIMIT,
                "type": "simple",
            }
            if self.limit:
                sort_stage["limitAmount"] = self.skip + self.limit
            sort_stage["inputStage"] = plan
            plan = sort_stage
        elif self.limit:
            plan = {"stage": "LIMIT", "limitAmount": self.limit, "inputStage": plan}
        if self.skip:
            plan = {"stage": "SKIP", "skipAmount": self.skip, "inputStage": plan}
        if projection:
            plan = {"stage": "PROJECTION_DEFAULT", "transformBy": projection, "inputStage": plan}
        return plan


def projector(projection: Any, helper: mongomock.Collection) -> Projector | None:
    """A function applying a find projection to a document, or None for whole documents."""
    if projection is None or projection == {}:
        return None
    if not isinstance(projection, dict):
        raise CommandError(2, "projection must be an object")
    for path, spec in projection.items():
        if isinstance(spec, str) or path.endswith(".$") or (isinstance(spec, dict) and "$meta" in spec):
            raise CommandError(238, f"projection {path!r}: {spec!r} is not supported by the embedded engine")

    def project(doc: dict) -> dict:
        try:
            # mongomock's projection logic only exists as a method of its Collection class.
            return helper._copy_only_fields(doc, dict(projection), dict)
        except Exception as exc:  # invalid projections surface as client errors
            raise translate(exc) from exc

    project({"_id": None})
    return project
