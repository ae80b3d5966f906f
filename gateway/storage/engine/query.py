"""Query execution: candidate selection through indexes, filtering, sorting and projection."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bson import Regex
from mongomock.filtering import filter_applies

from .errors import CommandError, translate
from .store import Store, id_key
from .values import sort_documents

Projector = Callable[[dict], dict]


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
        if direction not in (1, -1) or isinstance(direction, bool):
            raise CommandError(
                2,
                f"$sort key ordering must be 1 (for ascending) or -1 (for descending), found {direction!r} for {path}",
            )
        pairs.append((path, int(direction)))
    return pairs


def find(
    store: Store, db: str, coll: str, query: Any, *, sort: list[tuple[str, int]] = (), skip: int = 0, limit: int = 0
) -> list[dict]:
    """Stored documents matching a filter, sorted, skipped and limited (read-only references)."""
    if query is None:
        query = {}
    if not isinstance(query, dict):
        raise CommandError(2, "query filter must be an object")
    docs = candidates(store, db, coll, query)
    stop = skip + limit if limit and not sort else 0
    matched: list[dict] = []
    try:
        if not query:
            matched = docs[:stop] if stop else list(docs)
        else:
            for doc in docs:
                if filter_applies(query, doc):
                    matched.append(doc)
                    if stop and len(matched) >= stop:
                        break
            if not docs:
                filter_applies(query, {})  # still reject invalid filters on empty collections
        if sort:
            matched = sort_documents(matched, list(sort))
    except CommandError:
        raise
    except Exception as exc:  # mongomock raises several types for invalid queries
        raise translate(exc) from exc
    if skip:
        matched = matched[skip:]
    if limit:
        matched = matched[:limit]
    return matched


def candidates(store: Store, db: str, coll: str, query: dict) -> list[dict]:
    """Documents that may match: found through _id or an index when the filter allows it."""
    terms: dict[str, list[Any]] = {}
    for path, values in equality_terms(query):
        terms.setdefault(path, values)  # any one of repeated terms (from $and) restricts enough
    if "_id" in terms:
        found = (store.get(db, coll, id_key(v)) for v in terms["_id"])
        return list({id(d): d for d in found if d is not None}.values())
    ids = store.indexes(db, coll).lookup(terms) if terms else None
    if ids is None:
        return store.documents(db, coll)
    found = (store.get(db, coll, key) for key in ids)
    return [d for d in found if d is not None]


def equality_terms(query: dict) -> list[tuple[str, list[Any]]]:
    """(path, values) pairs such that every match has path equal to one of the values."""
    terms: list[tuple[str, list[Any]]] = []
    for key, value in query.items():
        if key == "$and" and isinstance(value, list):
            for sub in value:
                if isinstance(sub, dict):
                    terms.extend(equality_terms(sub))
            continue
        if key.startswith("$"):
            continue
        values = _equality_values(value)
        if values is not None:
            terms.append((key, values))
    terms.sort(key=lambda term: term[0] != "_id")
    return terms


def _equality_values(value: Any) -> list[Any] | None:
    if isinstance(value, dict):
        if set(value) == {"$eq"} and _indexable(value["$eq"]):
            return [value["$eq"]]
        if set(value) == {"$in"} and isinstance(value["$in"], list):
            if all(_indexable(v) for v in value["$in"]):
                return list(value["$in"])
        return None
    return [value] if _indexable(value) else None


def _indexable(value: Any) -> bool:
    # Documents, arrays, null and regexes have matching rules an equality lookup cannot honour.
    return value is not None and not isinstance(value, (dict, list, Regex, re.Pattern))


def projector(store: Store, db: str, coll: str, projection: Any) -> Projector | None:
    """A function applying a find projection to a document, or None for whole documents."""
    if projection is None or projection == {}:
        return None
    if not isinstance(projection, dict):
        raise CommandError(2, "projection must be an object")
    for path, spec in projection.items():
        if isinstance(spec, str) or path.endswith(".$"):
            raise CommandError(238, f"projection {path!r}: {spec!r} is not supported by the embedded engine")
    # mongomock's projection logic only exists as a method of its Collection class.
    helper = store.mongomock_database(db).get_collection(coll)

    def project(doc: dict) -> dict:
        try:
            return helper._copy_only_fields(doc, dict(projection), dict)
        except Exception as exc:  # invalid projections surface as client errors
            raise translate(exc) from exc

    project(dict(_id=None))
    return project
