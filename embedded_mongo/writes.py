"""Write commands: insert, update, delete, findAndModify."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import bson
from bson import ObjectId, Regex

from .errors import STATEMENT_ERRORS, CommandError, translate
from .paths import parse_array_filters
from .query import Query, parse_sort, projector
from .reads import collection_name
from .storage import Collection
from .updates import apply_update, kind_of, new_id, upsert_seed
from .wire import CODEC, MAX_BSON_OBJECT_SIZE

if TYPE_CHECKING:
    from .context import CommandContext, Services


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


def _encode(doc: dict) -> bytes:
    raw = bson.encode(doc, codec_options=CODEC)
    if len(raw) > MAX_BSON_OBJECT_SIZE:
        raise CommandError(17419, f"Resulting document after update is larger than {MAX_BSON_OBJECT_SIZE}")
    return raw


def insert(engine: Services, ctx: CommandContext, db: str, command: dict) -> dict:
    """The insert command."""
    name = collection_name(command, "insert")
    documents = _statements(command, "documents")
    raw_documents = ctx.raw_documents.get("documents", []) if ctx.raw_documents else []
    if len(raw_documents) != len(documents):
        raw_documents = []
    ordered = command.get("ordered", True)
    storage = engine.storage
    coll = storage.ensure_collection(db, name)
    inserted, errors = 0, []
    for index, doc in enumerate(documents):
        try:
            prepared, raw = _prepare_insert(doc, raw_documents[index] if raw_documents else None)
            storage.insert(coll, prepared, raw)
            inserted += 1
        except STATEMENT_ERRORS as exc:  # each document fails on its own, as a write error
            errors.append(translate(exc).to_write_error(index))
            if ordered:
                break
    return _reply(inserted, errors)


def _prepare_insert(doc: dict, raw: bytes | None) -> tuple[dict, bytes]:
    if "_id" not in doc:
        doc = {"_id": ObjectId(), **doc}
        raw = None
    else:
        _check_id(doc["_id"])
        if next(iter(doc)) != "_id":
            doc = {"_id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}}
            raw = None
    if raw is None:
        raw = bson.encode(doc, codec_options=CODEC)
    if len(raw) > MAX_BSON_OBJECT_SIZE:
        raise CommandError(
            10334, f"object to insert too large. size in bytes: {len(raw)}, max size: {MAX_BSON_OBJECT_SIZE}"
        )
    return doc, raw


def _check_id(value: Any) -> None:
    if isinstance(value, list):
        raise CommandError(53, "The '_id' value cannot be of type array")
    if isinstance(value, (Regex, re.Pattern)):
        raise CommandError(2, "can't use a regex for _id")


def _build_upsert(q: dict, update: Any, filters: dict) -> dict:
    seed = upsert_seed(q)
    if kind_of(update) == "replacement":
        seed = {"_id": seed["_id"]} if "_id" in seed else {}
    doc = apply_update(seed, update, query=q, array_filters=filters, is_insert=True)
    doc = new_id(doc)
    _check_id(doc["_id"])
    return doc


def _check_statement(statement: dict) -> None:
    if statement.get("collation") is not None:
        raise CommandError(238, "collation is not supported by the embedded engine")
    if statement.get("c") is not None:
        raise CommandError(238, "'c' (let constants) is not supported by the embedded engine")


def update(engine: Services, ctx: CommandContext, db: str, command: dict) -> dict:
    """The update command."""
    name = collection_name(command, "update")
    ordered = command.get("ordered", True)
    storage = engine.storage
    matched = modified = 0
    upserted: list[dict] = []
    errors: list[dict] = []
    for index, statement in enumerate(_statements(command, "updates")):
        try:
            _check_statement(statement)
            q = statement.get("q") or {}
            u = statement.get("u")
            multi = bool(statement.get("multi"))
            filters = parse_array_filters(statement.get("arrayFilters"))
            kind = kind_of(u)
            if multi and kind == "replacement":
                raise CommandError(9, "multi update is not supported for replacement-style update")
            coll = storage.collection(db, name)
            query = Query(storage, coll, q, limit=0 if multi else 1, hint=statement.get("hint"))
            done: set[int] = set()
            for rid, raw, doc in query.documents():
                if rid in done:
                    continue  # moved ahead of the scan by this very update
                assert coll is not None
                new = apply_update(doc, u, query=q, array_filters=filters, is_insert=False)
                matched += 1
                new_raw = _encode(new)
                if new_raw != raw:
                    storage.replace(coll, rid, doc, new, new_raw, old_raw=raw, replacement=kind == "replacement")
                    modified += 1
                done.add(rid)
            if not done and statement.get("upsert"):
                new = _build_upsert(q, u, filters)
                storage.insert(storage.ensure_collection(db, name), new, _encode(new))
                matched += 1
                upserted.append({"index": index, "_id": new["_id"]})
        except STATEMENT_ERRORS as exc:  # each statement fails on its own, as a write error
            errors.append(translate(exc).to_write_error(index))
            if ordered:
                break
    extra: dict[str, Any] = {"nModified": modified}
    if upserted:
        extra["upserted"] = upserted
    return _reply(matched, errors, **extra)


def delete(engine: Services, ctx: CommandContext, db: str, command: dict) -> dict:
    """The delete command."""
    name = collection_name(command, "delete")
    ordered = command.get("ordered", True)
    storage = engine.storage
    deleted, errors = 0, []
    for index, statement in enumerate(_statements(command, "deletes")):
        try:
            _check_statement(statement)
            limit = statement.get("limit", 0)
            if limit not in (0, 1):
                raise CommandError(9, f"The limit field in delete objects must be 0 or 1. Got {limit}")
            coll = storage.collection(db, name)
            query = Query(storage, coll, statement.get("q") or {}, limit=limit, hint=statement.get("hint"))
            for rid, raw, doc in query.documents():
                assert coll is not None
                storage.delete(coll, rid, doc, raw)
                deleted += 1
        except STATEMENT_ERRORS as exc:  # each statement fails on its own, as a write error
            errors.append(translate(exc).to_write_error(index))
            if ordered:
                break
    return _reply(deleted, errors)


def find_and_modify_query(engine: Services, db: str, command: dict) -> tuple[Collection | None, Query]:
    """The collection and query of a findAndModify command."""
    name = collection_name(command, "findAndModify" if "findAndModify" in command else "findandmodify")
    coll = engine.storage.collection(db, name)
    query = Query(
        engine.storage,
        coll,
        command.get("query") or {},
        sort=parse_sort(command.get("sort")),
        limit=1,
        hint=command.get("hint"),
    )
    return coll, query


def find_and_modify(engine: Services, ctx: CommandContext, db: str, command: dict) -> dict:
    """The findAndModify command."""
    name = collection_name(command, "findAndModify" if "findAndModify" in command else "findandmodify")
    storage = engine.storage
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
    if command.get("let") is not None:
        raise CommandError(238, "'let' is not supported by the embedded engine")
    filters = parse_array_filters(command.get("arrayFilters"))
    kind = kind_of(u) if u is not None else None
    project = projector(command.get("fields"), engine.helper)
    coll, query = find_and_modify_query(engine, db, command)
    found = next(query.documents(), None)
    result: dict | None
    if remove:
        if found is not None:
            assert coll is not None
            storage.delete(coll, found[0], found[2], found[1])
        result = found[2] if found is not None else None
        last_error: dict[str, Any] = {"n": 1 if found is not None else 0}
    elif found is not None:
        assert coll is not None
        rid, raw, old = found
        new = apply_update(old, u, query=q, array_filters=filters, is_insert=False)
        new_raw = _encode(new)
        if new_raw != raw:
            storage.replace(coll, rid, old, new, new_raw, old_raw=raw, replacement=kind == "replacement")
        result = new if return_new else old
        last_error = {"n": 1, "updatedExisting": True}
    elif upsert:
        new = _build_upsert(q, u, filters)
        storage.insert(storage.ensure_collection(db, name), new, _encode(new))
        result = new if return_new else None
        last_error = {"n": 1, "updatedExisting": False, "upserted": new["_id"]}
    else:
        result = None
        last_error = {"n": 0, "updatedExisting": False}
    if result is not None and project is not None:
        result = project(result)
    return {"lastErrorObject": last_error, "value": result, "ok": 1.0}
