"""MongoDB update semantics: operator documents, replacements, pipelines and upsert seeds."""

from __future__ import annotations

import datetime
import time
from typing import Any

from bson import Decimal128, Int64, ObjectId, Regex, Timestamp
from mongomock import aggregate

from .errors import CommandError, translate
from .matcher import matches
from .paths import PathResolver, get_slot, put_slot, remove_slot, split_path
from .values import MISSING, format_value, sort_documents, sort_key, values_equal


def clone(value: Any) -> Any:
    """A copy of a decoded BSON value (its leaves, such as datetimes and ObjectIds, are immutable)."""
    kind = type(value)
    if kind is dict:
        return {key: clone(item) if type(item) in (dict, list) else item for key, item in value.items()}
    if kind is list:
        return [clone(item) if type(item) in (dict, list) else item for item in value]
    if isinstance(value, dict):
        return {key: clone(item) for key, item in value.items()}
    return value


OPERATORS = {
    "$set",
    "$unset",
    "$inc",
    "$mul",
    "$min",
    "$max",
    "$rename",
    "$currentDate",
    "$setOnInsert",
    "$push",
    "$addToSet",
    "$pop",
    "$pull",
    "$pullAll",
    "$bit",
}
# Operators that never create missing parents (they are no-ops on missing paths).
_NON_CREATING = {"$unset", "$pop", "$pull", "$pullAll"}


def kind_of(update: Any) -> str:
    """'operators', 'replacement' or 'pipeline'; raises for malformed updates."""
    if isinstance(update, list):
        return "pipeline"
    if not isinstance(update, dict):
        raise CommandError(9, "Update argument must be either an object or an array")
    dollar = [k.startswith("$") for k in update]
    if update and all(dollar):
        return "operators"
    if any(dollar):
        first = next(k for k in update if k.startswith("$"))
        raise CommandError(
            52,
            f"The dollar ($) prefixed field '{first}' in '{first}' is not "
            "allowed in the context of an update's replacement document.",
        )
    return "replacement"


def apply_update(
    doc: dict, update: Any, *, query: dict, array_filters: dict[str, dict], is_insert: bool, database: Any = None
) -> dict:
    """Return the updated copy of doc (doc itself is left untouched)."""
    kind = kind_of(update)
    if kind == "replacement":
        return _replace(doc, update)
    if kind == "pipeline":
        return _pipeline(doc, update, database)
    ops = _parse(update, array_filters)
    new = clone(doc)
    resolver = PathResolver(query, doc, array_filters)
    for op, parts, arg in ops:
        if op == "$setOnInsert" and not is_insert:
            continue
        if op == "$rename":
            _rename(new, parts, arg, resolver)
            continue
        for container, key in resolver.slots(new, parts, create=op not in _NON_CREATING):
            _apply_one(op, container, key, arg, ".".join(parts), doc)
    if "_id" in doc and not values_equal(new.get("_id", MISSING), doc["_id"]):
        raise CommandError(66, "Performing an update on the path '_id' would modify the immutable field '_id'")
    if "_id" in new and next(iter(new)) != "_id":
        new = {"_id": new["_id"], **{k: v for k, v in new.items() if k != "_id"}}
    return new


def _parse(update: dict, array_filters: dict[str, dict]) -> list[tuple[str, list[str], Any]]:
    ops: list[tuple[str, list[str], Any]] = []
    for op, fields in update.items():
        if op not in OPERATORS:
            raise CommandError(
                9,
                f"Unknown modifier: {op}. Expected a valid update modifier or "
                "pipeline-style update specified as an array",
            )
        if not isinstance(fields, dict):
            raise CommandError(
                9,
                f"Modifiers operate on fields but we found type "
                f"{_type_name(fields)} instead. For example: "
                f"{{$mod: {{<field>: ...}}}} not {{{op}: {format_value(fields)}}}",
            )
        for path, arg in fields.items():
            ops.append((op, split_path(path), arg))
            if op == "$rename":
                if not isinstance(arg, str):
                    raise CommandError(2, f"The 'to' field for $rename must be a string: {path}: {format_value(arg)}")
                ops.append(("$rename-target", split_path(arg), None))
    _check_conflicts(ops)
    used = {p[2:-1] for _, parts, _ in ops for p in parts if p.startswith("$[") and p != "$[]"}
    for name in used:
        if name not in array_filters:
            path = next(".".join(parts) for _, parts, _ in ops if f"$[{name}]" in parts)
            raise CommandError(2, f"No array filter found for identifier '{name}' in path '{path}'")
    for name in array_filters:
        if name not in used:
            raise CommandError(
                9, f"The array filter for identifier '{name}' was not used in the update {format_value(update)}"
            )
    ops = [op for op in ops if op[0] != "$rename-target"]
    # MongoDB (5.0+) applies updates in lexicographic field order, numeric names numerically.
    ops.sort(key=lambda op: [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in op[1]])
    return ops


def _check_conflicts(ops: list[tuple[str, list[str], Any]]) -> None:
    seen: list[list[str]] = []
    for _, parts, _ in ops:
        for other in seen:
            shorter = min(len(parts), len(other))
            if parts[:shorter] == other[:shorter]:
                raise CommandError(
                    40,
                    f"Updating the path '{'.'.join(parts)}' would create a conflict at '{'.'.join(parts[:shorter])}'",
                )
        seen.append(parts)


def _apply_one(op: str, container: Any, key: Any, arg: Any, path: str, doc: dict) -> None:
    current = get_slot(container, key)
    if op in ("$set", "$setOnInsert"):
        put_slot(container, key, clone(arg))
    elif op == "$unset":
        if current is not MISSING:
            remove_slot(container, key)
    elif op in ("$inc", "$mul"):
        if not _is_number(arg):
            verb = "increment" if op == "$inc" else "multiply"
            raise CommandError(14, f"Cannot {verb} with non-numeric argument: {{{path}: {format_value(arg)}}}")
        if current is MISSING:
            put_slot(container, key, arg if op == "$inc" else _arith(arg, 0, "*"))
        elif not _is_number(current):
            raise CommandError(
                14,
                f"Cannot apply {op} to a value of non-numeric type. "
                f"{{_id: {format_value(doc.get('_id'))}}} has the field "
                f"'{path.split('.')[-1]}' of non-numeric type "
                f"{_type_name(current)}",
            )
        else:
            put_slot(container, key, _arith(current, arg, "+" if op == "$inc" else "*"))
    elif op in ("$min", "$max"):
        new_key = sort_key(arg)
        old_key = None if current is MISSING else sort_key(current)
        if old_key is None or (new_key < old_key if op == "$min" else new_key > old_key):
            put_slot(container, key, clone(arg))
    elif op == "$currentDate":
        put_slot(container, key, _current_date(arg))
    elif op == "$bit":
        put_slot(container, key, _bit(current, arg, path))
    else:
        _apply_array_op(op, container, key, current, arg, path, doc)


def _apply_array_op(op: str, container: Any, key: Any, current: Any, arg: Any, path: str, doc: dict) -> None:
    if current is MISSING:
        if op in ("$pop", "$pull", "$pullAll"):
            return
        current = []
    elif not isinstance(current, list):
        if op == "$pop":
            raise CommandError(14, f"Path '{path}' contains an element of non-array type '{_type_name(current)}'")
        raise CommandError(
            2,
            f"The field '{path}' must be an array but is of type "
            f"{_type_name(current)} in document "
            f"{{_id: {format_value(doc.get('_id'))}}}",
        )
    items = list(current)
    if op == "$push":
        items = _push(items, arg)
    elif op == "$addToSet":
        each = arg["$each"] if isinstance(arg, dict) and "$each" in arg else [arg]
        if not isinstance(each, list):
            raise CommandError(2, "The argument to $each in $addToSet must be an array")
        for value in each:
            if not any(values_equal(value, item) for item in items):
                items.append(clone(value))
    elif op == "$pop":
        if arg not in (1, -1) or isinstance(arg, bool):
            raise CommandError(9, f"$pop expects 1 or -1, found: {format_value(arg)}")
        if items:
            items.pop(-1 if arg == 1 else 0)
    elif op == "$pull":
        items = [item for item in items if not _pull_matches(arg, item)]
    elif op == "$pullAll":
        if not isinstance(arg, list):
            raise CommandError(2, f"$pullAll requires an array argument but was given a {_type_name(arg)}")
        items = [item for item in items if not any(values_equal(item, v) for v in arg)]
    put_slot(container, key, items)


def _push(items: list, arg: Any) -> list:
    if not (isinstance(arg, dict) and "$each" in arg):
        return [*items, clone(arg)]
    unknown = set(arg) - {"$each", "$slice", "$sort", "$position"}
    if unknown:
        raise CommandError(2, f"Unrecognized clause in $push: {sorted(unknown)[0]}")
    each = arg["$each"]
    if not isinstance(each, list):
        raise CommandError(2, "The argument to $each in $push must be an array")
    position = arg.get("$position", len(items))
    if not isinstance(position, int) or isinstance(position, bool):
        raise CommandError(2, "The value for $position must be an integer value")
    if position < 0:
        position = max(0, len(items) + position)
    items = items[:position] + clone(each) + items[position:]
    if "$sort" in arg:
        spec = arg["$sort"]
        if isinstance(spec, dict):
            items = sort_documents(items, list(spec.items()))
        elif spec in (1, -1):
            items = sorted(items, key=sort_key, reverse=spec == -1)
        else:
            raise CommandError(
                2, "The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields"
            )
    if "$slice" in arg:
        count = arg["$slice"]
        if not isinstance(count, int) or isinstance(count, bool):
            raise CommandError(2, "The value for $slice must be an integer value")
        items = items[count:] if count < 0 else items[:count]
    return items


def _pull_matches(condition: Any, item: Any) -> bool:
    try:
        if isinstance(condition, dict) and condition:
            if all(k.startswith("$") for k in condition) and not (set(condition) & {"$and", "$or", "$nor"}):
                return matches({"v": condition}, {"v": item})
            return isinstance(item, dict) and matches(condition, item)
    except Exception as exc:  # a bad condition is the client's error, not a crash
        raise translate(exc) from exc
    if isinstance(condition, (Regex,)) and isinstance(item, str):
        return bool(condition.try_compile().search(item))
    return values_equal(condition, item)


def _rename(new: dict, parts: list[str], target: str, resolver: PathResolver) -> None:
    if any(p.startswith("$") for p in parts) or "$" in target:
        raise CommandError(2, "The source field for $rename may not be dynamic: " + ".".join(parts))
    target_parts = split_path(target)
    if parts == target_parts:
        raise CommandError(2, "The source and target field for $rename must differ: " + ".".join(parts))
    slots = resolver.slots(new, parts, create=False)
    if not slots or isinstance(slots[0][0], list):
        return
    container, key = slots[0]
    value = get_slot(container, key)
    if value is MISSING:
        return
    remove_slot(container, key)
    for t_container, t_key in resolver.slots(new, target_parts, create=True):
        put_slot(t_container, t_key, value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal128)) and not isinstance(value, bool)


def _arith(a: Any, b: Any, op: str) -> Any:
    if isinstance(a, Decimal128) or isinstance(b, Decimal128):
        x = a.to_decimal() if isinstance(a, Decimal128) else Decimal128(str(a)).to_decimal()
        y = b.to_decimal() if isinstance(b, Decimal128) else Decimal128(str(b)).to_decimal()
        return Decimal128(x + y if op == "+" else x * y)
    if isinstance(a, float) or isinstance(b, float):
        return float(a) + float(b) if op == "+" else float(a) * float(b)
    result = int(a) + int(b) if op == "+" else int(a) * int(b)
    if isinstance(a, Int64) or isinstance(b, Int64) or not -(2**31) <= result < 2**31:
        return Int64(result)
    return result


def _bit(current: Any, arg: Any, path: str) -> Any:
    value = 0 if current is MISSING else current
    if not isinstance(value, int) or isinstance(value, bool) or not isinstance(arg, dict):
        raise CommandError(2, f"Cannot apply $bit to a value of non-integral type for '{path}'")
    for how, operand in arg.items():
        if how == "and":
            value &= operand
        elif how == "or":
            value |= operand
        elif how == "xor":
            value ^= operand
        else:
            raise CommandError(2, f"The $bit modifier only supports 'and', 'or', and 'xor', not '{how}'")
    return value


def _current_date(arg: Any) -> Any:
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    if arg is True or arg == {"$type": "date"}:
        return now
    if arg == {"$type": "timestamp"}:
        return Timestamp(int(time.time()), 1)
    raise CommandError(
        2,
        f"{format_value(arg)} is not valid type for $currentDate. "
        "Please use a boolean ('true') or a $type expression "
        "({$type: 'timestamp/date'}).",
    )


def _replace(doc: dict, replacement: dict) -> dict:
    if "_id" in replacement and "_id" in doc and not values_equal(replacement["_id"], doc["_id"]):
        raise CommandError(
            66,
            "After applying the update, the (immutable) field '_id' was found "
            f"to have been altered to _id: {format_value(replacement['_id'])}",
        )
    new = {"_id": doc["_id"]} if "_id" in doc else {}
    new.update((k, clone(v)) for k, v in replacement.items() if k != "_id")
    if "_id" not in new and "_id" in replacement:
        new = {"_id": replacement["_id"], **new}
    return new


_STAGE_ALIASES = {"$set": "$addFields"}


def _pipeline(doc: dict, pipeline: list, database: Any) -> dict:
    stages = []
    for stage in pipeline:
        if not isinstance(stage, dict) or len(stage) != 1:
            raise CommandError(9, "Each element of the 'pipeline' array must be an object")
        ((name, arg),) = stage.items()
        if name == "$unset":
            fields = [arg] if isinstance(arg, str) else arg
            stages.append({"$project": dict.fromkeys(fields, 0)})
        elif name == "$replaceWith":
            stages.append({"$replaceRoot": {"newRoot": arg}})
        elif name in ("$addFields", "$set", "$project", "$replaceRoot"):
            stages.append({_STAGE_ALIASES.get(name, str(name)): arg})
        else:
            raise CommandError(72, f"{name} is not allowed to be used within an update")
    try:
        results = list(aggregate.process_pipeline([clone(doc)], database, stages, None))
    except Exception as exc:  # a bad pipeline is the client's error, not a crash
        raise translate(exc) from exc
    new = results[0] if results else {}
    if "_id" in doc:
        if "_id" in new and not values_equal(new["_id"], doc["_id"]):
            raise CommandError(
                66,
                "After applying the update, the (immutable) field '_id' was "
                f"found to have been altered to _id: {format_value(new['_id'])}",
            )
        new = {"_id": doc["_id"], **{k: v for k, v in new.items() if k != "_id"}}
    return new


def upsert_seed(query: dict) -> dict:
    """The document an upsert starts from: the query's equality conditions."""
    seed: dict = {}
    for path, value in _equalities(query):
        node = seed
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = clone(value)
    if "_id" in seed:
        seed = {"_id": seed["_id"], **{k: v for k, v in seed.items() if k != "_id"}}
    return seed


def _equalities(query: dict) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for key, value in query.items():
        if key == "$and" and isinstance(value, list):
            for sub in value:
                if isinstance(sub, dict):
                    found.extend(_equalities(sub))
        elif key.startswith("$"):
            continue
        elif isinstance(value, dict) and any(k.startswith("$") for k in value):
            if "$eq" in value:
                found.append((key, value["$eq"]))
        elif not isinstance(value, Regex) and not hasattr(value, "pattern"):
            found.append((key, value))
    return found


def new_id(seed: dict) -> dict:
    """Put a generated ObjectId first when an upserted document has no _id."""
    if "_id" in seed:
        return seed
    return {"_id": ObjectId(), **seed}


def _type_name(value: Any) -> str:
    names = [
        (bool, "bool"),
        (Int64, "long"),
        (int, "int"),
        (float, "double"),
        (str, "string"),
        (dict, "object"),
        (list, "array"),
        (ObjectId, "objectId"),
        (datetime.datetime, "date"),
        (bytes, "binData"),
        (Decimal128, "decimal"),
    ]
    if value is None:
        return "null"
    for cls, name in names:
        if isinstance(value, cls):
            return name
    return type(value).__name__
