"""Read commands: find, getMore, killCursors, aggregate, count, distinct."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import bson

from . import aggregation, changestreams, keys
from .changestreams import ChangeStream
from .cursors import Cursor
from .errors import CommandError
from .query import Projector, Query, decode, parse_sort, projector
from .values import MISSING, path_values
from .wire import CODEC

if TYPE_CHECKING:
    from .context import CommandContext, Services

_FIND_FIELDS = {
    "find",
    "filter",
    "sort",
    "projection",
    "hint",
    "skip",
    "limit",
    "batchSize",
    "singleBatch",
    "comment",
    "maxTimeMS",
    "readConcern",
    "max",
    "min",
    "returnKey",
    "showRecordId",
    "tailable",
    "oplogReplay",
    "noCursorTimeout",
    "awaitData",
    "allowPartialResults",
    "collation",
    "allowDiskUse",
    "let",
    "$db",
    "lsid",
    "$clusterTime",
    "$readPreference",
    "txnNumber",
    "apiVersion",
    "apiStrict",
    "apiDeprecationErrors",
    "maxAwaitTimeMS",
}
_UNSUPPORTED_FIND = {"max", "min", "returnKey", "showRecordId", "oplogReplay", "let"}


def collection_name(command: dict, name: str) -> str:
    """The collection a command targets, validated."""
    value = command.get(name)
    if not isinstance(value, str) or not value or "\x00" in value or value.startswith("$"):
        raise CommandError(73, f"Invalid namespace specified '{value}'")
    return value


def non_negative(command: dict, name: str) -> int:
    """An integer option of a command (limit may be negative: a single batch)."""
    value = command.get(name, 0) or 0
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise CommandError(14, f"BSON field '{name}' is the wrong type")
    if value < 0 and name != "limit":
        raise CommandError(2, f"{name} value must be non-negative, but received: {value}")
    return int(value)


def query_output(query: Query, project: Projector | None) -> Iterator[bytes]:
    """A query's documents as the BSON to send: as stored, or projected."""
    if project is None:
        for _rid, raw, _doc in query.run():
            yield raw
        return
    for _rid, raw, doc in query.run():
        yield bson.encode(project(doc if doc is not None else decode(raw)), codec_options=CODEC)


def find_query(engine: Services, db: str, command: dict) -> tuple[Query, Projector | None, int, bool]:
    """The query of a find command, its projection, batch size and whether it is a single batch."""
    name = collection_name(command, "find")
    for option in command:
        if option not in _FIND_FIELDS:
            raise CommandError(40415, f"BSON field 'find.{option}' is an unknown field.")
        if option in _UNSUPPORTED_FIND and command[option] not in (None, False):
            raise CommandError(238, f"find option '{option}' is not supported by the embedded engine")
    if command.get("tailable"):
        raise CommandError(2, "error processing query: tailable cursor requested on non capped collection")
    limit = non_negative(command, "limit")
    single_batch = bool(command.get("singleBatch")) or limit < 0
    limit = abs(limit)
    skip = non_negative(command, "skip")
    batch_size = non_negative(command, "batchSize") if command.get("batchSize") is not None else None
    coll = engine.storage.collection(db, name)
    query = Query(
        engine.storage,
        coll,
        command.get("filter"),
        sort=parse_sort(command.get("sort")),
        skip=skip,
        limit=limit,
        hint=command.get("hint"),
    )
    project = projector(command.get("projection"), engine.helper)
    return query, project, (-1 if batch_size is None else batch_size), single_batch


def find(engine: Services, ctx: CommandContext, db: str, command: dict) -> dict:
    """The find command."""
    query, project, batch_size, single_batch = find_query(engine, db, command)
    namespace = f"{db}.{command['find']}"
    cursor = engine.cursors.open(
        namespace,
        query_output(query, project),
        batch_size=None if batch_size < 0 else batch_size,
        single_batch=single_batch,
        session=ctx.session,
    )
    return {"cursor": cursor, "ok": 1.0}


def get_more(engine: Services, ctx: CommandContext, db: str, command: dict) -> Any:
    """The getMore command (of a query or a change stream cursor)."""
    cursor_id = command.get("getMore")
    if not isinstance(cursor_id, int) or isinstance(cursor_id, bool):
        raise CommandError(14, "getMore cursor id must be a long")
    coll = command.get("collection")
    if not isinstance(coll, str):
        raise CommandError(14, "getMore collection must be a string")
    batch_size = non_negative(command, "batchSize") if command.get("batchSize") is not None else None
    cursor = engine.cursors.find(int(cursor_id), f"{db}.{coll}")
    if isinstance(cursor, ChangeStream):
        return changestreams.get_more(engine, ctx, cursor, batch_size, command.get("maxTimeMS"))
    assert isinstance(cursor, Cursor)
    return {"cursor": engine.cursors.get_more(cursor, batch_size), "ok": 1.0}


def kill_cursors(engine: Services, ctx: CommandContext, db: str, command: dict) -> dict:
    """The killCursors command."""
    collection_name(command, "killCursors")
    ids = command.get("cursors")
    if not isinstance(ids, list):
        raise CommandError(14, "killCursors cursors must be an array")
    killed, missing = engine.cursors.kill([int(i) for i in ids])
    return {"cursorsKilled": killed, "cursorsNotFound": missing, "cursorsAlive": [], "cursorsUnknown": [], "ok": 1.0}


def aggregate(engine: Services, ctx: CommandContext, db: str, command: dict) -> dict:
    """The aggregate command: a change stream, or a pipeline whose leading $match uses the planner."""
    pipeline = command.get("pipeline")
    if not isinstance(pipeline, list) or not all(isinstance(s, dict) for s in pipeline):
        raise CommandError(14, "'pipeline' option must be specified as an array")
    if pipeline and "$changeStream" in pipeline[0]:
        return changestreams.open_stream(engine, ctx, db, command, pipeline)
    if command.get("aggregate") == 1:
        raise CommandError(238, "database-level aggregation is only supported for $changeStream by the embedded engine")
    name = collection_name(command, "aggregate")
    cursor_options = command.get("cursor")
    if not isinstance(cursor_options, dict):
        raise CommandError(9, "The 'cursor' option is required, except for aggregate with the explain argument")
    plan = aggregation.Pipeline(engine, db, name, pipeline)
    cursor = engine.cursors.open(
        f"{db}.{name}", plan.output(), batch_size=cursor_options.get("batchSize"), session=ctx.session
    )
    return {"cursor": cursor, "ok": 1.0}


def count_query(engine: Services, db: str, command: dict) -> Query:
    """The query of a count command."""
    name = collection_name(command, "count")
    skip = non_negative(command, "skip")
    limit = abs(non_negative(command, "limit"))
    coll = engine.storage.collection(db, name)
    return Query(engine.storage, coll, command.get("query") or {}, skip=skip, limit=limit, hint=command.get("hint"))


def count(engine: Services, ctx: CommandContext, db: str, command: dict) -> dict:
    """The count command."""
    return {"n": count_query(engine, db, command).count(), "ok": 1.0}


def distinct(engine: Services, ctx: CommandContext, db: str, command: dict) -> dict:
    """The distinct command."""
    name = collection_name(command, "distinct")
    key = command.get("key")
    if not isinstance(key, str) or not key:
        raise CommandError(14, "distinct key must be a string")
    query = Query(engine.storage, engine.storage.collection(db, name), command.get("query") or {})
    parts = key.split(".")
    found: dict[bytes, Any] = {}
    for _rid, _raw, doc in query.documents():
        for value in path_values(doc, parts):
            elements = value if isinstance(value, list) else [value]
            for element in elements:
                if element is not MISSING:
                    found.setdefault(keys.encode(element), element)
    return {"values": [found[k] for k in sorted(found)], "ok": 1.0}
