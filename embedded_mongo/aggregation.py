"""Aggregation pipelines: a leading $match/$sort/$skip/$limit through the planner, the rest through mongomock.

Stages that look at one document at a time run on bounded chunks as the cursor is read; the first
stage that needs every document ($group, $sort, ...) collects what reaches it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mongomock import aggregate as mongomock_aggregate

from .errors import CommandError, translate
from .matcher import compile_filter
from .query import Query, parse_sort
from .values import sort_documents
from .wire import encoded

if TYPE_CHECKING:
    from .context import Services

_STREAMING = {
    "$match",
    "$project",
    "$addFields",
    "$set",
    "$unset",
    "$replaceRoot",
    "$replaceWith",
    "$lookup",
    "$unwind",
    "$skip",
    "$limit",
    "$graphLookup",
}
_UNSUPPORTED = {
    "$out",
    "$merge",
    "$currentOp",
    "$collStats",
    "$indexStats",
    "$listSessions",
    "$listLocalSessions",
    "$planCacheStats",
    "$search",
    "$searchMeta",
    "$vectorSearch",
    "$geoNear",
    "$unionWith",
    "$setWindowFields",
    "$densify",
    "$fill",
    "$documents",
    "$bucketAuto",
    "$redact",
    "$changeStreamSplitLargeEvent",
    "$listSearchIndexes",
}
_CHUNK = 256


def validate_stages(pipeline: list[dict]) -> list[tuple[str, Any]]:
    """The (name, argument) of each stage, rejecting what the engine cannot run."""
    stages = []
    for stage in pipeline:
        if len(stage) != 1:
            raise CommandError(40323, "A pipeline stage specification object must contain exactly one field.")
        ((name, argument),) = stage.items()
        if name == "$changeStream":
            raise CommandError(40602, "$changeStream is only valid as the first stage in a pipeline")
        if name in _UNSUPPORTED:
            raise CommandError(238, f"{name} is not supported by the embedded engine")
        if name not in mongomock_aggregate._PIPELINE_HANDLERS and name not in (
            "$replaceWith",
            "$unset",
            "$sortByCount",
        ):
            raise CommandError(40324, f"Unrecognized pipeline stage name: '{name}'")
        stages.append((name, argument))
    return stages


def _translated(name: str, argument: Any) -> list[dict]:
    """mongomock's equivalent of a stage it lacks."""
    if name == "$unset":
        fields = [argument] if isinstance(argument, str) else argument
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise CommandError(31002, "$unset specification must be a string or an array of strings")
        return [{"$project": dict.fromkeys(fields, 0)}]
    if name == "$replaceWith":
        return [{"$replaceRoot": {"newRoot": argument}}]
    if name == "$sortByCount":
        return [{"$group": {"_id": argument, "count": {"$sum": 1}}}, {"$sort": {"count": -1}}]
    return [{name: argument}]


class _LookupCollection:
    """What mongomock's $lookup and $graphLookup read a foreign collection through."""

    def __init__(self, engine: Services, db: str, name: str) -> None:
        self._engine = engine
        self._db = db
        self._name = name

    def find(self, query: dict | None = None, *args: Any, **kwargs: Any) -> list[dict]:
        storage = self._engine.storage
        found = Query(storage, storage.collection(self._db, self._name), query or {})
        return [doc for _rid, _raw, doc in found.documents()]


class LookupDatabase:
    """A stand-in for a mongomock database whose collections are the engine's."""

    def __init__(self, engine: Services, db: str) -> None:
        self._engine = engine
        self._db = db

    def get_collection(self, name: str) -> _LookupCollection:
        """A collection of this database."""
        return _LookupCollection(self._engine, self._db, name)


def run_stages(docs: list[dict], stages: list[dict], database: Any) -> list[dict]:
    """Documents after mongomock's stages (our own $sort, which orders arrays as MongoDB does)."""
    try:
        for stage in stages:
            if "$sort" in stage:
                docs = sort_documents(docs, parse_sort(stage["$sort"]))
            elif "$match" in stage:
                test = compile_filter(stage["$match"])
                docs = [doc for doc in docs if test(doc)]
            else:
                docs = list(mongomock_aggregate.process_pipeline(docs, database, [stage], None))
    except CommandError:
        raise
    except Exception as exc:  # mongomock raises several types for invalid pipelines
        raise translate(exc) from exc
    return docs


class Pipeline:
    """One aggregate command's pipeline over a collection."""

    def __init__(self, engine: Services, db: str, name: str, pipeline: list[dict]) -> None:
        stages = validate_stages(pipeline)
        self._engine = engine
        self._database = LookupDatabase(engine, db)
        match: dict = {}
        if stages and stages[0][0] == "$match":
            if not isinstance(stages[0][1], dict):
                raise CommandError(15959, "the match filter must be an expression in an object")
            match = stages.pop(0)[1]
        sort = None
        skip = limit = 0
        if stages and stages[0][0] == "$sort":
            sort = parse_sort(stages.pop(0)[1])
        if stages and stages[0][0] == "$skip" and _count(stages[0][1]) is not None:
            skip = _count(stages.pop(0)[1]) or 0
        if stages and stages[0][0] == "$limit" and _count(stages[0][1]):
            limit = _count(stages.pop(0)[1]) or 0
        storage = engine.storage
        self.query = Query(storage, storage.collection(db, name), match, sort=sort, skip=skip, limit=limit)
        self.pushed_down = {"$match": match, "$sort": dict(sort or []), "$skip": skip, "$limit": limit}
        self.stages = [translated for stage in stages for translated in _translated(*stage)]
        streaming = list(itertools.takewhile(lambda s: next(iter(s)) in _STREAMING, self.stages))
        self._streaming = streaming
        self._blocking = self.stages[len(streaming) :]

    def output(self) -> Iterator[bytes]:
        """The pipeline's result documents as BSON, computed as they are read."""
        docs = self._stream((doc for _rid, _raw, doc in self.query.documents()))
        if self._blocking:
            yield from encoded(run_stages(list(docs), self._blocking, self._database))
        else:
            yield from encoded(docs)

    def _stream(self, source: Iterator[dict]) -> Iterator[dict]:
        skipped = [0] * len(self._streaming)
        passed = [0] * len(self._streaming)
        done = False
        while not done:
            chunk = list(itertools.islice(source, _CHUNK))
            if not chunk:
                return
            for position, stage in enumerate(self._streaming):
                name, argument = next(iter(stage.items()))
                if name == "$skip":
                    amount = _count(argument) or 0
                    drop = min(len(chunk), amount - skipped[position])
                    skipped[position] += drop
                    chunk = chunk[drop:]
                elif name == "$limit":
                    amount = _count(argument) or 0
                    keep = max(0, amount - passed[position])
                    chunk = chunk[:keep]
                    passed[position] += len(chunk)
                    done = done or passed[position] >= amount  # nothing more can get past this stage
                else:
                    chunk = run_stages(chunk, [stage], self._database)
                if not chunk:
                    break
            yield from chunk


def _count(argument: Any) -> int | None:
    if isinstance(argument, bool) or not isinstance(argument, (int, float)) or argument < 0:
        raise CommandError(15958, f"invalid argument to $skip/$limit stage: {argument!r}")
    return int(argument)
