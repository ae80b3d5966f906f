"""Engine-only: the order-preserving key encoding follows MongoDB's comparison order (property-based)."""

from __future__ import annotations

import datetime
import decimal
from fractions import Fraction
from typing import Any

from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from embedded_mongo import keys
from embedded_mongo.values import MISSING, UNDEFINED

from .conftest import engine_only

pytestmark = engine_only

# MongoDB's canonical type order (bsontypes.h, canonicalizeBSONType).
_RANK = {
    "minkey": -1,
    "null": 5,
    "number": 10,
    "string": 15,
    "object": 20,
    "array": 25,
    "binary": 30,
    "objectid": 35,
    "bool": 40,
    "date": 45,
    "timestamp": 47,
    "regex": 50,
    "code": 60,
    "maxkey": 127,
}


def _kind(value: Any) -> str:
    if isinstance(value, MinKey):
        return "minkey"
    if isinstance(value, MaxKey):
        return "maxkey"
    if value is None:
        return "null"
    if isinstance(value, Code):  # a str subclass
        return "code"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float, Decimal128)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bytes):
        return "binary"
    if isinstance(value, ObjectId):
        return "objectid"
    if isinstance(value, datetime.datetime):
        return "date"
    if isinstance(value, Timestamp):
        return "timestamp"
    if isinstance(value, Regex):
        return "regex"
    raise TypeError(type(value))


def _number(value: Any) -> tuple[int, Fraction]:
    """(class, exact value): NaN below every number, infinities at the ends."""
    if isinstance(value, Decimal128):
        value = value.to_decimal()
        if value.is_nan():
            return (0, Fraction(0))
        if value.is_infinite():
            return (1 if value < 0 else 3, Fraction(0))
        return (2, Fraction(value))
    if isinstance(value, float):
        if value != value:
            return (0, Fraction(0))
        if value in (float("inf"), float("-inf")):
            return (1 if value < 0 else 3, Fraction(0))
    return (2, Fraction(value))


def _cmp(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def mongo_compare(a: Any, b: Any) -> int:
    """A reference implementation of MongoDB's woCompare for the value types generated here."""
    ka, kb = _kind(a), _kind(b)
    if ka != kb:
        return _cmp(_RANK[ka], _RANK[kb])
    if ka in ("minkey", "maxkey", "null"):
        return 0
    if ka == "number":
        return _cmp(_number(a), _number(b))
    if ka == "string":
        return _cmp(a.encode(), b.encode())
    if ka in ("bool", "objectid"):
        return _cmp(a, b) if ka == "bool" else _cmp(a.binary, b.binary)
    if ka == "date":
        return _cmp(a, b)
    if ka == "timestamp":
        return _cmp((a.time, a.inc), (b.time, b.inc))
    if ka == "binary":
        sub_a = a.subtype if isinstance(a, Binary) else 0
        sub_b = b.subtype if isinstance(b, Binary) else 0
        return _cmp((len(a), sub_a, bytes(a)), (len(b), sub_b, bytes(b)))
    if ka == "regex":
        return _cmp(
            (a.pattern.encode(), keys.regex_flags(a.flags).encode()),
            (b.pattern.encode(), keys.regex_flags(b.flags).encode()),
        )
    if ka == "code":
        return _cmp(str(a).encode(), str(b).encode())
    if ka == "array":
        for x, y in zip(a, b, strict=False):
            found = mongo_compare(x, y)
            if found:
                return found
        return _cmp(len(a), len(b))
    items_a, items_b = list(a.items()), list(b.items())
    for (name_a, x), (name_b, y) in zip(items_a, items_b, strict=False):
        found = _cmp(_RANK[_kind(x)], _RANK[_kind(y)]) or _cmp(name_a.encode(), name_b.encode()) or mongo_compare(x, y)
        if found:
            return found
    return _cmp(len(items_a), len(items_b))


_doubles = st.floats(allow_nan=True, allow_infinity=True)
_decimals = st.decimals(allow_nan=False, allow_infinity=True, places=None).filter(
    lambda d: not d.is_finite() or (abs(d.as_tuple().exponent) < 6000 and len(d.as_tuple().digits) <= 34)
)
_numbers = st.one_of(
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(Int64),
    _doubles,
    _decimals.map(lambda d: Decimal128(d)),
    st.sampled_from(
        [
            0,
            1,
            -1,
            0.5,
            1.0,
            -0.0,
            2**53,
            2**53 + 1,
            2.0**53,
            0.1,
            Decimal128("0.1"),
            Decimal128("1.0"),
            Decimal128("NaN"),
            Decimal128("-Infinity"),
            10,
            10.0,
            9.999999,
        ]
    ),
)
_scalars = st.one_of(
    _numbers,
    st.text(max_size=8),
    st.sampled_from(["", "a", "a\x00", "a\x00b", "ab", "b", "\xff", "\U0001f600"]),
    st.none(),
    st.booleans(),
    st.binary(max_size=6),
    st.builds(Binary, st.binary(max_size=4), st.sampled_from([0, 4, 5, 128])),
    st.binary(min_size=12, max_size=12).map(ObjectId),
    st.datetimes(min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 12, 31)).map(
        lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
    ),
    st.builds(Timestamp, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    st.builds(Regex, st.text(max_size=4), st.sampled_from(["", "i", "ms", "x"])),
    st.text(max_size=4).map(lambda text: Code(text + "")),
    st.just(MinKey()),
    st.just(MaxKey()),
)
values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(alphabet="abc", max_size=2), children, max_size=3)
    ),
    max_leaves=6,
)


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


@settings(max_examples=200, deadline=None)
@given(values, values)
def test_byte_order_is_mongodb_order(a, b):
    assert _sign(_cmp(keys.encode(a), keys.encode(b))) == mongo_compare(a, b)


@settings(max_examples=150, deadline=None)
@given(values, values)
def test_descending_encoding_reverses_the_order(a, b):
    down_a, down_b = keys.invert(keys.encode(a)), keys.invert(keys.encode(b))
    assert _sign(_cmp(down_a, down_b)) == -mongo_compare(a, b)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(values, min_size=2, max_size=2),
    st.lists(values, min_size=2, max_size=2),
    st.lists(st.sampled_from([1, -1]), min_size=2, max_size=2),
)
def test_compound_keys_order_field_by_field(a, b, directions):
    expected = 0
    for x, y, direction in zip(a, b, directions, strict=True):
        expected = mongo_compare(x, y) * direction
        if expected:
            break
    found = _cmp(keys.encode_compound(a, directions), keys.encode_compound(b, directions))
    assert _sign(found) == expected


@settings(max_examples=150, deadline=None)
@given(values)
def test_decoding_gives_back_an_equal_value(value):
    encoded = keys.encode(value)
    decoded, end = keys.decode(encoded)
    assert end == len(encoded)
    assert mongo_compare(decoded, value) == 0
    assert keys.encode(decoded) == encoded


@settings(max_examples=80, deadline=None)
@given(st.lists(values, min_size=1, max_size=3), st.data())
def test_compound_keys_decode_field_by_field(fields, data):
    directions = data.draw(st.lists(st.sampled_from([1, -1]), min_size=len(fields), max_size=len(fields)))
    decoded = keys.decode_compound(keys.encode_compound(fields, directions), directions)
    assert [mongo_compare(x, y) for x, y in zip(decoded, fields, strict=True)] == [0] * len(fields)


def test_numbers_of_every_type_compare_by_value():
    same = [1, Int64(1), 1.0, Decimal128("1"), Decimal128("1.000")]
    assert len({keys.encode(v) for v in same}) == 1
    ordered = [
        float("nan"),
        float("-inf"),
        -(2**63),
        -1.5,
        Decimal128("-0.1"),
        0,
        Decimal128("1E-6000"),
        0.1,
        Decimal128("0.1000000000000000055511151231257828"),
        1,
        2**53,
        2**53 + 1,
        1e300,
        float("inf"),
    ]
    encoded = [keys.encode(v) for v in ordered]
    assert encoded == sorted(encoded) and len(set(encoded)) == len(encoded)
    assert keys.encode(decimal.Decimal("2.5")) == keys.encode(2.5)


def test_types_follow_the_canonical_order():
    ordered = [
        MinKey(),
        None,
        float("nan"),
        5,
        "",
        "a",
        {},
        {"a": 1},
        [],
        [1],
        b"",
        ObjectId(),
        False,
        True,
        datetime.datetime(1970, 1, 1),
        Timestamp(0, 1),
        Regex("a"),
        Code("x"),
        MaxKey(),
    ]
    encoded = [keys.encode(v) for v in ordered]
    assert encoded == sorted(encoded)
    # A missing field indexes as null; an empty array's index key (undefined) sorts just before null.
    assert keys.encode(MISSING) == keys.encode(None)
    assert keys.encode(MinKey()) < keys.encode(UNDEFINED) < keys.encode(None)
