"""Command execution: dispatches MongoDB commands to the store, reads and writes."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from mongomock.filtering import filter_applies

from . import reads, writes
from .cursors import CursorTable
from .errors import CommandError, translate
from .indexes import ID_INDEX_NAME, IndexSpec
from .store import Store
from .wire import MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE, MAX_WRITE_BATCH_SIZE

logger = logging.getLogger(__name__)

VERSION = "7.0.0"
MAX_WIRE_VERSION = 21

# Commands whose reply must wait until their effects (and all earlier ones) are durable.
WRITE_COMMANDS = {
    "insert",
    "update",
    "delete",
    "findAndModify",
    "findandmodify",
    "create",
    "drop",
    "dropDatabase",
    "createIndexes",
    "dropIndexes",
    "deleteIndexes",
    "renameCollection",
}


@dataclass
class CommandContext:
    """Who is running a command."""

    connection_id: int
    session: Hashable | None = None


Handler = Callable[["Engine", CommandContext, str, dict], dict]


class Engine:
    """Executes commands; synchronous, so each command is atomic on the event loop."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store or Store()
        self.cursors = CursorTable()
        self._handlers: dict[str, Handler] = {
            "hello": _hello,
            "isMaster": _hello,
            "ismaster": _hello,
            "ping": _ok,
            "endSessions": _end_sessions,
            "killSessions": _end_sessions,
            "killAllSessions": _ok,
            "refreshSessions": _ok,
            "logout": _ok,
            "buildInfo": _build_info,
            "buildinfo": _build_info,
            "getParameter": _get_parameter,
            "getCmdLineOpts": _cmd_line_opts,
            "whatsmyuri": _ok,
            "getLog": _get_log,
            "hostInfo": _ok,
            "serverStatus": _server_status,
            "connectionStatus": _connection_status,
            "listCommands": _list_commands,
            "listDatabases": _list_databases,
            "dbStats": _db_stats,
            "collStats": _coll_stats,
            "find": reads.find,
            "getMore": reads.get_more,
            "killCursors": reads.kill_cursors,
            "aggregate": reads.aggregate,
            "count": reads.count,
            "distinct": reads.distinct,
            "insert": writes.insert,
            "update": writes.update,
            "delete": writes.delete,
            "findAndModify": writes.find_and_modify,
            "findandmodify": writes.find_and_modify,
            "create": _create,
            "drop": _drop,
            "dropDatabase": _drop_database,
            "listCollections": _list_collections,
            "createIndexes": _create_indexes,
            "listIndexes": _list_indexes,
            "dropIndexes": _drop_indexes,
            "deleteIndexes": _drop_indexes,
            "renameCollection": _rename_collection,
        }

    def command_names(self) -> list[str]:
        """Names of the supported commands."""
        return list(self._handlers)

    def execute(self, database: str, command: dict, ctx: CommandContext) -> tuple[dict, bool]:
        """Run one command; returns (reply, whether it is a write command)."""
        if not command:
            return CommandError(59, "no such command: ''").to_reply(), False
        name = next(iter(command))
        handler = self._handlers.get(name)
        if handler is None:
            return CommandError(59, f"no such command: '{name}'").to_reply(), False
        session = command.get("lsid")
        if isinstance(session, dict) and "id" in session:
            ctx = CommandContext(ctx.connection_id, bytes(session["id"]))
        try:
            reply = handler(self, ctx, database, command)
        except CommandError as exc:
            reply = exc.to_reply()
        except Exception as exc:  # no bad command may take the connection or server down
            logger.exception("command %s failed", name)
            reply = translate(exc).to_reply()
        return reply, name in WRITE_COMMANDS


def _ok(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    return {"ok": 1.0}


def _hello(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    reply: dict[str, Any] = {
        "ismaster" if next(iter(command)) != "hello" else "isWritablePrimary": True,
        "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE,
        "maxMessageSizeBytes": MAX_MESSAGE_SIZE,
        "maxWriteBatchSize": MAX_WRITE_BATCH_SIZE,
        "localTime": now.replace(microsecond=now.microsecond // 1000 * 1000),
        "logicalSessionTimeoutMinutes": 30,
        "connectionId": ctx.connection_id,
        "minWireVersion": 0,
        "maxWireVersion": MAX_WIRE_VERSION,
        "readOnly": False,
    }
    if command.get("helloOk"):
        reply["helloOk"] = True
    reply["ok"] = 1.0
    return reply


def _end_sessions(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    sessions = command.get(next(iter(command)))
    if isinstance(sessions, list):
        engine.cursors.kill_sessions({bytes(s["id"]) for s in sessions if isinstance(s, dict) and "id" in s})
    return {"ok": 1.0}


def _build_info(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    return {
        "version": VERSION,
        "versionArray": [7, 0, 0, 0],
        "gitVersion": "embedded",
        "bits": 64,
        "debug": False,
        "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE,
        "storageEngines": ["embedded"],
        "ok": 1.0,
    }


def _get_parameter(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    reply: dict[str, Any] = {}
    if command.get("featureCompatibilityVersion") or command.get("getParameter") == "*":
        reply["featureCompatibilityVersion"] = {"version": "7.0"}
    reply["ok"] = 1.0
    return reply


def _cmd_line_opts(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    return {"argv": ["embedded"], "parsed": {}, "ok": 1.0}


def _get_log(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    return {"totalLinesWritten": 0, "log": [], "ok": 1.0}


def _server_status(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    return {"host": "embedded", "version": VERSION, "process": "embedded", "connections": {}, "ok": 1.0}


def _connection_status(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    return {"authInfo": {"authenticatedUsers": [], "authenticatedUserRoles": []}, "ok": 1.0}


def _list_commands(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    return {"commands": {name: {} for name in engine.command_names()}, "ok": 1.0}


def _list_databases(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    entries = []
    for name in engine.store.database_names():
        count = sum(engine.store.count(name, c) for c in engine.store.collection_names(name))
        entries.append({"name": name, "sizeOnDisk": count, "empty": count == 0})
    flt = command.get("filter")
    if isinstance(flt, dict) and flt:
        entries = [e for e in entries if filter_applies(flt, e)]
    if command.get("nameOnly"):
        entries = [{"name": e["name"]} for e in entries]
    return {"databases": entries, "totalSize": sum(e.get("sizeOnDisk", 0) for e in entries), "ok": 1.0}


def _db_stats(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    names = engine.store.collection_names(db)
    objects = sum(engine.store.count(db, c) for c in names)
    indexes = sum(len(engine.store.indexes(db, c).indexes) + 1 for c in names)
    return {
        "db": db,
        "collections": len(names),
        "views": 0,
        "objects": objects,
        "indexes": indexes,
        "dataSize": 0,
        "storageSize": 0,
        "ok": 1.0,
    }


def _coll_stats(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    coll = reads.collection_name(command, "collStats")
    if not engine.store.exists(db, coll):
        raise CommandError(26, f"Collection [{db}.{coll}] not found.")
    return {
        "ns": f"{db}.{coll}",
        "count": engine.store.count(db, coll),
        "size": 0,
        "nindexes": len(engine.store.indexes(db, coll).indexes) + 1,
        "ok": 1.0,
    }


def _create(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    coll = reads.collection_name(command, "create")
    if engine.store.exists(db, coll):
        raise CommandError(48, f"Collection {db}.{coll} already exists.")
    ignored = {
        "create",
        "$db",
        "lsid",
        "$clusterTime",
        "$readPreference",
        "writeConcern",
        "apiVersion",
        "apiStrict",
        "apiDeprecationErrors",
        "comment",
    }
    engine.store.create_collection(db, coll, {k: v for k, v in command.items() if k not in ignored})
    return {"ok": 1.0}


def _drop(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    coll = reads.collection_name(command, "drop")
    indexes = len(engine.store.indexes(db, coll).indexes) + 1
    if engine.store.drop_collection(db, coll):
        return {"ns": f"{db}.{coll}", "nIndexesWas": indexes, "ok": 1.0}
    return {"ok": 1.0}


def _drop_database(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    engine.store.drop_database(db)
    return {"dropped": db, "ok": 1.0}


def _list_collections(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    entries = []
    for name in sorted(engine.store.collection_names(db)):
        options = engine.store.options(db, name)
        entries.append(
            {
                "name": name,
                "type": "collection",
                "options": options,
                "info": {"readOnly": False},
                "idIndex": {"v": 2, "key": {"_id": 1}, "name": ID_INDEX_NAME},
            }
        )
    flt = command.get("filter")
    if isinstance(flt, dict) and flt:
        try:
            entries = [e for e in entries if filter_applies(flt, e)]
        except Exception as exc:  # a bad filter is the client's error
            raise translate(exc) from exc
    if command.get("nameOnly"):
        entries = [{"name": e["name"], "type": e["type"]} for e in entries]
    batch_size = (command.get("cursor") or {}).get("batchSize")
    cursor = engine.cursors.open(f"{db}.$cmd.listCollections", entries, batch_size=batch_size, session=ctx.session)
    return {"cursor": cursor, "ok": 1.0}


def _create_indexes(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    coll = reads.collection_name(command, "createIndexes")
    specs = command.get("indexes")
    if not isinstance(specs, list) or not specs:
        raise CommandError(2, "Must specify at least one index to create")
    parsed = [IndexSpec.from_document(s) if isinstance(s, dict) else None for s in specs]
    if any(spec is None for spec in parsed):
        raise CommandError(14, "createIndexes indexes must be objects")
    created_collection = not engine.store.exists(db, coll)
    before = len(engine.store.indexes(db, coll).indexes) + 1
    if created_collection:
        engine.store.create_collection(db, coll, {})
    for spec in parsed:
        if spec.name == ID_INDEX_NAME or spec.key == [("_id", 1)]:
            continue
        engine.store.create_index(db, coll, spec)
    after = len(engine.store.indexes(db, coll).indexes) + 1
    reply: dict[str, Any] = {
        "createdCollectionAutomatically": created_collection,
        "numIndexesBefore": before,
        "numIndexesAfter": after,
    }
    if before == after:
        reply["note"] = "all indexes already exist"
    reply["ok"] = 1.0
    return reply


def _list_indexes(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    coll = reads.collection_name(command, "listIndexes")
    if not engine.store.exists(db, coll):
        raise CommandError(26, f"ns does not exist: {db}.{coll}")
    entries = [{"v": 2, "key": {"_id": 1}, "name": ID_INDEX_NAME}]
    entries += [spec.to_document() for spec in engine.store.indexes(db, coll).specs()]
    batch_size = (command.get("cursor") or {}).get("batchSize")
    cursor = engine.cursors.open(f"{db}.{coll}", entries, batch_size=batch_size, session=ctx.session)
    return {"cursor": cursor, "ok": 1.0}


def _drop_indexes(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    coll = reads.collection_name(command, next(iter(command)))
    if not engine.store.exists(db, coll):
        raise CommandError(26, f"ns not found {db}.{coll}")
    specs = engine.store.indexes(db, coll).specs()
    before = len(specs) + 1
    target = command.get("index")
    if target == "*":
        names = [spec.name for spec in specs]
    elif isinstance(target, str):
        names = [target]
    elif isinstance(target, list):
        names = list(target)
    elif isinstance(target, dict):
        names = [spec.name for spec in specs if spec.key == list(target.items())]
        if not names:
            raise CommandError(27, f"can't find index with key: {target}")
    else:
        raise CommandError(14, "dropIndexes index must be a string, array or object")
    if ID_INDEX_NAME in names:
        raise CommandError(72, "cannot drop _id index")
    existing = {spec.name for spec in specs}
    for name in names:
        if name not in existing:
            raise CommandError(27, f"index not found with name [{name}]")
    for name in names:
        engine.store.drop_index(db, coll, name)
    return {"nIndexesWas": before, "ok": 1.0}


def _rename_collection(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    source, target = command.get("renameCollection"), command.get("to")
    if not isinstance(source, str) or not isinstance(target, str):
        raise CommandError(14, "renameCollection source and target must be strings")
    src_db, _, src = source.partition(".")
    dst_db, _, dst = target.partition(".")
    store = engine.store
    if not store.exists(src_db, src):
        raise CommandError(26, f"Source collection {source} does not exist")
    if store.exists(dst_db, dst):
        if not command.get("dropTarget"):
            raise CommandError(48, f"target namespace exists: {target}")
        store.drop_collection(dst_db, dst)
    store.create_collection(dst_db, dst, dict(store.options(src_db, src)))
    for spec in store.indexes(src_db, src).specs():
        store.create_index(dst_db, dst, spec, check=False)
    for doc in store.documents(src_db, src):
        store.insert(dst_db, dst, doc)
    store.drop_collection(src_db, src)
    return {"ok": 1.0}
