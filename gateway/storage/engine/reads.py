"""Read commands: find, getMore, killCursors, aggregate, count, distinct."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from mongomock import aggregate as mongomock_aggregate

from . import query
from .errors import CommandError, translate
from .values import MISSING, path_values, sort_documents, sort_key

if TYPE_CHECKING:
    from .commands import CommandContext, Engine


def collection_name(command: dict, name: str) -> str:
    """The collection a command targets, validated."""
    value = command.get(name)
    if not isinstance(value, str) or not value or "\x00" in value or value.startswith("$"):
        raise CommandError(73, f"Invalid namespace specified '{value}'")
    return value


def _non_negative(command: dict, field: str) -> int:
    value = command.get(field, 0) or 0
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise CommandError(14, f"BSON field '{field}' is the wrong type")
    if value < 0 and field != "limit":
        raise CommandError(2, f"{field} value must be non-negative, but received: {value}")
    return int(value)


def find(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    """The find command."""
    coll = collection_name(command, "find")
    limit = _non_negative(command, "limit")
    single_batch = bool(command.get("singleBatch")) or limit < 0
    limit = abs(limit)
    skip = _non_negative(command, "skip")
    batch_size = command.get("batchSize")
    if batch_size is not None:
        batch_size = _non_negative(command, "batchSize")
    sort = query.parse_sort(command.get("sort"))
    project = query.projector(engine.store, db, coll, command.get("projection"))
    docs = query.find(engine.store, db, coll, command.get("filter"), sort=sort, skip=skip, limit=limit)
    cursor = engine.cursors.open(
        f"{db}.{coll}", docs, batch_size=batch_size, single_batch=single_batch, project=project, session=ctx.session
    )
    return {"cursor": cursor, "ok": 1.0}


def get_more(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    """The getMore command."""
    cursor_id = command.get("getMore")
    if not isinstance(cursor_id, int) or isinstance(cursor_id, bool):
        raise CommandError(14, "getMore cursor id must be a long")
    coll = command.get("collection")
    if not isinstance(coll, str):
        raise CommandError(14, "getMore collection must be a string")
    batch_size = command.get("batchSize")
    if batch_size is not None:
        batch_size = _non_negative(command, "batchSize")
    cursor = engine.cursors.get_more(int(cursor_id), f"{db}.{coll}", batch_size)
    return {"cursor": cursor, "ok": 1.0}


def kill_cursors(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    """The killCursors command."""
    collection_name(command, "killCursors")
    ids = command.get("cursors")
    if not isinstance(ids, list):
        raise CommandError(14, "killCursors cursors must be an array")
    killed, missing = engine.cursors.kill([int(i) for i in ids])
    return {"cursorsKilled": killed, "cursorsNotFound": missing, "cursorsAlive": [], "cursorsUnknown": [], "ok": 1.0}


_UNSUPPORTED_STAGES = {
    "$out",
    "$merge",
    "$changeStream",
    "$currentOp",
    "$collStats",
    "$indexStats",
    "$listSessions",
    "$listLocalSessions",
    "$planCacheStats",
}


def aggregate(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    """The aggregate command (stages run by mongomock, a leading $match through the planner)."""
    if command.get("aggregate") == 1:
        raise CommandError(238, "database-level aggregation is not supported by the embedded engine")
    coll = collection_name(command, "aggregate")
    pipeline = command.get("pipeline")
    if not isinstance(pipeline, list) or not all(isinstance(s, dict) for s in pipeline):
        raise CommandError(14, "'pipeline' option must be specified as an array")
    if command.get("explain"):
        raise CommandError(238, "explain is not supported by the embedded engine")
    cursor_options = command.get("cursor")
    if not isinstance(cursor_options, dict):
        raise CommandError(9, "The 'cursor' option is required, except for aggregate with the explain argument")
    for stage in pipeline:
        if len(stage) != 1:
            raise CommandError(40323, "A pipeline stage specification object must contain exactly one field.")
        name = next(iter(stage))
        if name in _UNSUPPORTED_STAGES:
            raise CommandError(238, f"{name} is not supported by the embedded engine")
    stages = list(pipeline)
    match: dict = {}
    if stages and "$match" in stages[0] and isinstance(stages[0]["$match"], dict):
        match = stages.pop(0)["$match"]
    results = copy.deepcopy(query.find(engine.store, db, coll, match))
    database = engine.store.mongomock_database(db)
    try:
        for stage in stages:
            if "$sort" in stage:
                # mongomock sorts arrays by their first element; MongoDB by min/max.
                results = sort_documents(results, query.parse_sort(stage["$sort"]))
            else:
                results = list(mongomock_aggregate.process_pipeline(results, database, [stage], None))
    except CommandError:
        raise
    except Exception as exc:  # mongomock raises several types for invalid pipelines
        raise translate(exc) from exc
    batch_size = cursor_options.get("batchSize")
    cursor = engine.cursors.open(f"{db}.{coll}", results, batch_size=batch_size, session=ctx.session)
    return {"cursor": cursor, "ok": 1.0}


def count(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    """The count command."""
    coll = collection_name(command, "count")
    skip = _non_negative(command, "skip")
    limit = abs(_non_negative(command, "limit"))
    filter_doc = command.get("query") or {}
    if not filter_doc:
        total = max(engine.store.count(db, coll) - skip, 0)
        return {"n": min(total, limit) if limit else total, "ok": 1.0}
    docs = query.find(engine.store, db, coll, filter_doc, skip=skip, limit=limit)
    return {"n": len(docs), "ok": 1.0}


def distinct(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    """The distinct command."""
    coll = collection_name(command, "distinct")
    key = command.get("key")
    if not isinstance(key, str) or not key:
        raise CommandError(14, "distinct key must be a string")
    docs = query.find(engine.store, db, coll, command.get("query") or {})
    found: dict[tuple, Any] = {}
    for doc in docs:
        for value in path_values(doc, key.split(".")):
            elements = value if isinstance(value, list) else [value]
            for element in elements:
                if element is not MISSING:
                    found.setdefault(sort_key(element), element)
    return {"values": [found[k] for k in sorted(found)], "ok": 1.0}
