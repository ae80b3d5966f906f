"""Query planning: which index (or _id lookup, union of index scans, collection scan) answers a filter.

The chosen stage yields a superset of the matching documents; unless the stage is exact (its key
intervals are the whole filter over fields that never held arrays) the filter is evaluated again on
every candidate, so a plan can make a query slower but never wrong.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bson import Decimal128, Int64

from . import keys
from .bounds import ALL, Interval, Predicate, intersect_all, predicates_for
from .errors import CommandError
from .matcher import compile_filter
from .plans import CollectionScan, IdLookup, IndexScan, Stage, Union
from .storage import Collection, Index, Storage

MAX_RANGES = 10_000
_NUMERIC = (int, float, Decimal128)


@dataclass
class Analysis:
    """The indexable predicates of a filter, by path."""

    predicates: dict[str, list[Predicate]] = field(default_factory=dict)
    conditions: dict[str, list[Any]] = field(default_factory=dict)  # as written in the filter, by path
    inexact: set[str] = field(default_factory=set)  # paths with a condition no exact predicate expresses
    uncaptured: bool = False  # a condition on no single path ($or, $expr, ...)
    ors: list[list[dict]] = field(default_factory=list)


def analyze(query: dict) -> Analysis:
    """Split a filter into per-path predicates (conditions under $and included)."""
    analysis = Analysis()
    _analyze_into(query, analysis)
    return analysis


def _analyze_into(query: dict, analysis: Analysis) -> None:
    for key, condition in query.items():
        if key == "$and" and isinstance(condition, list):
            for sub in condition:
                if isinstance(sub, dict):
                    _analyze_into(sub, analysis)
                else:
                    analysis.uncaptured = True
        elif key == "$or" and isinstance(condition, list) and condition:
            analysis.ors.append([b for b in condition if isinstance(b, dict)])
            analysis.uncaptured = True
        elif key == "$comment":
            continue
        elif key.startswith("$"):
            analysis.uncaptured = True
        else:
            found = predicates_for(key, condition)
            operators = (
                len([k for k in condition if k != "$options"])
                if isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition)
                else 1
            )
            analysis.conditions.setdefault(key, []).append(condition)
            if len(found) != operators or not all(p.exact for p in found):
                analysis.inexact.add(key)
            if found:
                analysis.predicates.setdefault(key, []).extend(found)


@dataclass
class Choice:
    """A chosen stage and whether it returns documents already in the requested sort order."""

    stage: Stage
    sorted: bool


@dataclass
class _Bounds:
    ranges: list[tuple[bytes | None, bytes | None]]
    intervals: list[list[Interval]]  # per index field (every key for fields without bounds)
    directions: list[int]
    fields: list[str]
    exact: bool
    single_points: int  # leading fields bound to exactly one value
    bounded: int  # leading fields with bounds (points, then at most one range)
    points: int  # leading fields bound to points


class _Candidate:
    """An index (None: the _id index) with its fields, as the planner sees it."""

    def __init__(self, index: Index | None) -> None:
        self.index = index
        if index is None:
            self.fields, self.directions, self.unique = ["_id"], [1], True
        else:
            self.fields, self.directions, self.unique = index.spec.fields, index.spec.directions, index.spec.unique

    def multikey(self, position: int) -> bool:
        return self.index is not None and self.index.is_multikey(position)


def _field_intervals(candidate: _Candidate, position: int, analysis: Analysis) -> tuple[list[Interval], bool] | None:
    """The intervals allowed on one index field and whether they capture every predicate on it exactly."""
    found = analysis.predicates.get(candidate.fields[position])
    if not found:
        return None
    if candidate.multikey(position):
        # Conditions on an array field may be met by different elements: use one of them only.
        chosen = next((p for p in found if p.points), found[0])
        return chosen.intervals, False
    intervals = found[0].intervals
    for predicate in found[1:]:
        intervals = intersect_all(intervals, predicate.intervals)
    return intervals, all(p.exact for p in found)


def _bounds(candidate: _Candidate, analysis: Analysis, full: bool = False) -> _Bounds | None:
    per_field: list[tuple[list[Interval], bool] | None] = [
        _field_intervals(candidate, i, analysis) for i in range(len(candidate.fields))
    ]
    points = 0
    while points < len(per_field) and per_field[points] is not None and all(i.is_point for i in per_field[points][0]):  # type: ignore[index]
        points += 1
    bounded = points
    if bounded < len(per_field) and per_field[bounded] is not None:
        bounded += 1
    if bounded == 0 and not full:
        return None
    used = per_field[:bounded]
    count = 1
    for entry in used:
        assert entry is not None
        count *= max(1, len(entry[0]))
    while count > MAX_RANGES and bounded > 1:
        dropped = per_field[bounded - 1]
        assert dropped is not None
        count //= max(1, len(dropped[0]))
        bounded -= 1
        points = min(points, bounded)
        used = per_field[:bounded]
    used_paths = {candidate.fields[i] for i in range(bounded)}
    exact = (
        not analysis.uncaptured
        and all(
            (path in used_paths and path not in analysis.inexact) or _implied_by_partial(candidate, path, analysis)
            for path in analysis.conditions
        )
        and all(entry is not None and entry[1] for entry in used)
    )
    ranges = _byte_ranges([entry[0] for entry in used if entry is not None], candidate.directions)
    shown = [entry[0] if i < bounded and entry is not None else [ALL] for i, entry in enumerate(per_field)]
    single = 0
    while single < points and len(per_field[single][0]) == 1:  # type: ignore[index]
        single += 1
    return _Bounds(ranges, shown, candidate.directions, candidate.fields, exact, single, bounded, points)


def _implied_by_partial(candidate: _Candidate, path: str, analysis: Analysis) -> bool:
    """Whether the index's partial filter makes the same condition on path, so its every entry meets it."""
    partial = candidate.index.spec.partial if candidate.index is not None else None
    if not partial or path not in partial:
        return False
    conditions = analysis.conditions[path]
    return len(conditions) == 1 and keys.encode(conditions[0]) == keys.encode(partial[path])


def _byte_ranges(fields: list[list[Interval]], directions: list[int]) -> list[tuple[bytes | None, bytes | None]]:
    if not fields:
        return [(None, None)]
    *prefix_fields, last = fields
    prefixes = [b""]
    for position, intervals in enumerate(prefix_fields):
        starts = [interval.byte_range(directions[position])[0] for interval in intervals]
        prefixes = [p + s for p in prefixes for s in sorted(starts)]
    direction = directions[len(prefix_fields)]
    last_ranges = sorted(interval.byte_range(direction) for interval in last)
    return [(p + start, p + end) for p in prefixes for start, end in last_ranges]


def _provides_sort(candidate: _Candidate, bounds: _Bounds, sort: list[tuple[str, int]]) -> int:
    """Scan direction (1 forward, -1 backward) giving the sort order from this index, 0 if none does."""
    fixed = set(candidate.fields[: bounds.single_points])
    wanted = [(path, direction) for path, direction in sort if path not in fixed]
    if not wanted:
        return 1
    start = bounds.single_points
    for scan in (1, -1):
        ok = True
        for offset, (path, direction) in enumerate(wanted):
            position = start + offset
            if position < len(candidate.fields):
                if (
                    candidate.fields[position] != path
                    or candidate.directions[position] * scan != direction
                    or candidate.multikey(position)
                ):
                    ok = False
                    break
            elif not (
                position == len(candidate.fields) and path == "_id" and direction == scan and offset == len(wanted) - 1
            ):
                ok = False  # the _id tie-break of index entries may end the sort, nothing else
                break
        if ok:
            return scan
    return 0


def _equivalents(value: Any) -> list[Any]:
    if isinstance(value, bool) or not isinstance(value, _NUMERIC):
        return [value]
    found: list[Any] = [value]
    number = value.to_decimal() if isinstance(value, Decimal128) else value
    try:
        if number == int(number) and -(1 << 63) <= int(number) < (1 << 63):
            found += [int(number), Int64(int(number))]
        found += [float(number), Decimal128(str(number))]
    except (ValueError, OverflowError, ArithmeticError):
        pass
    return found


def implies_partial(partial: dict, analysis: Analysis, test: Callable[[dict], bool] | None = None) -> bool:
    """Whether every document matching the analysed filter passes a partial index's filter.

    Conservative: the partial filter may only test paths the query fixes by equality (not to null);
    it must accept every combination of those values. Partial filters use any-element semantics on
    arrays, so a document holding such a value passes them too.
    """
    paths = list(partial)
    terms: dict[str, list[Any]] = {}
    for path in paths:
        equality = next((p for p in analysis.predicates.get(path, ()) if p.values is not None and not p.has_null), None)
        if equality is None or equality.values is None:
            return False  # (a path starting with "$" is never in the predicates either)
        terms[path] = [v for value in equality.values for v in _equivalents(value)]
    combinations = 1
    for path in paths:
        combinations *= max(1, len(terms[path]))
    if combinations > 1000:
        return False
    if test is None:
        try:
            test = compile_filter(partial)
        except CommandError:
            return False
    for combo in itertools.product(*(terms[path] for path in paths)):
        probe: dict[str, Any] = {}
        for path, value in zip(paths, combo, strict=True):
            if not _put(probe, path.split("."), value):
                return False
        try:
            if not test(probe):
                return False
        except CommandError:  # an expression the probe cannot answer: do not use the index
            return False
    return True


def _put(doc: dict[str, Any], parts: list[str], value: Any) -> bool:
    for part in parts[:-1]:
        node = doc.setdefault(part, {})
        if not isinstance(node, dict):
            return False
        doc = node
    if parts[-1] in doc:
        return False
    doc[parts[-1]] = value
    return True


def _excludes_null(bounds: _Bounds, candidate: _Candidate, analysis: Analysis) -> bool:
    """Whether the bounds rule out a null or missing value on some bounded field (needed by sparse indexes)."""
    for position in range(bounds.bounded):
        entry = _field_intervals(candidate, position, analysis)
        if entry is not None and not any(i.start <= keys.NULL_KEY < i.end for i in entry[0]):
            return True
    return False


def _usable(candidate: _Candidate, analysis: Analysis, bounds: _Bounds | None) -> bool:
    index = candidate.index
    if index is None:
        return True
    if index.spec.hidden:
        return False
    if index.spec.partial is not None and not implies_partial(index.spec.partial, analysis, index.maker.partial_test):
        return False
    # A sparse index leaves out documents without the fields: usable only if the query excludes those.
    return not index.spec.sparse or (bounds is not None and _excludes_null(bounds, candidate, analysis))


def _scan(coll: Collection, candidate: _Candidate, bounds: _Bounds, reverse: bool, query: dict) -> IndexScan:
    def texts() -> dict[str, list[str]]:
        return {
            path: [interval.text(direction) for interval in intervals]
            for path, direction, intervals in zip(bounds.fields, bounds.directions, bounds.intervals, strict=True)
        }

    return IndexScan(coll, candidate.index, bounds.ranges, texts, reverse, bounds.exact, query)


def _index_plan(
    coll: Collection, analysis: Analysis, query: dict, sort: list[tuple[str, int]]
) -> tuple[Stage, bool] | None:
    ids = analysis.predicates.get("_id")
    if ids and not any(len(p.intervals) != 1 or not p.intervals[0].is_point for p in ids[:1]):
        id_intervals = ids[0].intervals
        for other in ids[1:]:
            id_intervals = intersect_all(id_intervals, other.intervals)
        exact = not analysis.uncaptured and set(analysis.conditions) == {"_id"} and "_id" not in analysis.inexact
        return IdLookup(coll, [i.lo for i in id_intervals], exact), True
    best: tuple[tuple, Stage, bool] | None = None
    for position, index in enumerate([None, *coll.indexes]):
        leading = "_id" if index is None else index.spec.key[0][0]
        if leading not in analysis.predicates:
            continue  # an index serves a filter only through its leading field
        candidate = _Candidate(index)
        bounds = _bounds(candidate, analysis)
        if bounds is None or not _usable(candidate, analysis, bounds):
            continue
        direction = _provides_sort(candidate, bounds, sort) if sort else 1
        full_unique = candidate.unique and bounds.single_points == len(candidate.fields)
        score = (
            full_unique,
            bounds.bounded,
            bounds.points,
            direction != 0,
            bounds.exact,
            -len(candidate.fields),
            -position,
        )
        if best is None or score > best[0]:
            best = (score, _scan(coll, candidate, bounds, direction < 0, query), direction != 0 or not sort)
    if best is None:
        return None
    return best[1], best[2]


def _hinted(coll: Collection, hint: Any) -> _Candidate | None:
    if isinstance(hint, str):
        if hint == "_id_":
            return _Candidate(None)
        index = coll.index(hint)
    elif isinstance(hint, dict):
        pattern = list(hint.items())
        if pattern == [("_id", 1)]:
            return _Candidate(None)
        index = next((i for i in coll.indexes if i.spec.key == pattern), None)
    else:
        raise CommandError(2, "hint must be a string or an object")
    if index is None:
        raise CommandError(
            2,
            "error processing query: planner returned error :: caused by :: hint provided "
            "does not correspond to an existing index",
        )
    return _Candidate(index)


def choose(
    storage: Storage,
    coll: Collection | None,
    query: dict,
    sort: list[tuple[str, int]],
    hint: Any = None,
    analysis: Analysis | None = None,
) -> Choice:
    """The stage answering a filter on a collection, and whether its order is the requested sort."""
    if coll is None:
        return Choice(CollectionScan(None, query), True)
    analysis = analysis if analysis is not None else analyze(query)
    natural = [direction for path, direction in sort if path == "$natural"]
    if isinstance(hint, dict) and "$natural" in hint:
        natural = [hint["$natural"]]
    if natural:
        return Choice(CollectionScan(coll, query, natural[0] < 0), len(sort) <= 1)
    if hint is not None and hint != {}:
        candidate = _hinted(coll, hint)
        assert candidate is not None
        index = candidate.index
        if index is not None and index.spec.partial is not None and not implies_partial(index.spec.partial, analysis):
            raise CommandError(
                2,
                f"error processing query: planner returned error :: caused by :: hint "
                f"provided does not correspond to an existing index ({index.name} is partial "
                "and the query does not imply its filter)",
            )
        bounds = _bounds(candidate, analysis, full=True)
        assert bounds is not None
        direction = _provides_sort(candidate, bounds, sort) if sort else 1
        return Choice(_scan(coll, candidate, bounds, direction < 0, query), direction != 0 or not sort)
    planned = _index_plan(coll, analysis, query, sort)
    if planned is not None:
        return Choice(*planned)
    if analysis.ors:
        union = _union(storage, coll, analysis.ors[0], query)
        if union is not None:
            return Choice(union, not sort)
    if sort:
        for index in [None, *coll.indexes]:
            candidate = _Candidate(index)
            if index is not None and (index.spec.sparse or not _usable(candidate, analysis, None)):
                continue
            bounds = _bounds(candidate, analysis, full=True)
            assert bounds is not None
            direction = _provides_sort(candidate, bounds, sort)
            if direction:
                return Choice(_scan(coll, candidate, bounds, direction < 0, query), True)
    return Choice(CollectionScan(coll, query), not sort)


def _union(storage: Storage, coll: Collection, branches: list[dict], query: dict) -> Stage | None:
    children: list[Stage] = []
    for branch in branches:
        analysis = analyze(branch)
        planned = _index_plan(coll, analysis, branch, [])
        if planned is None:
            if analysis.ors and not analysis.predicates:
                nested = _union(storage, coll, analysis.ors[0], branch)
                if nested is None:
                    return None
                children.append(nested)
                continue
            return None
        children.append(planned[0])
    return Union(children, query)
