"""Secondary indexes: definitions, MongoDB key generation, unique enforcement and lookups."""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mongomock.filtering import filter_applies

from .errors import CommandError, translate
from .values import MISSING, UNDEFINED, format_value, path_values, sort_key

ID_INDEX_NAME = "_id_"
_KNOWN_OPTIONS = {"key", "name", "unique", "sparse", "partialFilterExpression", "v", "ns"}


@dataclass
class IndexSpec:
    """One index definition as given to createIndexes."""

    name: str
    key: list[tuple[str, Any]]
    unique: bool = False
    sparse: bool = False
    partial: dict | None = None
    options: dict = field(default_factory=dict)

    @classmethod
    def from_document(cls, doc: dict) -> IndexSpec:
        """Validate and parse a createIndexes entry."""
        key = doc.get("key")
        if not isinstance(key, dict) or not key:
            raise CommandError(67, "index key pattern must be a non-empty object")
        for path, direction in key.items():
            if not isinstance(path, str) or not path or path.startswith("$") and path != "$**":
                raise CommandError(67, f"bad index key pattern field: {path!r}")
            if isinstance(direction, bool) or not isinstance(direction, (int, float, str)):
                raise CommandError(67, f"bad index key pattern value: {direction!r}")
        name = doc.get("name") or "_".join(f"{k}_{v}" for k, v in key.items())
        if not isinstance(name, str):
            raise CommandError(67, "index name must be a string")
        partial = doc.get("partialFilterExpression")
        if partial is not None:
            if not isinstance(partial, dict):
                raise CommandError(67, "partialFilterExpression must be an object")
            try:
                filter_applies(partial, {})
            except Exception as exc:  # reject it now rather than on every later write
                raise CommandError(67, f"invalid partialFilterExpression: {exc}") from exc
        options = {k: v for k, v in doc.items() if k not in _KNOWN_OPTIONS}
        return cls(
            name=name,
            key=list(key.items()),
            unique=bool(doc.get("unique")),
            sparse=bool(doc.get("sparse")),
            partial=partial,
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
        doc.update(self.options)
        return doc

    def same_definition(self, other: IndexSpec) -> bool:
        """Whether two specs describe the same index (so re-creating it is a no-op)."""
        return (self.key, self.unique, self.sparse, self.partial) == (
            other.key,
            other.unique,
            other.sparse,
            other.partial,
        )

    @property
    def fields(self) -> list[str]:
        """The indexed paths, in key order."""
        return [path for path, _ in self.key]


class Index:
    """An index's in-memory map from key tuple to the ids of the documents having that key."""

    def __init__(self, spec: IndexSpec, namespace: str) -> None:
        self.spec = spec
        self.namespace = namespace
        self._parts = [path.split(".") for path in spec.fields]
        self.entries: dict[tuple, dict[Hashable, None]] = {}
        # Compound indexes also map their leading field alone, for equality lookups.
        self.leading: dict[tuple, dict[Hashable, None]] | None = {} if len(self._parts) > 1 else None

    def keys_for(self, doc: dict) -> dict[tuple, tuple] | None:
        """Canonical key tuples of a document mapped to their raw values; None if not indexed."""
        spec = self.spec
        if spec.partial is not None:
            try:
                if not filter_applies(spec.partial, doc):
                    return None
            except Exception as exc:  # a bad partial filter must not take the server down
                raise translate(exc) from exc
        per_field: list[list[Any]] = []
        array_fields: list[str] = []
        for path, parts in zip(spec.fields, self._parts, strict=True):
            values, through_array = _key_values(doc, parts)
            per_field.append(values)
            if through_array:
                array_fields.append(path)
        if spec.sparse and all(v == [MISSING] for v in per_field):
            return None
        if len(array_fields) > 1 and not _share_array(array_fields):
            fields_text = " ".join(f"[{f}]" for f in array_fields)
            raise CommandError(171, f"cannot index parallel arrays {fields_text}")
        keys: dict[tuple, tuple] = {}
        for combo in itertools.product(*per_field):
            keys.setdefault(tuple(sort_key(v) for v in combo), combo)
        return keys

    def conflict(self, id_key: Hashable, keys: dict[tuple, tuple] | None) -> CommandError | None:
        """The duplicate-key error these keys would cause for another document, if any."""
        if not self.spec.unique or not keys:
            return None
        for canon, raw in keys.items():
            owners = self.entries.get(canon)
            if owners and any(owner != id_key for owner in owners):
                return self.duplicate_error(raw)
        return None

    def duplicate_error(self, raw: tuple) -> CommandError:
        """The E11000 error MongoDB reports for a duplicate key."""
        key_value = {path: (None if v is MISSING else v) for path, v in zip(self.spec.fields, raw, strict=True)}
        shown = ", ".join(f"{path}: {format_value(v)}" for path, v in key_value.items())
        message = (
            f"E11000 duplicate key error collection: {self.namespace} index: {self.spec.name} dup key: {{ {shown} }}"
        )
        return CommandError(11000, message, keyPattern=dict(self.spec.key), keyValue=key_value)

    def add(self, id_key: Hashable, keys: dict[tuple, tuple] | None) -> None:
        """Index a document under its keys."""
        for canon in keys or ():
            self.entries.setdefault(canon, {})[id_key] = None
            if self.leading is not None:
                self.leading.setdefault(canon[:1], {})[id_key] = None

    def remove(self, id_key: Hashable, keys: dict[tuple, tuple] | None) -> None:
        """Remove a document's keys from the index."""
        for canon in keys or ():
            _discard(self.entries, canon, id_key)
            if self.leading is not None:
                _discard(self.leading, canon[:1], id_key)

    def lookup_leading(self, value: Any) -> Iterable[Hashable]:
        """Ids of documents whose leading indexed field equals value (or holds it in an array)."""
        table = self.leading if self.leading is not None else self.entries
        return table.get((sort_key(value),), {})


def _discard(table: dict[tuple, dict[Hashable, None]], key: tuple, id_key: Hashable) -> None:
    owners = table.get(key)
    if owners is not None:
        owners.pop(id_key, None)
        if not owners:
            del table[key]


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
    unique: dict[tuple, Any] = {}
    for value in values:
        unique.setdefault(sort_key(value), value)
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


class CollectionIndexes:
    """All secondary indexes of one collection (the _id index is the document store itself)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.indexes: dict[str, Index] = {}

    def specs(self) -> list[IndexSpec]:
        """Index definitions in creation order."""
        return [index.spec for index in self.indexes.values()]

    def prepare(self, id_key: Hashable, doc: dict, check: bool = True) -> dict[str, Any]:
        """Compute a document's keys for every index, raising on a unique-key conflict."""
        prepared: dict[str, Any] = {}
        for name, index in self.indexes.items():
            keys = index.keys_for(doc)
            if check:
                error = index.conflict(id_key, keys)
                if error is not None:
                    raise error
            prepared[name] = keys
        return prepared

    def add(self, id_key: Hashable, prepared: dict[str, Any]) -> None:
        """Register a document's prepared keys."""
        for name, keys in prepared.items():
            self.indexes[name].add(id_key, keys)

    def remove(self, id_key: Hashable, doc: dict) -> None:
        """Unregister a document (its keys are recomputed from the stored version)."""
        for index in self.indexes.values():
            try:
                keys = index.keys_for(doc)
            except CommandError:
                continue
            index.remove(id_key, keys)

    def build(self, spec: IndexSpec, docs: Iterable[tuple[Hashable, dict]], check: bool = True) -> Index:
        """Build a new index over existing documents; a unique violation aborts with E11000."""
        index = Index(spec, self.namespace)
        for id_key, doc in docs:
            keys = index.keys_for(doc)
            error = index.conflict(id_key, keys) if check else None
            if error is not None:
                raise error
            index.add(id_key, keys)
        return index

    def lookup(self, terms: dict[str, list[Any]]) -> list[Hashable] | None:
        """Ids possibly matching equality terms ({path: allowed values}), through the index that
        covers the most of them; None when no index can answer."""
        best: tuple[tuple[bool, int], Index] | None = None
        for index in self.indexes.values():
            spec = index.spec
            if not all(isinstance(direction, (int, float)) for _, direction in spec.key):
                continue
            covered = 0
            for path in spec.fields:
                if path not in terms:
                    break
                covered += 1
            if covered == 0 or not _implies_partial(spec, terms):
                continue
            # A sparse index holds every document with any indexed field: equality on one suffices.
            rank = (covered == len(spec.fields), covered)
            if best is None or rank > best[0]:
                best = (rank, index)
        if best is None:
            return None
        (full, _), index = best
        found: dict[Hashable, None] = {}
        if full:
            for combo in itertools.product(*(terms[path] for path in index.spec.fields)):
                found.update(index.entries.get(tuple(sort_key(v) for v in combo), {}))
        else:
            for value in terms[index.spec.fields[0]]:
                found.update(index.lookup_leading(value))
        return list(found)


def _implies_partial(spec: IndexSpec, terms: dict[str, list[Any]]) -> bool:
    """Whether every document matching the terms is in the index (always so without a partial filter).

    Conservative: the filter may only test plain paths the terms fix; it must accept each
    combination of their values. Filter operators use any-element semantics on arrays, so a
    document holding the value passes the filter too.
    """
    partial = spec.partial
    if partial is None:
        return True
    paths = list(partial)
    if any(path.startswith("$") or path not in terms for path in paths):
        return False
    for combo in itertools.product(*(terms[path] for path in paths)):
        probe: dict[str, Any] = {}
        for path, value in zip(paths, combo, strict=True):
            if not _put(probe, path.split("."), value):
                return False
        try:
            if not filter_applies(partial, probe):
                return False
        except Exception:  # an expression the probe cannot answer: do not use the index
            return False
    return True


def _put(doc: dict[str, Any], parts: list[str], value: Any) -> bool:
    """Set a dotted path in a nested probe document; False when paths overlap."""
    for part in parts[:-1]:
        node = doc.setdefault(part, {})
        if not isinstance(node, dict):
            return False
        doc = node
    if parts[-1] in doc:
        return False
    doc[parts[-1]] = value
    return True
