"""Change streams: `aggregate` with a leading `$changeStream`, and tailable getMores over the oplog."""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import bson
from bson import Int64, Timestamp
from mongomock import aggregate as mongomock_aggregate

from . import keys
from .context import AwaitData
from .cursors import MAX_BATCH_BYTES
from .errors import CommandError, translate
from .matcher import compile_filter
from .oplog import resume_token, timestamp, token_ts, ts_of
from .query import decode
from .wire import CODEC

if TYPE_CHECKING:
    from .context import CommandContext, Services
    from .storage import Storage

_ALLOWED_STAGES = {"$match", "$project", "$addFields", "$set", "$unset", "$replaceRoot", "$replaceWith"}
_OPTIONS = {
    "fullDocument",
    "fullDocumentBeforeChange",
    "resumeAfter",
    "startAfter",
    "startAtOperationTime",
    "allChangesForCluster",
    "showExpandedEvents",
}
_FULL_DOCUMENT = {"default", "updateLookup", "whenAvailable", "required"}
_BEFORE_CHANGE = {"off", "whenAvailable", "required"}
_INTERNAL_DATABASES = {"admin", "config", "local"}
_OPERATIONS = {
    "i": "insert",
    "u": "update",
    "r": "replace",
    "d": "delete",
    "drop": "drop",
    "rename": "rename",
    "dropDatabase": "dropDatabase",
}
MAX_SCAN = 10_000
_READ_CHUNK = 500
DEFAULT_AWAIT_MS = 1000


def history_lost() -> CommandError:
    """The error drivers treat as a change stream that cannot be resumed."""
    return CommandError(
        286,
        "Resume of change stream was not possible, as the resume point may no longer be in the oplog.",
        errorLabels=["NonResumableChangeStreamError"],
    )


class ChangeStream:
    """An open change stream cursor: what it watches and how far into the history it has read."""

    def __init__(
        self,
        namespace: str,
        session: Hashable | None,
        db: str | None,
        coll: str | None,
        position: int,
        full_document: str,
        before_change: str,
        stages: list[dict],
    ) -> None:
        self.id = 0
        self.namespace = namespace
        self.session = session
        self.last_used = time.monotonic()
        self.db = db
        self.coll = coll
        self.position = position
        self.full_document = full_document
        self.before_change = before_change
        self.stages = stages
        self.invalidated = False
        self.reached_end = False
        self._match_tests = {id(stage): compile_filter(stage["$match"]) for stage in stages if "$match" in stage}

    def close(self) -> None:
        """Nothing to release: the position is all a change stream holds."""

    def next_batch(self, storage: Storage, limit: int | None) -> list[bytes]:
        """Events after the position (at most limit, MAX_BATCH_BYTES), advancing the position."""
        oplog = storage.oplog
        if self.position < oplog.trimmed_upto:
            raise history_lost()
        batch: list[bytes] = []
        size = 0
        scanned = 0
        self.reached_end = False
        while scanned < MAX_SCAN:
            rows = oplog.read(self.position, self.db, self.coll, min(_READ_CHUNK, MAX_SCAN - scanned))
            scanned += len(rows)
            for ts, db, coll, entry in rows:
                for event in self._events(storage, ts, db, coll, entry):
                    encoded = bson.encode(event, codec_options=CODEC)
                    if batch and size + len(encoded) > MAX_BATCH_BYTES:
                        return batch  # the position stays before this entry
                    batch.append(encoded)
                    size += len(encoded)
                self.position = ts
                if self.invalidated or (limit is not None and len(batch) >= limit):
                    return batch
            if len(rows) < _READ_CHUNK:
                self.position = max(self.position, oplog.last_ts)
                self.reached_end = True
                return batch
        return batch

    def _events(self, storage: Storage, ts: int, db: str, coll: str | None, raw_entry: bytes) -> list[dict]:
        if self.db is None and db in _INTERNAL_DATABASES:
            return []
        entry = bson.decode(raw_entry, codec_options=CODEC)
        op = entry["o"]
        if op == "dropDatabase" and self.coll is not None:
            return []  # collection streams were invalidated by the drop of their collection
        event: dict[str, Any] = {
            "_id": resume_token(ts),
            "operationType": _OPERATIONS[op],
            "clusterTime": timestamp(ts),
            "wallTime": entry["w"],
        }
        if op in ("i", "r"):
            event["fullDocument"] = entry["d"]
        elif op == "u" and self.full_document != "default":
            event["fullDocument"] = self._post_image(storage, db, coll, entry)
        event["ns"] = {"db": db, "coll": coll} if coll is not None else {"db": db}
        if op == "rename":
            event["to"] = entry["to"]
        if "k" in entry:
            event["documentKey"] = entry["k"]
        if op == "u":
            event["updateDescription"] = entry["u"]
        if op in ("u", "r", "d") and self.before_change != "off":
            if "b" not in entry and self.before_change == "required":
                raise CommandError(
                    280,
                    "Change stream was configured to require a pre-image for all update, delete "
                    "and replace events, but the pre-image was not found",
                )
            event["fullDocumentBeforeChange"] = entry.get("b")
        events = self._transform(event)
        if (op in ("drop", "rename") and self.coll is not None) or (
            op == "dropDatabase" and self.coll is None and self.db is not None
        ):
            self.invalidated = True
            events.append(
                {
                    "_id": resume_token(ts, invalidate=True),
                    "operationType": "invalidate",
                    "clusterTime": timestamp(ts),
                    "wallTime": entry["w"],
                }
            )
        return events

    def _post_image(self, storage: Storage, db: str, coll: str | None, entry: dict) -> Any:
        if self.full_document == "updateLookup":
            collection = storage.collection(db, coll) if coll is not None else None
            found = storage.get(collection, keys.encode(entry["k"]["_id"])) if collection is not None else None
            return decode(found[1]) if found is not None else None
        if "d" not in entry and self.full_document == "required":
            raise CommandError(
                280,
                "Change stream was configured to require a post-image for all update, delete "
                "and replace events, but the post-image was not found",
            )
        return entry.get("d")

    def _transform(self, event: dict) -> list[dict]:
        if not self.stages:
            return [event]
        token = event["_id"]
        docs = [event]
        try:
            for stage in self.stages:
                if "$match" in stage:
                    test = self._match_tests[id(stage)]
                    docs = [d for d in docs if test(d)]
                else:
                    docs = list(mongomock_aggregate.process_pipeline(docs, None, [stage], None))
                if not docs:
                    return []
        except CommandError:
            raise
        except Exception as exc:  # mongomock raises several types for invalid stages
            raise translate(exc) from exc
        for doc in docs:
            if doc.get("_id") != token:
                raise CommandError(
                    280,
                    "Encountered an event whose _id field, which contains the resume token, was "
                    "modified by the pipeline. Modifying the _id field of an event makes it "
                    "impossible to resume the stream from that point. Only transformations that "
                    "retain the unmodified _id field are allowed.",
                )
        return docs


def _stages(pipeline: list[dict]) -> list[dict]:
    stages = []
    for stage in pipeline:
        if len(stage) != 1:
            raise CommandError(40323, "A pipeline stage specification object must contain exactly one field.")
        ((name, argument),) = stage.items()
        if name not in _ALLOWED_STAGES:
            raise CommandError(20, f"{name} is not permitted in a $changeStream pipeline")
        if name == "$unset":
            fields = [argument] if isinstance(argument, str) else argument
            stages.append({"$project": dict.fromkeys(fields, 0)})
        elif name == "$replaceWith":
            stages.append({"$replaceRoot": {"newRoot": argument}})
        else:
            stages.append({name: argument})
    return stages


def _start(storage: Storage, options: dict) -> int:
    resume = [k for k in ("resumeAfter", "startAfter", "startAtOperationTime") if options.get(k) is not None]
    if len(resume) > 1:
        raise CommandError(40674, "Only one type of resume option is allowed, but multiple were found.")
    oplog = storage.oplog
    if not resume:
        return oplog.last_ts
    value = options[resume[0]]
    if resume[0] == "startAtOperationTime":
        if not isinstance(value, Timestamp):
            raise CommandError(14, "startAtOperationTime must be a timestamp")
        position = ts_of(value) - 1
    else:
        parsed = token_ts(value)
        if parsed is None:
            raise CommandError(260, f"Invalid resume token: {value!r}")
        position, invalidate = parsed
        if invalidate and resume[0] == "resumeAfter":
            raise CommandError(
                260, "Cannot resume from an invalidate event; use startAfter to open a new stream after it"
            )
    if position < oplog.trimmed_upto:
        raise history_lost()
    return position


def open_stream(engine: Services, ctx: CommandContext, db: str, command: dict, pipeline: list[dict]) -> dict:
    """The aggregate command opening a change stream on a collection, a database or the cluster."""
    options = pipeline[0]["$changeStream"]
    if not isinstance(options, dict):
        raise CommandError(14, "the $changeStream stage must be an object")
    for option in options:
        if option not in _OPTIONS:
            raise CommandError(40415, f"BSON field '$changeStream.{option}' is an unknown field.")
    if options.get("showExpandedEvents"):
        raise CommandError(238, "showExpandedEvents is not supported by the embedded engine")
    full_document = options.get("fullDocument", "default")
    before_change = options.get("fullDocumentBeforeChange", "off")
    if full_document not in _FULL_DOCUMENT:
        raise CommandError(2, f"unknown fullDocument mode: {full_document!r}")
    if before_change not in _BEFORE_CHANGE:
        raise CommandError(2, f"unknown fullDocumentBeforeChange mode: {before_change!r}")
    target = command.get("aggregate")
    cluster = bool(options.get("allChangesForCluster"))
    if target == 1:
        if cluster != (db == "admin"):
            raise CommandError(
                73, "$changeStream on the admin database must use allChangesForCluster: true, which is only valid there"
            )
        scope_db, scope_coll = (None if cluster else db), None
        namespace = f"{db}.$cmd.aggregate"
    elif isinstance(target, str) and target and not cluster:
        if db in _INTERNAL_DATABASES:
            raise CommandError(73, f"$changeStream may not be opened on the internal {db} database")
        scope_db, scope_coll = db, target
        namespace = f"{db}.{target}"
    else:
        raise CommandError(73, f"Invalid namespace for $changeStream: {target!r}")
    cursor_options = command.get("cursor")
    if not isinstance(cursor_options, dict):
        raise CommandError(9, "The 'cursor' option is required, except for aggregate with the explain argument")
    stages = _stages(pipeline[1:])
    stream = ChangeStream(
        namespace,
        ctx.session,
        scope_db,
        scope_coll,
        _start(engine.storage, options),
        full_document,
        before_change,
        stages,
    )
    batch_size = cursor_options.get("batchSize")
    batch = stream.next_batch(engine.storage, 101 if batch_size is None else batch_size)
    cursor_id = 0 if stream.invalidated else engine.cursors.register(stream)
    return {
        "cursor": {
            "firstBatch": [bson.raw_bson.RawBSONDocument(e) for e in batch],
            "postBatchResumeToken": resume_token(stream.position),
            "id": Int64(cursor_id),
            "ns": namespace,
        },
        "ok": 1.0,
    }


def get_more(
    engine: Services, ctx: CommandContext, stream: ChangeStream, batch_size: int | None, max_time_ms: Any
) -> dict | AwaitData:
    """The next batch of a change stream; when there is none yet, wait (up to maxTimeMS) for new history."""

    try:
        batch = stream.next_batch(engine.storage, batch_size or None)
    except CommandError:
        engine.cursors.discard(stream.id)
        raise
    if not batch and stream.reached_end and not ctx.final:
        wait = DEFAULT_AWAIT_MS if not isinstance(max_time_ms, (int, float)) else max(0, max_time_ms)
        return AwaitData(wait / 1000.0, stream.position)
    cursor_id = stream.id
    if stream.invalidated:
        engine.cursors.discard(cursor_id)
        cursor_id = 0
    return {
        "cursor": {
            "nextBatch": [bson.raw_bson.RawBSONDocument(e) for e in batch],
            "postBatchResumeToken": resume_token(stream.position),
            "id": Int64(cursor_id),
            "ns": stream.namespace,
        },
        "ok": 1.0,
    }
