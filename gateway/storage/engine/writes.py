"""Write commands: insert, update, delete, findAndModify."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import bson
from bson import ObjectId, Regex

from . import query
from .errors import CommandError, translate
from .paths import parse_array_filters
from .reads import collection_name
from .updates import apply_update, kind_of, new_id, upsert_seed
from .wire import CODEC, MAX_BSON_OBJECT_SIZE

if TYPE_CHECKING:
    from .commands import CommandContext, Engine


def _statements(command: dict, field: str) -> list[dict]:
    statements = command.get(field)
    if not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
        raise CommandError(14, f"BSON field '{field}' must be an array of objects")
    return statements


def _reply(n: int, errors: list[dict], **extra: Any) -> dict:
    reply: dict[str, Any] = {"n": n, **extra}
    if errors:
        reply["writeErrors"] = errors
    reply["ok"] = 1.0
    return reply


def insert(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    """The insert command."""
    coll = collection_name(command, "insert")
    documents = _statements(command, "documents")
    ordered = command.get("ordered", True)
    inserted, errors = 0, []
    for index, doc in enumerate(documents):
        try:
            engine.store.insert(db, coll, _prepare_insert(doc))
            inserted += 1
        except Exception as exc:  # each document fails on its own, as a write error
            errors.append(translate(exc).to_write_error(index))
            if ordered:
                break
    return _reply(inserted, errors)


def _prepare_insert(doc: dict) -> dict:
    if "_id" not in doc:
        return {"_id": ObjectId(), **doc}
    _check_id(doc["_id"])
    if next(iter(doc)) != "_id":
        return {"_id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}}
    return doc


def _check_id(value: Any) -> None:
    if isinstance(value, list):
        raise CommandError(53, "The '_id' value cannot be of type array")
    if isinstance(value, (Regex, re.Pattern)):
        raise CommandError(2, "can't use a regex for _id")


def _changed(old: dict, new: dict) -> bool:
    encoded = bson.encode(new, codec_options=CODEC)
    if len(encoded) > MAX_BSON_OBJECT_SIZE:
        raise CommandError(17419, f"Resulting document after update is larger than {MAX_BSON_OBJECT_SIZE}")
    return encoded != bson.encode(old, codec_options=CODEC)


def _build_upsert(engine: Engine, db: str, q: dict, update: Any, filters: dict) -> dict:
    seed = upsert_seed(q)
    if kind_of(update) == "replacement":
        seed = {"_id": seed["_id"]} if "_id" in seed else {}
    doc = apply_update(
        seed, update, query=q, array_filters=filters, is_insert=True, database=engine.store.mongomock_database(db)
    )
    doc = new_id(doc)
    _check_id(doc["_id"])
    return doc


def update(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    """The update command."""
    coll = collection_name(command, "update")
    ordered = command.get("ordered", True)
    store = engine.store
    matched = modified = 0
    upserted: list[dict] = []
    errors: list[dict] = []
    for index, statement in enumerate(_statements(command, "updates")):
        try:
            q = statement.get("q") or {}
            u = statement.get("u")
            multi = bool(statement.get("multi"))
            filters = parse_array_filters(statement.get("arrayFilters"))
            kind = kind_of(u)
            if multi and kind == "replacement":
                raise CommandError(9, "multi update is not supported for replacement-style update")
            docs = query.find(store, db, coll, q, limit=0 if multi else 1)
            for doc in docs:
                new = apply_update(
                    doc, u, query=q, array_filters=filters, is_insert=False, database=store.mongomock_database(db)
                )
                matched += 1
                if _changed(doc, new):
                    store.replace(db, coll, doc, new)
                    modified += 1
            if not docs and statement.get("upsert"):
                new = _build_upsert(engine, db, q, u, filters)
                store.insert(db, coll, new)
                matched += 1
                upserted.append({"index": index, "_id": new["_id"]})
        except Exception as exc:  # each statement fails on its own, as a write error
            errors.append(translate(exc).to_write_error(index))
            if ordered:
                break
    extra: dict[str, Any] = {"nModified": modified}
    if upserted:
        extra["upserted"] = upserted
    return _reply(matched, errors, **extra)


def delete(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    """The delete command."""
    coll = collection_name(command, "delete")
    ordered = command.get("ordered", True)
    deleted, errors = 0, []
    for index, statement in enumerate(_statements(command, "deletes")):
        try:
            limit = statement.get("limit", 0)
            if limit not in (0, 1):
                raise CommandError(9, f"The limit field in delete objects must be 0 or 1. Got {limit}")
            for doc in query.find(engine.store, db, coll, statement.get("q") or {}, limit=limit):
                engine.store.delete(db, coll, doc)
                deleted += 1
        except Exception as exc:  # each statement fails on its own, as a write error
            errors.append(translate(exc).to_write_error(index))
            if ordered:
                break
    return _reply(deleted, errors)


def find_and_modify(engine: Engine, ctx: CommandContext, db: str, command: dict) -> dict:
    """The findAndModify command."""
    coll = collection_name(command, "findAndModify" if "findAndModify" in command else "findandmodify")
    store = engine.store
    q = command.get("query") or {}
    remove = bool(command.get("remove"))
    u = command.get("update")
    return_new = bool(command.get("new"))
    upsert = bool(command.get("upsert"))
    if remove and u is not None:
        raise CommandError(9, "Cannot specify both an update and remove=true")
    if not remove and u is None:
        raise CommandError(9, "Either an update or remove=true must be specified")
    if remove and return_new:
        raise CommandError(
            9, "Cannot specify both new=true and remove=true; 'remove' always returns the deleted document"
        )
    if remove and upsert:
        raise CommandError(9, "Cannot specify both upsert=true and remove=true")
    filters = parse_array_filters(command.get("arrayFilters"))
    if u is not None:
        kind_of(u)
    project = query.projector(store, db, coll, command.get("fields"))
    sort = query.parse_sort(command.get("sort"))
    docs = query.find(store, db, coll, q, sort=sort, limit=1)
    old = docs[0] if docs else None
    result: dict | None
    if remove:
        if old is not None:
            store.delete(db, coll, old)
        result = old
        last_error: dict[str, Any] = {"n": 1 if old is not None else 0}
    elif old is not None:
        new = apply_update(
            old, u, query=q, array_filters=filters, is_insert=False, database=store.mongomock_database(db)
        )
        if _changed(old, new):
            store.replace(db, coll, old, new)
        result = new if return_new else old
        last_error = {"n": 1, "updatedExisting": True}
    elif upsert:
        new = _build_upsert(engine, db, q, u, filters)
        store.insert(db, coll, new)
        result = new if return_new else None
        last_error = {"n": 1, "updatedExisting": False, "upserted": new["_id"]}
    else:
        result = None
        last_error = {"n": 0, "updatedExisting": False}
    if result is not None and project is not None:
        result = project(result)
    return {"lastErrorObject": last_error, "value": result, "ok": 1.0}
