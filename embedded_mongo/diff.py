"""The `updateDescription` of an update event: which fields a change set, removed or truncated."""

from __future__ import annotations

from typing import Any


def update_description(old: dict, new: dict) -> dict[str, Any]:
    """What changed from old to new, with dotted paths for nested fields, as change streams report it."""
    updated: dict[str, Any] = {}
    removed: list[str] = []
    truncated: list[dict[str, Any]] = []
    _diff_documents(old, new, "", updated, removed, truncated)
    updated.pop("_id", None)
    return {"updatedFields": updated, "removedFields": removed, "truncatedArrays": truncated}


def changed_fields(old: dict, new: dict) -> set[str]:
    """Top-level fields whose values differ (types included: 1 is not 1.0 here)."""
    changed = {key for key in old if key not in new}
    changed.update(key for key, value in new.items() if key not in old or not _same(old[key], value))
    return changed


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _diff_documents(
    old: dict, new: dict, prefix: str, updated: dict[str, Any], removed: list[str], truncated: list[dict[str, Any]]
) -> None:
    removed.extend(prefix + key for key in old if key not in new)
    for key, value in new.items():
        path = prefix + key
        if key not in old:
            updated[path] = value
        else:
            _diff_values(old[key], value, path, updated, removed, truncated)


def _diff_values(
    old: Any, new: Any, path: str, updated: dict[str, Any], removed: list[str], truncated: list[dict[str, Any]]
) -> None:
    if _same(old, new):
        return
    if isinstance(old, dict) and isinstance(new, dict) and old and new:
        kept = [k for k in old if k in new]
        if kept == [k for k in new if k in old]:  # same relative order: describe field by field
            _diff_documents(old, new, path + ".", updated, removed, truncated)
            return
    if isinstance(old, list) and isinstance(new, list) and old and new:
        if len(new) < len(old):
            truncated.append({"field": path, "newSize": len(new)})
        for index, value in enumerate(new):
            if index >= len(old):
                updated[f"{path}.{index}"] = value
            else:
                _diff_values(old[index], value, f"{path}.{index}", updated, removed, truncated)
        return
    updated[path] = new
