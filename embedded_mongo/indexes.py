"""Secondary index definitions and the keys MongoDB derives from a document for each of them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from . import keys
from .errors import CommandError
from .matcher import compile_filter
from .values import MISSING, UNDEFINED, format_value, path_values

ID_INDEX_NAME = "_id_"
_KNOWN_OPTIONS = {
    "key",
    "name",
    "unique",
    "sparse",
    "partialFilterExpression",
    "v",
    "ns",
    "background",
    "expireAfterSeconds",
    "hidden",
}
_UNSUPPORTED_OPTIONS = {
    "collation",
    "weights",
    "default_language",
    "language_override",
    "textIndexVersion",
    "2dsphereIndexVersion",
    "bits",
    "min",
    "max",
    "bucketSize",
    "wildcardProjection",
    "storageEngine",
    "clustered",
}


@dataclass
class IndexSpec:
    """One index definition as given to createIndexes."""

    name: str
    key: list[tuple[str, Any]]
    unique: bool = False
    sparse: bool = False
    partial: dict | None = None
    expire_after: float | None = None
    hidden: bool = False
    options: dict = field(default_factory=dict)

    @classmethod
    def from_document(cls, doc: dict) -> IndexSpec:
        """Validate and parse a createIndexes entry."""
        key = doc.get("key")
        if not isinstance(key, dict) or not key:
            raise CommandError(67, "index key pattern must be a non-empty object")
        for path, direction in key.items():
            if not isinstance(path, str) or not path or path.startswith("$") or path.endswith(".$**"):
                if path == "$**" or (isinstance(path, str) and path.endswith(".$**")):
                    raise CommandError(67, "wildcard indexes are not supported by the embedded engine")
                raise CommandError(67, f"bad index key pattern field: {path!r}")
            if isinstance(direction, str):
                raise CommandError(
                    67,
                    f"{direction!r} indexes are not supported by the embedded engine "
                    "(only ascending and descending keys)",
                )
            if isinstance(direction, bool) or not isinstance(direction, (int, float)) or direction == 0:
                raise CommandError(
                    67,
                    f"Values in the index key pattern can only be positive or negative "
                    f"numbers, found {path}: {format_value(direction)}",
                )
        name = doc.get("name") or "_".join(f"{k}_{v}" for k, v in key.items())
        if not isinstance(name, str):
            raise CommandError(67, "index name must be a string")
        for option in doc:
            if option in _UNSUPPORTED_OPTIONS:
                raise CommandError(
                    238 if option == "collation" else 67,
                    f"index option '{option}' is not supported by the embedded engine",
                )
            if option not in _KNOWN_OPTIONS:
                raise CommandError(
                    197,
                    f"The field '{option}' is not valid for an index specification. Specification: {format_value(doc)}",
                )
        partial = doc.get("partialFilterExpression")
        if partial is not None:
            if not isinstance(partial, dict):
                raise CommandError(67, "partialFilterExpression must be an object")
            if doc.get("sparse"):
                raise CommandError(67, 'cannot mix "partialFilterExpression" and "sparse" options')
            try:
                compile_filter(partial)
            except CommandError as exc:  # reject it now rather than on every later write
                raise CommandError(67, f"invalid partialFilterExpression: {exc.message}") from exc
        expire = doc.get("expireAfterSeconds")
        if expire is not None:
            if isinstance(expire, bool) or not isinstance(expire, (int, float)) or expire < 0:
                raise CommandError(67, "TTL index 'expireAfterSeconds' option must be a non-negative number")
            if len(key) != 1:
                raise CommandError(67, "TTL indexes are single-field indexes, compound indexes do not support TTL")
        options = {k: v for k, v in doc.items() if k == "background"}
        return cls(
            name=name,
            key=list(key.items()),
            unique=bool(doc.get("unique")),
            sparse=bool(doc.get("sparse")),
            partial=partial,
            expire_after=float(expire) if expire is not None else None,
            hidden=bool(doc.get("hidden")),
            options=options,
        )

    def to_document(self) -> dict:
        """The definition as listIndexes reports it."""
        doc: dict[str, Any] = {"v": 2, "key": dict(self.key), "name": self.name}
        if self.unique:
            doc["unique"] = True
        if self.sparse:
            doc["sparse"] = True
        if self.partial is not None:
            doc["partialFilterExpression"] = self.partial
        if self.expire_after is not None:
            doc["expireAfterSeconds"] = int(self.expire_after) if self.expire_after.is_integer() else self.expire_after
        if self.hidden:
            doc["hidden"] = True
        doc.update(self.options)
        return doc

    def same_definition(self, other: IndexSpec) -> bool:
        """Whether two specs describe the same index (so re-creating it is a no-op)."""
        return (self.key, self.unique, self.sparse, self.partial, self.expire_after) == (
            other.key,
            other.unique,
            other.sparse,
            other.partial,
            other.expire_after,
        )

    @property
    def fields(self) -> list[str]:
        """The indexed paths, in key order."""
        return [path for path, _ in self.key]

    @property
    def directions(self) -> list[int]:
        """1 or -1 for each indexed path."""
        return [1 if direction > 0 else -1 for _, direction in self.key]


@dataclass
class DocumentKeys:
    """The index keys of one document: encoded key -> the raw values it was made of."""

    entries: dict[bytes, tuple]
    multikey: int  # bit i set: field i of the key pattern went through an array


class KeyMaker:
    """Computes the index keys of documents for one index definition."""

    def __init__(self, spec: IndexSpec, namespace: str) -> None:
        self.spec = spec
        self.namespace = namespace
        self._parts = [path.split(".") for path in spec.fields]
        self._directions = spec.directions
        self._simple = (
            spec.fields[0] if len(spec.fields) == 1 and "." not in spec.fields[0] and spec.partial is None else None
        )
        self._partial = compile_filter(spec.partial) if spec.partial is not None else None
        # The top-level fields the keys depend on (None: any field may matter).
        self.depends_on: set[str] | None = {path.split(".")[0] for path in spec.fields}
        if spec.partial is not None:
            paths = _filter_paths(spec.partial)
            self.depends_on = None if paths is None else self.depends_on | paths

    def partial_test(self, doc: dict) -> bool:
        """Whether a document passes the partial filter (True without one)."""
        return self._partial is None or self._partial(doc)

    def keys(self, doc: dict) -> DocumentKeys | None:
        """The document's keys, or None when the index leaves it out (sparse or partial)."""
        simple = self._simple
        if simple is not None:
            value = doc.get(simple, MISSING)
            if not isinstance(value, list):
                if value is MISSING and self.spec.sparse:
                    return None
                encoded = keys.encode(value)
                if self._directions[0] < 0:
                    encoded = keys.invert(encoded)
                return DocumentKeys({encoded: (value,)}, 0)
        spec = self.spec
        if self._partial is not None and not self._partial(doc):
            return None
        plain = self._plain_values(doc)
        if plain is not None:
            if spec.sparse and all(v is MISSING for v in plain):
                return None
            return DocumentKeys({keys.encode_compound(plain, self._directions): tuple(plain)}, 0)
        per_field: list[list[Any]] = []
        array_fields: list[str] = []
        mask = 0
        for position, (path, parts) in enumerate(zip(spec.fields, self._parts, strict=True)):
            values, through_array = _key_values(doc, parts)
            per_field.append(values)
            if through_array:
                array_fields.append(path)
                mask |= 1 << position
        if spec.sparse and all(v == [MISSING] for v in per_field):
            return None
        if len(array_fields) > 1 and not _share_array(array_fields):
            fields_text = " ".join(f"[{f}]" for f in array_fields)
            raise CommandError(171, f"cannot index parallel arrays {fields_text}")
        entries: dict[bytes, tuple] = {}
        directions = self._directions
        for combo in itertools.product(*per_field):
            entries.setdefault(keys.encode_compound(combo, directions), combo)
        return DocumentKeys(entries, mask)

    def _plain_values(self, doc: dict) -> list[Any] | None:
        """The indexed values when no array is involved (one key), else None."""
        values = []
        for parts in self._parts:
            node: Any = doc
            for part in parts:
                if type(node) is not dict:
                    if type(node) is list:
                        return None
                    node = MISSING
                    break
                node = node.get(part, MISSING)
            if type(node) is list:
                return None
            values.append(node)
        return values

    def duplicate_error(self, raw: tuple) -> CommandError:
        """The E11000 error MongoDB reports for a duplicate key."""
        key_value = {
            path: (None if v is MISSING or v is UNDEFINED else v) for path, v in zip(self.spec.fields, raw, strict=True)
        }
        shown = ", ".join(f"{path}: {format_value(v)}" for path, v in key_value.items())
        message = (
            f"E11000 duplicate key error collection: {self.namespace} index: {self.spec.name} dup key: {{ {shown} }}"
        )
        return CommandError(11000, message, keyPattern=dict(self.spec.key), keyValue=key_value)


def _filter_paths(query: Any) -> set[str] | None:
    """Top-level fields a filter reads, or None when that cannot be told (e.g. $expr)."""
    if not isinstance(query, dict):
        return None
    found: set[str] = set()
    for key, value in query.items():
        if key in ("$and", "$or", "$nor"):
            if not isinstance(value, list):
                return None
            for branch in value:
                inner = _filter_paths(branch)
                if inner is None:
                    return None
                found |= inner
        elif key.startswith("$"):
            return None
        else:
            found.add(key.split(".")[0])
    return found


def _key_values(doc: dict, parts: list[str]) -> tuple[list[Any], bool]:
    """One key value per array element on the path (multikey), and whether an array was crossed."""
    raw = path_values(doc, parts)
    through_array = len(raw) > 1 or _crosses_array(doc, parts)
    values: list[Any] = []
    for value in raw:
        if isinstance(value, list):
            through_array = True
            values.extend(value if value else [UNDEFINED])
        else:
            values.append(value)
    unique: dict[bytes, Any] = {}
    for value in values:
        unique.setdefault(keys.encode(value), value)
    return list(unique.values()), through_array


def _crosses_array(node: Any, parts: list[str]) -> bool:
    for part in parts:
        if isinstance(node, list):
            return True
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return False


def _share_array(paths: list[str]) -> bool:
    """Whether multikey paths go through one common array (allowed), not parallel arrays."""
    firsts = {path.split(".")[0] for path in paths}
    return len(firsts) == 1 and all("." in path for path in paths)


def id_duplicate_error(namespace: str, value: Any) -> CommandError:
    """The E11000 error for a duplicate _id."""
    return CommandError(
        11000,
        f"E11000 duplicate key error collection: {namespace} index: {ID_INDEX_NAME} "
        f"dup key: {{ _id: {format_value(value)} }}",
        keyPattern={"_id": 1},
        keyValue={"_id": value},
    )
