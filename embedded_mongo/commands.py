"""Command dispatch and the administrative commands; runs on the engine thread, one command at a time."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any

import mongomock
from bson import Binary, Int64

from . import explain, reads, writes
from .context import AwaitData, CommandContext
from .cursors import CursorTable
from .errors import CommandError, translate
from .identity import VERSION, ServerIdentity, hello_reply
from .indexes import ID_INDEX_NAME, IndexSpec
from .matcher import compile_filter
from .oplog import timestamp
from .sessions import RetryableWrites
from .storage import Storage
from .wire import MAX_BSON_OBJECT_SIZE, Request, encoded

logger = logging.getLogger(__name__)

# Commands whose effects are undone as a whole when they fail. (Document writes need no savepoint: each
# document is checked before it is written, and a storage error fails the whole batch.)
DDL_COMMANDS = {
    "create",
    "drop",
    "dropDatabase",
    "createIndexes",
    "dropIndexes",
    "deleteIndexes",
    "renameCollection",
    "collMod",
}
RETRYABLE = {"insert", "update", "delete", "findAndModify", "findandmodify"}
_READ_CONCERNS = {"local", "majority", "available", "linearizable"}


Handler = Callable[["Engine", CommandContext, str, dict], Any]


class Engine:
    """Executes commands against the storage; every call happens on the engine thread."""

    def __init__(self, storage: Storage, identity: ServerIdentity) -> None:
        self.storage = storage
        self.identity = identity
        self.cursors = CursorTable()
        self.retryable = RetryableWrites(storage.conn)
        # mongomock's projection and aggregation helpers need a mongomock collection to hang off.
        self._mongomock: mongomock.MongoClient = mongomock.MongoClient()
        self.helper = self._mongomock.get_database("helper").get_collection("helper")
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
            "replSetGetStatus": _repl_set_get_status,
            "find": reads.find,
            "getMore": reads.get_more,
            "killCursors": reads.kill_cursors,
            "aggregate": _aggregate,
            "count": reads.count,
            "distinct": reads.distinct,
            "explain": explain.explain,
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
            "collMod": _coll_mod,
            "commitTransaction": _no_transactions,
            "abortTransaction": _no_transactions,
        }

    def close(self) -> None:
        """Close every cursor and the helper client."""
        self.cursors.clear()
        self._mongomock.close()

    def command_names(self) -> list[str]:
        """Names of the supported commands."""
        return list(self._handlers)

    def execute(self, request: Request, ctx: CommandContext) -> dict | AwaitData:
        """Run one command and return its reply (errors become error replies)."""
        command = request.command
        if not command:
            return CommandError(59, "no such command: ''").to_reply()
        name = next(iter(command))
        handler = self._handlers.get(name)
        if handler is None:
            return CommandError(59, f"no such command: '{name}'").to_reply()
        session = command.get("lsid")
        if isinstance(session, dict) and isinstance(session.get("id"), bytes):
            ctx.session = bytes(session["id"])
        ctx.raw_documents = request.raw_documents
        storage = self.storage
        try:
            _check_common(command)
            txn = command.get("txnNumber")
            if txn is not None and name in RETRYABLE and ctx.session is not None:
                return self._retryable(handler, ctx, request, int(txn))
            if name not in DDL_COMMANDS:
                return handler(self, ctx, request.database, command)
            storage.savepoint()
            try:
                reply = handler(self, ctx, request.database, command)
            except BaseException:
                storage.rollback_to_savepoint()
                raise
            storage.release()
            return reply
        except CommandError as exc:
            return exc.to_reply()
        except sqlite3.Error:
            raise  # the storage failed: the whole batch is undone and every command in it fails
        except Exception as exc:  # no bad command may take the connection or server down
            logger.exception("command %s failed", name)
            return translate(exc).to_reply()

    def _retryable(self, handler: Handler, ctx: CommandContext, request: Request, txn: int) -> dict:
        assert ctx.session is not None
        earlier = self.retryable.lookup(ctx.session, txn)
        if earlier is not None:
            return earlier
        reply = handler(self, ctx, request.database, request.command)
        if reply.get("ok"):
            self.retryable.record(ctx.session, txn, reply)
        return reply

    def maintain(self) -> None:
        """Periodic housekeeping that needs no transaction of its own: idle cursors."""
        self.cursors.reap()


def _check_common(command: dict) -> None:
    if command.get("startTransaction") or command.get("autocommit") is False:
        raise CommandError(20, "multi-document transactions are not supported by the embedded engine")
    if command.get("collation") is not None:
        raise CommandError(238, "collation is not supported by the embedded engine")
    concern = command.get("readConcern")
    if isinstance(concern, dict):
        level = concern.get("level")
        if (level is not None and level not in _READ_CONCERNS) or "atClusterTime" in concern:
            raise CommandError(238, f"read concern {concern} is not supported by the embedded engine")


def _ok(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    return {"ok": 1.0}


def _no_transactions(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    raise CommandError(20, "multi-document transactions are not supported by the embedded engine")


def _aggregate(engine: Engine, ctx: CommandContext, db: str, command: dict) -> Any:
    """aggregate, or (with explain: true) its plan."""
    if command.get("explain"):
        return explain.explain_aggregate(engine, db, command, "queryPlanner")
    return reads.aggregate(engine, ctx, db, command)


def _hello(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    return hello_reply(command, ctx.connection_id, ctx.me, engine.identity, engine.storage.oplog.last_ts)


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
        "storageEngines": ["sqlite"],
        "ok": 1.0,
    }


def _get_parameter(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    reply: dict[str, Any] = {}
    if command.get("featureCompatibilityVersion") or command.get("getParameter") == "*":
        reply["featureCompatibilityVersion"] = {"version": "7.0"}
    reply["ok"] = 1.0
    return reply


def _cmd_line_opts(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    return {"argv": ["embedded"], "parsed": {"replication": {"replSet": engine.identity.set_name}}, "ok": 1.0}


def _get_log(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    return {"totalLinesWritten": 0, "log": [], "ok": 1.0}


def _server_status(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    storage = engine.storage
    return {
        "host": ctx.me,
        "version": VERSION,
        "process": "embedded",
        "connections": {},
        "repl": {"setName": engine.identity.set_name, "isWritablePrimary": True, "me": ctx.me},
        "embedded": {
            "commits": storage.commits,
            "openCursors": len(engine.cursors),
            "documentsRead": storage.documents_read,
            "engineCpuSeconds": getattr(ctx.thread, "cpu_seconds", 0.0),
            "historyTrimmedUpTo": timestamp(storage.oplog.trimmed_upto),
        },
        "ok": 1.0,
    }


def _repl_set_get_status(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    op_time = {"ts": timestamp(engine.storage.oplog.last_ts), "t": Int64(1)}
    return {
        "set": engine.identity.set_name,
        "myState": 1,
        "members": [
            {
                "_id": 0,
                "name": ctx.me,
                "health": 1.0,
                "state": 1,
                "stateStr": "PRIMARY",
                "optime": op_time,
                "self": True,
            }
        ],
        "ok": 1.0,
    }


def _connection_status(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    return {"authInfo": {"authenticatedUsers": [], "authenticatedUserRoles": []}, "ok": 1.0}


def _list_commands(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    return {"commands": {name: {} for name in engine.command_names()}, "ok": 1.0}


def _list_databases(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    storage = engine.storage
    entries = []
    for name in storage.database_names():
        count = sum(storage.count(c) for c in storage.collections_of(name))
        entries.append({"name": name, "sizeOnDisk": count, "empty": count == 0})
    flt = command.get("filter")
    if isinstance(flt, dict) and flt:
        test = compile_filter(flt)
        entries = [e for e in entries if test(e)]
    if command.get("nameOnly"):
        entries = [{"name": e["name"]} for e in entries]
    return {"databases": entries, "totalSize": sum(e.get("sizeOnDisk", 0) for e in entries), "ok": 1.0}


def _db_stats(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    storage = engine.storage
    collections = storage.collections_of(db)
    objects = sum(storage.count(c) for c in collections)
    indexes = sum(len(c.indexes) + 1 for c in collections)
    return {
        "db": db,
        "collections": len(collections),
        "views": 0,
        "objects": objects,
        "indexes": indexes,
        "dataSize": 0,
        "storageSize": 0,
        "ok": 1.0,
    }


def _coll_stats(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    name = reads.collection_name(command, "collStats")
    coll = engine.storage.collection(db, name)
    if coll is None:
        raise CommandError(26, f"Collection [{db}.{name}] not found.")
    return {
        "ns": coll.namespace,
        "count": engine.storage.count(coll),
        "size": 0,
        "nindexes": len(coll.indexes) + 1,
        "ok": 1.0,
    }


_CREATE_OPTIONS = {"changeStreamPreAndPostImages"}
_IGNORED_FIELDS = {
    "$db",
    "lsid",
    "$clusterTime",
    "$readPreference",
    "writeConcern",
    "apiVersion",
    "apiStrict",
    "apiDeprecationErrors",
    "comment",
    "txnNumber",
    "readConcern",
    "maxTimeMS",
}


def _create(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    name = reads.collection_name(command, "create")
    options = {k: v for k, v in command.items() if k != "create" and k not in _IGNORED_FIELDS}
    for option in options:
        if option not in _CREATE_OPTIONS:
            raise CommandError(238, f"collection option '{option}' is not supported by the embedded engine")
    if engine.storage.collection(db, name) is not None:
        raise CommandError(48, f"Collection {db}.{name} already exists.")
    engine.storage.create_collection(db, name, options)
    return {"ok": 1.0}


def _drop(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    name = reads.collection_name(command, "drop")
    coll = engine.storage.collection(db, name)
    if coll is None:
        return {"ok": 1.0}
    indexes = len(coll.indexes) + 1
    engine.storage.drop_collection(coll)
    return {"ns": f"{db}.{name}", "nIndexesWas": indexes, "ok": 1.0}


def _drop_database(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    engine.storage.drop_database(db)
    return {"dropped": db, "ok": 1.0}


def _list_collections(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    entries = [
        {
            "name": coll.name,
            "type": "collection",
            "options": coll.options,
            "info": {"readOnly": False, "uuid": Binary(coll.uuid, 4)},
            "idIndex": {"v": 2, "key": {"_id": 1}, "name": ID_INDEX_NAME},
        }
        for coll in engine.storage.collections_of(db)
    ]
    flt = command.get("filter")
    if isinstance(flt, dict) and flt:
        test = compile_filter(flt)
        entries = [e for e in entries if test(e)]
    if command.get("nameOnly"):
        entries = [{"name": e["name"], "type": e["type"]} for e in entries]
    batch_size = (command.get("cursor") or {}).get("batchSize")
    cursor = engine.cursors.open(
        f"{db}.$cmd.listCollections", encoded(entries), batch_size=batch_size, session=ctx.session
    )
    return {"cursor": cursor, "ok": 1.0}


def _create_indexes(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    name = reads.collection_name(command, "createIndexes")
    specs = command.get("indexes")
    if not isinstance(specs, list) or not specs:
        raise CommandError(2, "Must specify at least one index to create")
    if not all(isinstance(s, dict) for s in specs):
        raise CommandError(14, "createIndexes indexes must be objects")
    parsed = [IndexSpec.from_document(s) for s in specs]
    storage = engine.storage
    coll = storage.collection(db, name)
    created_collection = coll is None
    if coll is None:
        coll = storage.create_collection(db, name)
    before = len(coll.indexes) + 1
    for spec in parsed:
        if spec.name == ID_INDEX_NAME or spec.key == [("_id", 1)]:
            continue
        existing = coll.index(spec.name)
        if existing is not None:
            if existing.spec.same_definition(spec):
                continue
            raise CommandError(
                86, f"An existing index has the same name as the requested index but different options: {spec.name}"
            )
        same_key = next((i for i in coll.indexes if i.spec.key == spec.key and i.spec.same_definition(spec)), None)
        if same_key is not None:
            raise CommandError(85, f"Index already exists with a different name: {same_key.name}")
        storage.create_index(coll, spec)
    after = len(coll.indexes) + 1
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
    name = reads.collection_name(command, "listIndexes")
    coll = engine.storage.collection(db, name)
    if coll is None:
        raise CommandError(26, f"ns does not exist: {db}.{name}")
    entries = [{"v": 2, "key": {"_id": 1}, "name": ID_INDEX_NAME}]
    entries += [index.spec.to_document() for index in coll.indexes]
    batch_size = (command.get("cursor") or {}).get("batchSize")
    cursor = engine.cursors.open(coll.namespace, encoded(entries), batch_size=batch_size, session=ctx.session)
    return {"cursor": cursor, "ok": 1.0}


def _drop_indexes(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    name = reads.collection_name(command, next(iter(command)))
    storage = engine.storage
    coll = storage.collection(db, name)
    if coll is None:
        raise CommandError(26, f"ns not found {db}.{name}")
    before = len(coll.indexes) + 1
    target = command.get("index")
    if target == "*":
        names = [index.name for index in coll.indexes]
    elif isinstance(target, str):
        names = [target]
    elif isinstance(target, list):
        names = list(target)
    elif isinstance(target, dict):
        names = [index.name for index in coll.indexes if index.spec.key == list(target.items())]
        if not names:
            raise CommandError(27, f"can't find index with key: {target}")
    else:
        raise CommandError(14, "dropIndexes index must be a string, array or object")
    if ID_INDEX_NAME in names:
        raise CommandError(72, "cannot drop _id index")
    for index_name in names:
        if coll.index(index_name) is None:
            raise CommandError(27, f"index not found with name [{index_name}]")
    for index_name in names:
        index = coll.index(index_name)
        assert index is not None
        storage.drop_index(coll, index)
    return {"nIndexesWas": before, "ok": 1.0}


def _rename_collection(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    source, target = command.get("renameCollection"), command.get("to")
    if not isinstance(source, str) or not isinstance(target, str):
        raise CommandError(14, "renameCollection source and target must be strings")
    src_db, _, src = source.partition(".")
    dst_db, _, dst = target.partition(".")
    storage = engine.storage
    coll = storage.collection(src_db, src)
    if coll is None:
        raise CommandError(26, f"Source collection {source} does not exist")
    existing = storage.collection(dst_db, dst)
    if existing is not None:
        if not command.get("dropTarget"):
            raise CommandError(48, f"target namespace exists: {target}")
        storage.drop_collection(existing)
    storage.rename_collection(coll, dst_db, dst)
    return {"ok": 1.0}


def _coll_mod(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    name = reads.collection_name(command, "collMod")
    storage = engine.storage
    coll = storage.collection(db, name)
    if coll is None:
        raise CommandError(26, f"ns does not exist: {db}.{name}")
    reply: dict[str, Any] = {}
    for option, value in command.items():
        if option == "collMod" or option in _IGNORED_FIELDS:
            continue
        if option == "changeStreamPreAndPostImages":
            if not isinstance(value, dict) or not isinstance(value.get("enabled"), bool):
                raise CommandError(2, "changeStreamPreAndPostImages must be {enabled: <bool>}")
            storage.set_options(coll, {**coll.options, option: {"enabled": value["enabled"]}})
        elif option == "index" and isinstance(value, dict):
            target = value.get("name")
            if isinstance(target, str):
                index = coll.index(target)
            else:
                pattern = list(value.get("keyPattern", {}).items())
                index = next((i for i in coll.indexes if i.spec.key == pattern), None)
            if index is None:
                raise CommandError(27, "cannot find index for collMod")
            if set(value) - {"name", "keyPattern", "expireAfterSeconds", "hidden"}:
                raise CommandError(
                    238, f"collMod index options {sorted(value)} are not supported by the embedded engine"
                )
            if "expireAfterSeconds" in value:
                if index.spec.expire_after is None:
                    raise CommandError(72, "no expireAfterSeconds field to update")
                reply["expireAfterSeconds_old"] = index.spec.to_document()["expireAfterSeconds"]
                index.spec.expire_after = float(value["expireAfterSeconds"])
                reply["expireAfterSeconds_new"] = value["expireAfterSeconds"]
            if "hidden" in value:
                reply["hidden_old"] = index.spec.hidden
                index.spec.hidden = bool(value["hidden"])
                reply["hidden_new"] = index.spec.hidden
            storage.update_index_spec(index)
        else:
            raise CommandError(238, f"collMod option '{option}' is not supported by the embedded engine")
    reply["ok"] = 1.0
    return reply
