"""Query plan stages: how candidate documents are read (collection scan, _id lookup, index scans, unions).

Every stage reads in bounded chunks and remembers only its position (keyset pagination), so a plan
can be suspended between getMores without holding a read transaction or a result set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .storage import Collection, Index, Storage, check_alive

Row = tuple[int, bytes]  # (rid, BSON)
MAX_CHUNK = 1024


@dataclass
class Stats:
    """What executing a plan examined (for explain's executionStats)."""

    keys_examined: int = 0
    docs_examined: int = 0


def _chunks(first: int) -> Iterator[int]:
    size = max(1, first)
    while True:
        yield size
        size = min(MAX_CHUNK, size * 2)


class Stage:
    """A source of candidate documents."""

    # Whether every candidate matches the whole filter, so the filter need not be evaluated again.
    exact = False

    def rows(self, storage: Storage, stats: Stats, first: int) -> Iterator[Row]:
        """Candidate documents, read lazily."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """The stage as explain shows it."""
        raise NotImplementedError

    def count(self, storage: Storage) -> int | None:
        """The number of candidates if it can be counted without reading documents."""
        return None


@dataclass
class CollectionScan(Stage):
    """Every document in natural order."""

    coll: Collection | None
    filter: dict
    reverse: bool = False

    def rows(self, storage: Storage, stats: Stats, first: int) -> Iterator[Row]:
        if self.coll is None:
            return
        after: int | None = None
        for size in _chunks(first):
            chunk = storage.scan_documents(self.coll, after, size, self.reverse)
            stats.docs_examined += len(chunk)
            for row in chunk:
                check_alive(self.coll)
                yield row
            if len(chunk) < size:
                return
            after = chunk[-1][0]

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"stage": "COLLSCAN"}
        if self.filter:
            described["filter"] = self.filter
        described["direction"] = "backward" if self.reverse else "forward"
        return described

    def count(self, storage: Storage) -> int | None:
        if self.filter:
            return None
        return storage.count(self.coll) if self.coll is not None else 0


@dataclass
class IdLookup(Stage):
    """Documents by exact _id (IDHACK)."""

    coll: Collection
    id_keys: list[bytes]
    exact: bool = False

    def rows(self, storage: Storage, stats: Stats, first: int) -> Iterator[Row]:
        for id_key in self.id_keys:
            stats.keys_examined += 1
            found = storage.get(self.coll, id_key)
            if found is not None:
                stats.docs_examined += 1
                yield found

    def describe(self) -> dict[str, Any]:
        return {"stage": "IDHACK"}


@dataclass
class IndexScan(Stage):
    """Documents whose index keys fall in byte ranges, in index order (index None: the _id index)."""

    coll: Collection
    index: Index | None
    ranges: list[tuple[bytes | None, bytes | None]]
    bounds: Callable[[], dict[str, list[str]]]  # for explain
    reverse: bool = False
    exact: bool = False
    filter: dict = field(default_factory=dict)

    @property
    def dedupe(self) -> bool:
        """A multikey index lists a document once per distinct key."""
        return self.index is not None and self.index.is_multikey()

    def rows(self, storage: Storage, stats: Stats, first: int) -> Iterator[Row]:
        seen: set[int] | None = set() if self.dedupe else None
        ranges = list(reversed(self.ranges)) if self.reverse else self.ranges
        sizes = _chunks(first)
        for start, end in ranges:
            after: Any = None
            while True:
                size = next(sizes)
                if self.index is None:
                    id_chunk = storage.scan_ids(self.coll, start, end, after, size, self.reverse)
                    stats.keys_examined += len(id_chunk)
                    stats.docs_examined += len(id_chunk)
                    for _id, rid, raw in id_chunk:
                        check_alive(self.coll)
                        yield rid, raw
                    if len(id_chunk) < size:
                        break
                    after = id_chunk[-1][0]
                    continue
                chunk = storage.scan_index(self.coll, self.index, start, end, after, size, self.reverse)
                stats.keys_examined += len(chunk)
                for _key, _id, rid, raw in chunk:
                    if seen is not None:
                        if rid in seen:
                            continue
                        seen.add(rid)
                    stats.docs_examined += 1
                    check_alive(self.coll, self.index)
                    yield rid, raw
                if len(chunk) < size:
                    break
                after = (chunk[-1][0], chunk[-1][1])

    def describe(self) -> dict[str, Any]:
        if self.index is None:
            key_pattern: dict[str, Any] = {"_id": 1}
            name, unique, sparse, partial, multikey = "_id_", True, False, False, False
            multikey_paths: dict[str, list[str]] = {"_id": []}
        else:
            spec = self.index.spec
            key_pattern = dict(spec.key)
            name, unique, sparse, partial = spec.name, spec.unique, spec.sparse, spec.partial is not None
            multikey = self.index.is_multikey()
            multikey_paths = {path: ([path] if self.index.is_multikey(i) else []) for i, path in enumerate(spec.fields)}
        scan = {
            "stage": "IXSCAN",
            "keyPattern": key_pattern,
            "indexName": name,
            "isMultiKey": multikey,
            "multiKeyPaths": multikey_paths,
            "isUnique": unique,
            "isSparse": sparse,
            "isPartial": partial,
            "indexVersion": 2,
            "direction": "backward" if self.reverse else "forward",
            "indexBounds": self.bounds(),
        }
        fetch: dict[str, Any] = {"stage": "FETCH"}
        if self.filter and not self.exact:
            fetch["filter"] = self.filter
        fetch["inputStage"] = scan
        return fetch

    def count(self, storage: Storage) -> int | None:
        if not self.exact or self.dedupe:
            return None
        if self.index is None:
            return sum(storage.count_ids(self.coll, start, end) for start, end in self.ranges)
        return sum(storage.count_index(self.index, start, end) for start, end in self.ranges)


@dataclass
class Union(Stage):
    """The documents of several plans ($or), each once."""

    children: list[Stage]
    filter: dict = field(default_factory=dict)

    def rows(self, storage: Storage, stats: Stats, first: int) -> Iterator[Row]:
        seen: set[int] = set()
        for child in self.children:
            for rid, raw in child.rows(storage, stats, first):
                if rid not in seen:
                    seen.add(rid)
                    yield rid, raw

    def describe(self) -> dict[str, Any]:
        stages = []
        for child in self.children:
            described = child.describe()
            if described.get("stage") == "FETCH":
                described = described["inputStage"]
            elif described.get("stage") == "IDHACK":
                described = {
                    "stage": "IXSCAN",
                    "keyPattern": {"_id": 1},
                    "indexName": "_id_",
                    "isMultiKey": False,
                    "direction": "forward",
                }
            stages.append(described)
        fetch: dict[str, Any] = {"stage": "FETCH"}
        if self.filter:
            fetch["filter"] = self.filter
        fetch["inputStage"] = {"stage": "OR", "inputStages": stages}
        return fetch
