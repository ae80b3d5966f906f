"""Update paths: resolving dotted fields with `$`, `$[]` and `$[identifier]` to concrete slots."""

from __future__ import annotations

import re
from typing import Any

from .errors import CommandError, translate
from .matcher import compile_filter, matches
from .values import MISSING, format_value

_IDENTIFIER = re.compile(r"^[a-z][a-zA-Z0-9]*$")
Slot = tuple[Any, Any]  # (container dict or list, key or index)


def split_path(path: str) -> list[str]:
    """Split a dotted update path, rejecting empty field names."""
    if not isinstance(path, str) or not path:
        raise CommandError(56, "An empty update path is not valid.")
    parts = path.split(".")
    if any(not part for part in parts):
        raise CommandError(56, f"The update path '{path}' contains an empty field name, which is not allowed.")
    return parts


def parse_array_filters(filters: Any) -> dict[str, dict]:
    """Validate arrayFilters and map each identifier to its filter."""
    if filters is None:
        return {}
    if not isinstance(filters, list):
        raise CommandError(14, "arrayFilters must be an array")
    parsed: dict[str, dict] = {}
    for array_filter in filters:
        if not isinstance(array_filter, dict) or not array_filter:
            raise CommandError(9, "Cannot use an expression without a top-level field name in arrayFilters")
        names = _filter_identifiers(array_filter)
        if len(names) != 1:
            shown = " and ".join(f"'{n}'" for n in sorted(names))
            raise CommandError(
                9, f"Error parsing array filter :: caused by :: Expected a single top-level field name, found {shown}"
            )
        name = names.pop()
        if not _IDENTIFIER.match(name):
            raise CommandError(
                2,
                "Error parsing array filter :: caused by :: The top-level "
                f"field name must be an alphanumeric string beginning with a "
                f"lowercase letter, found '{name}'",
            )
        if name in parsed:
            raise CommandError(9, f"Found multiple array filters with the same top-level field name {name}")
        parsed[name] = array_filter
    return parsed


def _filter_identifiers(array_filter: dict) -> set[str]:
    names: set[str] = set()
    for key, value in array_filter.items():
        if key in ("$and", "$or", "$nor") and isinstance(value, list):
            for sub in value:
                if isinstance(sub, dict):
                    names |= _filter_identifiers(sub)
        elif not key.startswith("$"):
            names.add(key.split(".")[0])
    return names


class PathResolver:
    """Resolves update paths against one document being updated."""

    def __init__(self, query: dict, original: dict, array_filters: dict[str, dict]) -> None:
        self.query = query
        self.original = original
        self.array_filters = array_filters
        self._positional: dict[str, int] = {}

    def slots(self, root: dict, parts: list[str], create: bool) -> list[Slot]:
        """Concrete (container, key) slots a path designates; create missing parents if asked."""
        return self._resolve(root, parts, 0, create)

    def _resolve(self, node: Any, parts: list[str], i: int, create: bool) -> list[Slot]:
        part = parts[i]
        last = i == len(parts) - 1
        if part.startswith("$"):
            if not isinstance(node, list):
                raise CommandError(
                    2,
                    f"Cannot apply array updates to non-array element "
                    f"{parts[i - 1] if i else ''}: {format_value(node)}",
                )
            slots: list[Slot] = []
            for index in self._positions(part, parts, i, node):
                if last:
                    slots.append((node, index))
                else:
                    slots.extend(self._descend(node, index, parts, i, create))
            return slots
        if isinstance(node, list):
            if not part.isdigit():
                if create:
                    raise CommandError(
                        28,
                        f"Cannot create field '{part}' in element "
                        f"{{{parts[i - 1] if i else ''}: {format_value(node)}}}",
                    )
                return []
            key: Any = int(part)
        elif isinstance(node, dict):
            key = part
        else:
            return []
        if last:
            return [(node, key)]
        return self._descend(node, key, parts, i, create)

    def _descend(self, container: Any, key: Any, parts: list[str], i: int, create: bool) -> list[Slot]:
        child = get_slot(container, key)
        if child is MISSING:
            if not create:
                return []
            if parts[i + 1].startswith("$"):
                raise CommandError(
                    2,
                    f"The path '{'.'.join(parts[: i + 1])}' must exist in the "
                    "document in order to apply array updates.",
                )
            child = {}
            put_slot(container, key, child)
        elif not isinstance(child, (dict, list)):
            if create:
                raise CommandError(
                    28, f"Cannot create field '{parts[i + 1]}' in element {{{parts[i]}: {format_value(child)}}}"
                )
            return []
        return self._resolve(child, parts, i + 1, create)

    def _positions(self, part: str, parts: list[str], i: int, array: list) -> list[int]:
        if part == "$[]":
            return list(range(len(array)))
        if part.startswith("$[") and part.endswith("]"):
            name = part[2:-1]
            array_filter = self.array_filters.get(name)
            if array_filter is None:
                raise CommandError(2, f"No array filter found for identifier '{name}' in path '{'.'.join(parts)}'")
            try:
                test = compile_filter(array_filter)
                return [n for n, el in enumerate(array) if test({name: el})]
            except Exception as exc:  # a bad filter is the client's error, not a crash
                raise translate(exc) from exc
        if part == "$":
            prefix = ".".join(parts[:i])
            if prefix not in self._positional:
                self._positional[prefix] = self._match_position(prefix)
            index = self._positional[prefix]
            if index >= len(array):
                raise CommandError(2, "The positional operator did not find the match needed from the query.")
            return [index]
        raise CommandError(2, f"Unrecognized positional operator {part!r} in path '{'.'.join(parts)}'")

    def _match_position(self, prefix: str) -> int:
        """Index of the first element of the array at prefix matched by the query."""
        clauses = [(k, v) for k, v in _flatten_and(self.query) if k == prefix or k.startswith(prefix + ".")]
        array = _plain_get(self.original, prefix.split("."))
        if clauses and isinstance(array, list):
            for index, element in enumerate(array):
                if all(_clause_matches(k, v, prefix, element) for k, v in clauses):
                    return index
        raise CommandError(2, "The positional operator did not find the match needed from the query.")


def _flatten_and(query: dict) -> list[tuple[str, Any]]:
    clauses: list[tuple[str, Any]] = []
    for key, value in query.items():
        if key == "$and" and isinstance(value, list):
            for sub in value:
                if isinstance(sub, dict):
                    clauses.extend(_flatten_and(sub))
        elif not key.startswith("$"):
            clauses.append((key, value))
    return clauses


def _clause_matches(key: str, condition: Any, prefix: str, element: Any) -> bool:
    rest = key[len(prefix) + 1 :]
    probe_key = "x." + rest if rest else "x"
    try:
        return matches({probe_key: condition}, {"x": [element]})
    except CommandError:  # an unsupported clause just cannot pin the position
        return False


def _plain_get(node: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def get_slot(container: Any, key: Any) -> Any:
    """The value in a slot, or MISSING."""
    if isinstance(container, list):
        return container[key] if key < len(container) else MISSING
    return container.get(key, MISSING)


def put_slot(container: Any, key: Any, value: Any) -> None:
    """Store a value in a slot; arrays are padded with nulls like MongoDB does."""
    if isinstance(container, list):
        while len(container) <= key:
            container.append(None)
    container[key] = value


def remove_slot(container: Any, key: Any) -> None:
    """Unset a slot: fields are removed, array elements become null."""
    if isinstance(container, list):
        if key < len(container):
            container[key] = None
    else:
        container.pop(key, None)
