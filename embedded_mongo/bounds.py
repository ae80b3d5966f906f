"""Index bounds: the key intervals a query predicate allows on one field, and their byte ranges.

An interval is kept in value order with symbolic endpoints, so it can be turned into a byte range
of the ascending encoding or of the inverted (descending) one, intersected with another interval,
and shown in `explain` the way MongoDB prints bounds.
"""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass
from typing import Any

from bson import Decimal128, MaxKey, MinKey, ObjectId, Regex

from . import keys
from .values import format_value

INCLUSIVE, EXCLUSIVE, PREFIX = 0, 1, 2

_RANGE_OPERATORS = {"$gt", "$gte", "$lt", "$lte"}
_BRACKET_TEXT = {
    keys.NUMBER: ("-inf.0", "inf.0"),
    keys.STRING: ('""', "{}"),
    keys.OBJECT: ("{}", "[]"),
    keys.DATE: ("new Date(-9223372036854775808)", "new Date(9223372036854775807)"),
    keys.OBJECTID: ("ObjectId('000000000000000000000000')", "ObjectId('ffffffffffffffffffffffff')"),
    keys.BOOL: ("false", "true"),
    keys.TIMESTAMP: ("Timestamp(0, 0)", "Timestamp(4294967295, 4294967295)"),
    keys.BINARY: ("BinData(0, )", "ObjectId('000000000000000000000000')"),
}
# Type brackets whose upper end explain prints as the next type's smallest value, exclusive.
_OPEN_BRACKET_ENDS = {keys.STRING, keys.OBJECT, keys.BINARY}
_NEG_INF = keys.encode(float("-inf"))
_POS_INF = keys.encode(float("inf"))


class Shown:
    """A bound's value, formatted the way explain prints it only when explain asks."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __str__(self) -> str:
        return format_value(self.value)


class Interval:
    """Allowed key values of one field: lo..hi in value order (PREFIX: every key starting with the bytes).

    `start` and `end` are its inclusive and exclusive byte bounds in the ascending encoding.
    """

    __slots__ = ("end", "hi", "hi_kind", "hi_shown_open", "hi_text", "lo", "lo_kind", "lo_text", "start")

    def __init__(
        self,
        lo: bytes,
        lo_kind: int,
        hi: bytes,
        hi_kind: int,
        lo_text: str | Shown,
        hi_text: str | Shown,
        hi_shown_open: bool = False,
    ) -> None:
        self.lo, self.lo_kind, self.hi, self.hi_kind = lo, lo_kind, hi, hi_kind
        self.lo_text, self.hi_text = lo_text, hi_text
        self.hi_shown_open = hi_shown_open  # how explain prints the upper end of a type bracket or a prefix
        self.start = lo if lo_kind != EXCLUSIVE else _succ(lo)
        self.end = hi if hi_kind == EXCLUSIVE else _succ(hi)

    def __repr__(self) -> str:
        return f"Interval({self.text()})"

    def byte_range(self, direction: int) -> tuple[bytes, bytes]:
        """[start, end) over the field's encoding for an ascending (1) or descending (-1) index field."""
        if direction > 0:
            return self.start, self.end
        hi, lo = keys.invert(self.hi), keys.invert(self.lo)
        start = _succ(hi) if self.hi_kind == EXCLUSIVE else hi
        end = lo if self.lo_kind == EXCLUSIVE else _succ(lo)
        return start, end

    @property
    def is_point(self) -> bool:
        """Whether exactly one key value is allowed."""
        return self.lo == self.hi and self.lo_kind == self.hi_kind == INCLUSIVE

    def intersect(self, other: Interval) -> Interval | None:
        """The keys allowed by both, or None if none are."""
        lo_side = self if self.start >= other.start else other
        hi_side = self if self.end <= other.end else other
        if lo_side.start >= hi_side.end:
            return None
        return Interval(
            lo_side.lo,
            lo_side.lo_kind,
            hi_side.hi,
            hi_side.hi_kind,
            lo_side.lo_text,
            hi_side.hi_text,
            hi_side.hi_shown_open,
        )

    def text(self, direction: int = 1) -> str:
        """The interval as explain prints it, e.g. '(5, inf.0]'."""
        open_lo = "(" if self.lo_kind == EXCLUSIVE else "["
        close_hi = ")" if self.hi_kind == EXCLUSIVE or self.hi_shown_open else "]"
        if direction > 0:
            return f"{open_lo}{self.lo_text}, {self.hi_text}{close_hi}"
        return f"{'(' if close_hi == ')' else '['}{self.hi_text}, {self.lo_text}{')' if open_lo == '(' else ']'}"


def _succ(data: bytes) -> bytes:
    following = keys.successor(data)
    assert following is not None  # encodings start with a type byte below 0xFF
    return following


def point(value: Any) -> Interval:
    """Exactly one value."""
    encoded = keys.encode(value)
    shown = Shown(value)
    return Interval(encoded, INCLUSIVE, encoded, INCLUSIVE, shown, shown)


ALL = Interval(keys.MINKEY_KEY, PREFIX, keys.MAXKEY_KEY, PREFIX, "MinKey", "MaxKey")


def prefix_interval(prefix: str) -> Interval:
    """Every string starting with prefix."""
    encoded = bytes([keys.STRING]) + prefix.encode("utf-8", "surrogatepass").replace(b"\x00", b"\x00\xff")
    following = prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else ""
    return Interval(
        encoded, PREFIX, encoded, PREFIX, format_value(prefix), format_value(following) if prefix else "{}", True
    )


@dataclass(slots=True)
class Predicate:
    """What one condition of a filter says about one path."""

    path: str
    intervals: list[Interval]
    exact: bool  # matching the intervals is the whole condition for a field that never holds arrays
    points: bool
    values: list[Any] | None = None  # equality values, for partial-index implication
    has_null: bool = False

    @property
    def empty(self) -> bool:
        """Whether nothing can match."""
        return not self.intervals


def _range_bracket(rank: int) -> tuple[bytes, int, bytes, int, int] | None:
    """(lo, lo_kind, hi, hi_kind, class) of the type bracket a comparison with a value of this class stays within."""
    if rank == keys.NUMBER:
        return _NEG_INF, INCLUSIVE, _POS_INF, INCLUSIVE, rank
    if rank in (keys.STRING, keys.DATE, keys.OBJECTID, keys.BOOL, keys.TIMESTAMP, keys.BINARY, keys.OBJECT):
        prefix = bytes([rank])
        return prefix, PREFIX, prefix, PREFIX, rank
    return None


def _is_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, Decimal128):
        return value.to_decimal().is_nan()
    return False


def range_interval(operator: str, value: Any) -> list[Interval] | None:
    """Intervals of a $gt/$gte/$lt/$lte condition (type-bracketed, as MongoDB compares); None: not indexable."""
    if _is_nan(value):
        return [point(value)] if operator in ("$gte", "$lte") else []
    encoded = keys.encode(value)
    bracket = _range_bracket(encoded[0])
    if bracket is None:
        return None
    lo, lo_kind, hi, hi_kind, rank = bracket
    lo_text, hi_text = _BRACKET_TEXT.get(rank, ("MinKey", "MaxKey"))
    shown = Shown(value)
    if operator in ("$gt", "$gte"):
        return [
            Interval(
                encoded,
                EXCLUSIVE if operator == "$gt" else INCLUSIVE,
                hi,
                hi_kind,
                shown,
                hi_text,
                rank in _OPEN_BRACKET_ENDS,
            )
        ]
    return [Interval(lo, lo_kind, encoded, EXCLUSIVE if operator == "$lt" else INCLUSIVE, lo_text, shown)]


def regex_prefix(pattern: str, flags: str) -> str | None:
    """The literal prefix every match of an anchored, case-sensitive regex starts with (None if none)."""
    if any(flag in flags for flag in "imx") or "|" in pattern:
        return None
    if pattern.startswith("^"):
        position = 1
    elif pattern.startswith("\\A"):
        position = 2
    else:
        return None
    literal: list[str] = []
    while position < len(pattern):
        char = pattern[position]
        if char in ".[]()*+?{}^$\\":
            if char in "*?{" and literal:
                literal.pop()  # the previous character is optional or repeated
            break
        literal.append(char)
        position += 1
    return "".join(literal) or None


def _regex_intervals(value: Regex | re.Pattern) -> list[Interval] | None:
    pattern = value.pattern if isinstance(value.pattern, str) else None
    if pattern is None:
        return None
    prefix = regex_prefix(pattern, keys.regex_flags(value.flags))
    if prefix is None:
        return None
    return [prefix_interval(prefix), point(value)]


def _is_regex(value: Any) -> bool:
    return isinstance(value, (Regex, re.Pattern))


_SCALAR_EXACT = (str, int, float, bool, ObjectId, datetime.datetime, type(None), Decimal128, MinKey, MaxKey)


def predicates_for(path: str, condition: Any) -> list[Predicate]:
    """The indexable predicates of one `path: condition` pair of a filter (others are left to the filter)."""
    if isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition):
        return _operator_predicates(path, condition)
    return _equality(path, condition, exact_ok=True)


def _equality(path: str, value: Any, exact_ok: bool) -> list[Predicate]:
    if isinstance(value, list):
        return []  # matches the array itself or an element equal to it: left to the filter
    if _is_regex(value):
        intervals = _regex_intervals(value)
        return [Predicate(path, intervals, False, False)] if intervals is not None else []
    exact = exact_ok and isinstance(value, (*_SCALAR_EXACT, dict)) and not _is_nan(value)
    return [Predicate(path, [point(value)], exact, True, [value], value is None)]


def _operator_predicates(path: str, condition: dict) -> list[Predicate]:
    found: list[Predicate] = []
    options = condition.get("$options", "")
    for operator, argument in condition.items():
        if operator == "$eq":
            if _is_regex(argument):
                found.append(Predicate(path, [point(argument)], False, True, [argument]))
            elif not isinstance(argument, list):
                found.extend(_equality(path, argument, exact_ok=True))
        elif operator == "$in" and isinstance(argument, list):
            predicate = _in(path, argument)
            if predicate is not None:
                found.append(predicate)
        elif operator in _RANGE_OPERATORS:
            if isinstance(argument, list) or _is_regex(argument):
                continue
            intervals = range_interval(operator, argument)
            if intervals is not None:
                found.append(Predicate(path, intervals, True, False))
        elif operator == "$regex" and isinstance(argument, (str, Regex)) and isinstance(options, str):
            pattern = argument if isinstance(argument, str) else argument.pattern
            flags = options + (keys.regex_flags(argument.flags) if isinstance(argument, Regex) else "")
            prefix = regex_prefix(pattern, flags) if isinstance(pattern, str) else None
            if prefix is not None:
                found.append(Predicate(path, [prefix_interval(prefix)], False, False))
        elif operator == "$all" and isinstance(argument, list) and argument:
            first = argument[0]
            if not isinstance(first, dict) and not isinstance(first, list):
                found.extend(_equality(path, first, exact_ok=False))
    return found


def _in(path: str, values: list) -> Predicate | None:
    intervals: list[Interval] = []
    exact = True
    plain: list[Any] = []
    for value in values:
        if _is_regex(value):
            regex = _regex_intervals(value)
            if regex is None:
                return None
            intervals.extend(regex)
            exact = False
        elif isinstance(value, list):
            return None
        else:
            intervals.append(point(value))
            plain.append(value)
            exact = exact and isinstance(value, (*_SCALAR_EXACT, dict)) and not _is_nan(value)
    merged = merge(intervals)
    has_null = any(value is None for value in plain)
    return Predicate(
        path, merged, exact, all(i.is_point for i in merged), plain if len(plain) == len(values) else None, has_null
    )


def merge(intervals: list[Interval]) -> list[Interval]:
    """Sorted, non-overlapping intervals covering the same keys."""
    ordered = sorted(intervals, key=lambda i: (i.start, i.end))
    merged: list[Interval] = []
    for interval in ordered:
        if merged and interval.start <= merged[-1].end:
            last = merged[-1]
            if interval.end > last.end:
                merged[-1] = Interval(
                    last.lo,
                    last.lo_kind,
                    interval.hi,
                    interval.hi_kind,
                    last.lo_text,
                    interval.hi_text,
                    interval.hi_shown_open,
                )
            continue
        merged.append(interval)
    return merged


def intersect_all(first: list[Interval], second: list[Interval]) -> list[Interval]:
    """Keys allowed by both interval lists."""
    found = [a.intersect(b) for a in first for b in second]
    return merge([i for i in found if i is not None])
