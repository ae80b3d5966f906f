"""MongoDB's query matching, compiled once per filter into a function of a document.

Equality and comparisons use the order-preserving key encoding, so they follow MongoDB exactly:
`true` is not `1`, `1` is `1.0` and `Decimal128("1")`, documents compare field by field in order,
ranges stay within a type. A predicate on a path holds when it holds for any value the path leads
to (arrays along the path and at its end are looked into), as MongoDB's implicit array traversal
does. Errors in a filter are raised when it is compiled, so an empty collection still rejects them.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.datetime_ms import DatetimeMS
from mongomock.filtering import filter_applies

from . import keys
from .errors import CommandError, translate
from .values import MISSING, path_values

Test = Callable[[dict], bool]
ValuesTest = Callable[[list[Any]], bool]

_TYPE_CODES = {
    1: "double",
    2: "string",
    3: "object",
    4: "array",
    5: "binData",
    6: "undefined",
    7: "objectId",
    8: "bool",
    9: "date",
    10: "null",
    11: "regex",
    12: "dbPointer",
    13: "javascript",
    14: "symbol",
    15: "javascriptWithScope",
    16: "int",
    17: "timestamp",
    18: "long",
    19: "decimal",
    -1: "minKey",
    127: "maxKey",
}
_TYPE_NAMES = set(_TYPE_CODES.values()) | {"number"}
_NUMBER_TYPES = {"double", "int", "long", "decimal"}
_REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE, "u": 0}
_LOGICAL = {"$and", "$or", "$nor"}


def compile_filter(query: Any) -> Test:
    """A function telling whether a document matches the filter (raises CommandError for a bad filter)."""
    if not isinstance(query, dict):
        raise CommandError(2, "the match filter must be an expression in an object")
    tests: list[Test] = []
    for key, condition in query.items():
        if key in _LOGICAL:
            tests.append(_logical(key, condition))
        elif key == "$comment":
            continue
        elif key == "$expr":
            tests.append(_expression(condition))
        elif key == "$alwaysTrue":
            continue
        elif key == "$alwaysFalse":
            tests.append(lambda doc: False)
        elif key == "$text":
            raise CommandError(27, "text index required for $text query")
        elif key in ("$where", "$jsonSchema", "$sampleRate"):
            raise CommandError(238, f"{key} is not supported by the embedded engine")
        elif key.startswith("$"):
            raise CommandError(2, f"unknown top level operator: {key}")
        else:
            tests.append(_field(key, condition))
    if not tests:
        return lambda doc: True
    if len(tests) == 1:
        return tests[0]
    return lambda doc: all(test(doc) for test in tests)


def matches(query: dict, doc: dict) -> bool:
    """Whether one document matches a filter."""
    return compile_filter(query)(doc)


def _logical(operator: str, branches: Any) -> Test:
    if not isinstance(branches, list) or not branches:
        raise CommandError(2, f"{operator} must be a nonempty array")
    if not all(isinstance(branch, dict) for branch in branches):
        raise CommandError(2, f"$or/$and/$nor entries need to be full objects ({operator})")
    tests = [compile_filter(branch) for branch in branches]
    if operator == "$and":
        return lambda doc: all(test(doc) for test in tests)
    if operator == "$or":
        return lambda doc: any(test(doc) for test in tests)
    return lambda doc: not any(test(doc) for test in tests)


def _expression(condition: Any) -> Test:
    query = {"$expr": condition}

    def test(doc: dict) -> bool:
        try:
            return bool(filter_applies(query, doc))
        except KeyError:  # mongomock's way of meeting a missing field
            return False
        except Exception as exc:  # mongomock raises several types for invalid expressions
            raise translate(exc) from exc

    return test


def _field(path: str, condition: Any) -> Test:
    values_test = _values_test(condition)
    if "." not in path:
        return lambda doc: values_test([doc.get(path, MISSING)])
    parts = path.split(".")
    return lambda doc: values_test(path_values(doc, parts))


def _is_operators(condition: Any) -> bool:
    return isinstance(condition, dict) and bool(condition) and next(iter(condition)).startswith("$")


def _values_test(condition: Any) -> ValuesTest:
    """A test of the values a path leads to."""
    if _is_operators(condition):
        tests = [_operator(op, argument, condition) for op, argument in condition.items() if op != "$options"]
        if "$options" in condition and "$regex" not in condition:
            raise CommandError(2, "$options needs a $regex")
        if len(tests) == 1:
            return tests[0]
        return lambda values: all(test(values) for test in tests)
    if isinstance(condition, (Regex, re.Pattern)):
        pattern = _regex_test(condition)
        equal = _equal(condition)
        return lambda values: pattern(values) or equal(values)
    return _equal(condition)


def _expand(values: list[Any]) -> Iterator[Any]:
    """Each value, and the elements of values that are arrays (MISSING left out)."""
    for value in values:
        if value is MISSING:
            continue
        yield value
        if type(value) is list:
            yield from value


def _encoded(value: Any) -> bytes:
    return keys.encode(value)


def _equal(target: Any) -> ValuesTest:
    encoded = _encoded(target)
    null = target is None
    target_type = type(target)
    simple = target_type in (str, ObjectId)

    def test(values: list[Any]) -> bool:
        for value in values:
            if value is MISSING:
                if null:
                    return True
                continue
            if simple and type(value) is target_type:
                if value == target:
                    return True
                continue
            if _encoded(value) == encoded:
                return True
            if type(value) is list:
                for element in value:
                    if _encoded(element) == encoded:
                        return True
        return False

    return test


def _is_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, Decimal128):
        return value.to_decimal().is_nan()
    return False


def _comparison(operator: str, target: Any) -> ValuesTest:
    if target is None:
        if operator in ("$gte", "$lte"):
            return _equal(None)
        return lambda values: False
    encoded = _encoded(target)
    bracket = encoded[0]
    across_types = isinstance(target, (MinKey, MaxKey))
    if _is_nan(target):
        if operator in ("$gte", "$lte"):
            return lambda values: any(_is_nan(v) for v in _expand(values))
        return lambda values: False
    compare = {"$gt": bytes.__gt__, "$gte": bytes.__ge__, "$lt": bytes.__lt__, "$lte": bytes.__le__}[operator]

    def test(values: list[Any]) -> bool:
        for value in _expand(values):
            candidate = _encoded(value)
            if (candidate[0] == bracket or across_types) and not _is_nan(value) and compare(candidate, encoded):
                return True
        return False

    return test


def _in(argument: Any, operator: str) -> ValuesTest:
    if not isinstance(argument, list):
        raise CommandError(2, f"{operator} needs an array")
    regexes = [_regex_test(v) for v in argument if isinstance(v, (Regex, re.Pattern))]
    if any(_is_operators(v) for v in argument):
        raise CommandError(2, f"cannot nest $ under {operator}")
    points = {_encoded(v) for v in argument}
    null = any(v is None for v in argument)

    def test(values: list[Any]) -> bool:
        for value in values:
            if value is MISSING:
                if null:
                    return True
                continue
            if _encoded(value) in points:
                return True
            if type(value) is list and any(_encoded(element) in points for element in value):
                return True
        return any(regex(values) for regex in regexes)

    return test


def type_name(value: Any) -> str:
    """The BSON type alias of a value, as $type names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Int64):
        return "long"
    if isinstance(value, int):
        return "int" if -(2**31) <= value < 2**31 else "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, Code):
        return "javascript" if value.scope is None else "javascriptWithScope"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, (bytes, Binary)):
        return "binData"
    if isinstance(value, ObjectId):
        return "objectId"
    if isinstance(value, (datetime.datetime, DatetimeMS)):
        return "date"
    if isinstance(value, Decimal128):
        return "decimal"
    if isinstance(value, (Regex, re.Pattern)):
        return "regex"
    if isinstance(value, Timestamp):
        return "timestamp"
    if isinstance(value, MinKey):
        return "minKey"
    if isinstance(value, MaxKey):
        return "maxKey"
    return "unknown"


def _type(argument: Any) -> ValuesTest:
    wanted: set[str] = set()
    for item in argument if isinstance(argument, list) else [argument]:
        if isinstance(item, str):
            if item not in _TYPE_NAMES:
                raise CommandError(2, f"Unknown type name alias: {item}")
            wanted |= _NUMBER_TYPES if item == "number" else {item}
        elif isinstance(item, (int, float)) and not isinstance(item, bool) and int(item) in _TYPE_CODES:
            wanted.add(_TYPE_CODES[int(item)])
        else:
            raise CommandError(2, f"Invalid numerical type code: {item!r}")
    return lambda values: any(type_name(v) in wanted for v in _expand(values))


def _compile_regex(pattern: Any, options: str) -> re.Pattern:
    if isinstance(pattern, re.Pattern):
        return pattern
    flags = 0
    if isinstance(pattern, Regex):
        flags = pattern.flags if isinstance(pattern.flags, int) else 0
        if isinstance(pattern.flags, str):
            options += pattern.flags
        pattern = pattern.pattern
    if not isinstance(pattern, str):
        raise CommandError(2, "$regex has to be a string")
    for letter in options:
        if letter not in _REGEX_FLAGS:
            raise CommandError(51108, f"invalid flag in regex options: {letter}")
        flags |= _REGEX_FLAGS[letter]
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise CommandError(51091, f"Regular expression is invalid: {exc}") from exc


def _regex_test(pattern: Any, options: str = "") -> ValuesTest:
    compiled = _compile_regex(pattern, options)
    search = compiled.search

    def test(values: list[Any]) -> bool:
        return any(type(v) is str and search(v) is not None for v in _expand(values))

    return test


def _size(argument: Any) -> ValuesTest:
    if isinstance(argument, bool) or not isinstance(argument, (int, float)) or int(argument) != argument:
        raise CommandError(2, "$size needs a number")
    size = int(argument)
    return lambda values: any(type(v) is list and len(v) == size for v in values)


def _mod(argument: Any) -> ValuesTest:
    if not isinstance(argument, list) or len(argument) != 2:
        raise CommandError(2, "malformed mod, needs to be an array of two numbers")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in argument):
        raise CommandError(2, "malformed mod, divisor and remainder must be numbers")
    divisor, remainder = int(argument[0]), int(argument[1])
    if divisor == 0:
        raise CommandError(2, "divisor cannot be 0")

    def truncated(value: Any) -> int | None:
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal128)):
            return None
        number = float(value.to_decimal()) if isinstance(value, Decimal128) else value
        if isinstance(number, float) and not math.isfinite(number):
            return None
        return int(number)

    def c_remainder(value: int) -> int:
        result = abs(value) % abs(divisor)
        return -result if value < 0 else result

    def test(values: list[Any]) -> bool:
        for value in _expand(values):
            number = truncated(value)
            if number is not None and c_remainder(number) == remainder:
                return True
        return False

    return test


def _elem_match(argument: Any) -> ValuesTest:
    if not isinstance(argument, dict):
        raise CommandError(2, "$elemMatch needs an Object")
    if _is_operators(argument) and not any(k in _LOGICAL or k == "$expr" for k in argument):
        value_test = _values_test(argument)

        def element_ok(element: Any) -> bool:
            return value_test([element])
    else:
        document_test = compile_filter(argument)

        def element_ok(element: Any) -> bool:
            return isinstance(element, dict) and document_test(element)

    return lambda values: any(type(v) is list and any(element_ok(e) for e in v) for v in values)


def _all(argument: Any) -> ValuesTest:
    if not isinstance(argument, list):
        raise CommandError(2, "$all needs an array")
    if not argument:
        return lambda values: False
    tests = [
        _elem_match(item["$elemMatch"])
        if isinstance(item, dict) and "$elemMatch" in item
        else (_values_test(item) if isinstance(item, (Regex, re.Pattern)) else _equal(item))
        for item in argument
    ]
    return lambda values: all(test(values) for test in tests)


def _not(argument: Any) -> ValuesTest:
    if isinstance(argument, (Regex, re.Pattern)):
        inner = _regex_test(argument)
    elif _is_operators(argument):
        inner = _values_test(argument)
    else:
        raise CommandError(2, "$not needs a regex or a document")
    return lambda values: not inner(values)


def _operator(operator: str, argument: Any, condition: dict) -> ValuesTest:
    if operator == "$eq":
        return _equal(argument)
    if operator == "$ne":
        if isinstance(argument, (Regex, re.Pattern)):
            raise CommandError(2, "Can't have regex as arg to $ne.")
        equal = _equal(argument)
        return lambda values: not equal(values)
    if operator in ("$gt", "$gte", "$lt", "$lte"):
        if isinstance(argument, (Regex, re.Pattern)):
            raise CommandError(2, f"Can't have RegEx as arg to predicate over field: {operator}")
        return _comparison(operator, argument)
    if operator == "$in":
        return _in(argument, "$in")
    if operator == "$nin":
        found = _in(argument, "$nin")
        return lambda values: not found(values)
    if operator == "$exists":
        wanted = bool(argument)
        return lambda values: any(v is not MISSING for v in values) == wanted
    if operator == "$type":
        return _type(argument)
    if operator == "$regex":
        options = condition.get("$options", "")
        if not isinstance(options, str):
            raise CommandError(2, "$options has to be a string")
        return _regex_test(argument, options)
    if operator == "$size":
        return _size(argument)
    if operator == "$all":
        return _all(argument)
    if operator == "$elemMatch":
        return _elem_match(argument)
    if operator == "$not":
        return _not(argument)
    if operator == "$mod":
        return _mod(argument)
    if operator in ("$bitsAllSet", "$bitsAllClear", "$bitsAnySet", "$bitsAnyClear", "$geoWithin", "$geoIntersects"):
        raise CommandError(238, f"{operator} is not supported by the embedded engine")
    if operator in ("$near", "$nearSphere"):
        raise CommandError(291, f"unable to find index for $geoNear query ({operator})")
    if operator == "$text":
        raise CommandError(27, "text index required for $text query")
    raise CommandError(2, f"unknown operator: {operator}")
