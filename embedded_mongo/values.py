"""BSON value semantics: MongoDB's comparison order and equality for Python values."""

from __future__ import annotations

import datetime
import decimal
import math
import re
from typing import Any

from bson import Binary, Code, DBRef, Decimal128, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.datetime_ms import DatetimeMS


class _Missing:
    """The absence of a field, which indexes and sorts like null."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


class _EmptyArray:
    """An empty array as an index or sort key (MongoDB calls it `undefined`)."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = _EmptyArray()

# Canonical type ranks from MongoDB's BSON comparison order.
_MINKEY, _UNDEFINED, _NULL, _NUMBER, _STRING, _OBJECT, _ARRAY = 0, 1, 2, 3, 4, 5, 6
_BINARY, _OBJECTID, _BOOL, _DATE, _TIMESTAMP, _REGEX, _CODE, _MAXKEY = 7, 8, 9, 10, 11, 12, 13, 14


def sort_key(value: Any) -> tuple:
    """An orderable, hashable key: equal keys mean equal in MongoDB, order is BSON order."""
    if value is None or value is MISSING:
        return (_NULL,)
    if isinstance(value, bool):
        return (_BOOL, value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return (_NUMBER, 0, 0)
        return (_NUMBER, 1, value)
    if isinstance(value, Decimal128):
        dec = value.to_decimal()
        if dec.is_nan():
            return (_NUMBER, 0, 0)
        return (_NUMBER, 1, dec if dec.is_finite() else float(dec))
    if isinstance(value, str):
        return (_STRING, value)
    if isinstance(value, dict):
        if isinstance(value, DBRef):
            value = value.as_doc()
        keys = ((k, sort_key(v)) for k, v in value.items())
        return (_OBJECT, tuple((key[0], k, key) for k, key in keys))
    if isinstance(value, (list, tuple)):
        return (_ARRAY, tuple(sort_key(v) for v in value))
    if isinstance(value, ObjectId):
        return (_OBJECTID, value.binary)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return (_DATE, value, 0)
    if isinstance(value, DatetimeMS):
        # Only dates outside Python's datetime range are decoded as DatetimeMS.
        millis = int(value)
        return (_DATE, datetime.datetime.min if millis < 0 else datetime.datetime.max, millis)
    if isinstance(value, bytes):
        subtype = value.subtype if isinstance(value, Binary) else 0
        return (_BINARY, len(value), subtype, bytes(value))
    if isinstance(value, Timestamp):
        return (_TIMESTAMP, value.time, value.inc)
    if isinstance(value, Regex):
        return (_REGEX, value.pattern, value.flags)
    if isinstance(value, re.Pattern):
        return (_REGEX, value.pattern, value.flags)
    if isinstance(value, DBRef):
        return sort_key(value.as_doc())
    if isinstance(value, Code):
        return (_CODE, str(value))
    if isinstance(value, MinKey):
        return (_MINKEY,)
    if isinstance(value, MaxKey):
        return (_MAXKEY,)
    if value is UNDEFINED:
        return (_UNDEFINED,)
    if isinstance(value, decimal.Decimal):
        return (_NUMBER, 1, value)
    if isinstance(value, datetime.date):
        return (_DATE, datetime.datetime(value.year, value.month, value.day), 0)
    return (_MAXKEY, repr(value))


def values_equal(a: Any, b: Any) -> bool:
    """MongoDB equality: type-aware (true != 1) and field-order-sensitive for documents."""
    return sort_key(a) == sort_key(b)


def field_sort_key(doc: dict, path: str, descending: bool) -> tuple:
    """Sort key of a document by a path: arrays sort by their min (ascending) or max element."""
    values = path_values(doc, path.split("."))
    keys: list[tuple] = []
    for value in values:
        if isinstance(value, list) and value:
            keys.extend(sort_key(v) for v in value)
        elif isinstance(value, list):
            keys.append((_UNDEFINED,))
        else:
            keys.append(sort_key(value))
    if not keys:
        return (_NULL,)
    return max(keys) if descending else min(keys)


def path_values(node: Any, parts: list[str]) -> list[Any]:
    """Values found at a dotted path, traversing arrays of sub-documents (MISSING if none)."""
    if not parts:
        return [node]
    head, rest = parts[0], parts[1:]
    if isinstance(node, dict):
        if head in node:
            return path_values(node[head], rest)
        return [MISSING]
    if isinstance(node, list):
        out: list[Any] = []
        if head.isdigit() and int(head) < len(node):
            out.extend(path_values(node[int(head)], rest))
        for element in node:
            if isinstance(element, dict):
                out.extend(path_values(element, parts))
        return out or [MISSING]
    return [MISSING]


def sort_documents(docs: list[dict], sort: list[tuple[str, int]]) -> list[dict]:
    """Sort documents by a MongoDB sort specification (stable, like the server)."""
    for path, direction in reversed(sort):
        if path == "$natural":
            if direction < 0:
                docs = list(reversed(docs))
            continue
        descending = direction < 0
        docs = sorted(docs, key=lambda d: field_sort_key(d, path, descending), reverse=descending)
    return docs


def format_value(value: Any) -> str:
    """Render a value the way MongoDB prints it in error messages."""
    if value is None or value is MISSING:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, ObjectId):
        return f"ObjectId('{value}')"
    if isinstance(value, datetime.datetime):
        return f"new Date({int(value.replace(tzinfo=datetime.UTC).timestamp() * 1000)})"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[ " + ", ".join(format_value(v) for v in value) + " ]"
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, (Regex, re.Pattern)):
        pattern = value.pattern if isinstance(value.pattern, str) else repr(value.pattern)
        flags = (
            value.flags
            if isinstance(value.flags, str)
            else "".join(
                letter for letter, bit in (("i", re.I), ("m", re.M), ("s", re.S), ("x", re.X)) if value.flags & bit
            )
        )
        return f"/{pattern}/{flags}"
    if isinstance(value, float):
        return "inf.0" if value == math.inf else "-inf.0" if value == -math.inf else repr(value)
    return str(value)
