"""Order-preserving byte encoding of BSON values, following MongoDB's cross-type comparison order.

`encode(a) < encode(b)` (as bytes) exactly when MongoDB orders a before b, and equal encodings mean
equal values (1, 1.0, Int64(1) and Decimal128("1.0") all encode alike). Every encoding starts with
a byte giving its type class and no encoding is a proper prefix of another, so encodings can be
concatenated into compound keys and inverted byte-wise (`invert`) for descending fields.
"""

from __future__ import annotations

import datetime
import decimal
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from bson import Binary, Code, DBRef, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.datetime_ms import DatetimeMS

from .values import MISSING, UNDEFINED

# Type classes in MongoDB's canonical order; 0x00 is left free as the end marker of documents.
MINKEY, UNDEF, NULL, NUMBER, STRING, OBJECT, ARRAY = 0x0A, 0x0F, 0x14, 0x1E, 0x28, 0x32, 0x3C
BINARY, OBJECTID, BOOL, DATE, TIMESTAMP, REGEX, CODE, CODE_SCOPE, MAXKEY = (
    0x46,
    0x50,
    0x5A,
    0x64,
    0x6E,
    0x78,
    0x82,
    0x8C,
    0xF0,
)

# Number sub-classes, in numeric order.
_NAN, _NEG_INF, _NEG, _ZERO, _POS, _POS_INF = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
_EXPONENT_BIAS = 32768

_INVERT = bytes(255 - i for i in range(256))
_PAIRS = {f"{i:02d}": bytes([i + 1]) for i in range(100)}
_EPOCH = datetime.datetime(1970, 1, 1)
_ONE_MS = datetime.timedelta(milliseconds=1)
_DATE_BIAS = 1 << 63
_REGEX_FLAGS = [
    ("i", re.IGNORECASE),
    ("l", re.LOCALE),
    ("m", re.MULTILINE),
    ("s", re.DOTALL),
    ("u", re.UNICODE),
    ("x", re.VERBOSE),
]

NULL_KEY = bytes([NULL])
MINKEY_KEY = bytes([MINKEY])
MAXKEY_KEY = bytes([MAXKEY])


def invert(data: bytes) -> bytes:
    """The encoding for a descending field: every byte inverted, so the order reverses."""
    return data.translate(_INVERT)


def successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with prefix (None: no bound)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def encode(value: Any) -> bytes:
    """The order-preserving encoding of one BSON value (missing encodes like null)."""
    encoder = _ENCODERS.get(type(value))
    if encoder is not None:
        return encoder(value)
    return _encode_other(value)


def encode_compound(values: Sequence[Any], directions: Sequence[int]) -> bytes:
    """A compound key: the fields' encodings in order, descending ones inverted."""
    parts = []
    for value, direction in zip(values, directions, strict=True):
        encoded = encode(value)
        parts.append(encoded if direction > 0 else encoded.translate(_INVERT))
    return b"".join(parts)


# -- numbers -------------------------------------------------------------------------------------


def _magnitude(digits: str, exponent: int) -> bytes:
    """Body of a non-zero number 0.<digits> x 10**exponent (digits without leading/trailing zeros)."""
    if len(digits) % 2:
        digits += "0"
    pairs = _PAIRS
    return (
        (exponent + _EXPONENT_BIAS).to_bytes(2, "big")
        + b"".join([pairs[digits[i : i + 2]] for i in range(0, len(digits), 2)])
        + b"\x00"
    )


def _encode_int(value: int) -> bytes:
    if value == 0:
        return b"\x1e\x04"
    text = str(-value if value < 0 else value)
    body = _magnitude(text.rstrip("0"), len(text))
    if value > 0:
        return b"\x1e\x05" + body
    return b"\x1e\x03" + body.translate(_INVERT)


def _encode_decimal(value: decimal.Decimal) -> bytes:
    if value.is_nan():
        return b"\x1e\x01"
    if value.is_infinite():
        return b"\x1e\x02" if value < 0 else b"\x1e\x06"
    if value.is_zero():
        return b"\x1e\x04"
    sign, digit_tuple, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    body = _magnitude(digits.rstrip("0"), len(digits) + exponent)
    if sign:
        return b"\x1e\x03" + body.translate(_INVERT)
    return b"\x1e\x05" + body


def _encode_float(value: float) -> bytes:
    if value != value:
        return b"\x1e\x01"
    if value in (float("inf"), float("-inf")):
        return b"\x1e\x06" if value > 0 else b"\x1e\x02"
    if value.is_integer():
        return _encode_int(int(value))
    return _encode_decimal(decimal.Decimal(value))  # exact: every double is a finite decimal


def _encode_decimal128(value: Decimal128) -> bytes:
    return _encode_decimal(value.to_decimal())


# -- other scalars -------------------------------------------------------------------------------


def _escape(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass").replace(b"\x00", b"\x00\xff") + b"\x00\x00"


def _encode_str(value: str) -> bytes:
    return b"\x28" + _escape(value)


def _encode_bool(value: bool) -> bytes:
    return b"\x5a\x01" if value else b"\x5a\x00"


def _encode_none(value: Any) -> bytes:
    return NULL_KEY


def _encode_oid(value: ObjectId) -> bytes:
    return b"\x50" + value.binary


def _encode_datetime(value: datetime.datetime) -> bytes:
    if value.tzinfo is not None:
        offset = value.utcoffset()
        value = value.replace(tzinfo=None) - (offset or datetime.timedelta())
    return _encode_millis((value - _EPOCH) // _ONE_MS)


def _encode_millis(millis: int) -> bytes:
    return b"\x64" + (millis + _DATE_BIAS).to_bytes(8, "big")


def _encode_datetime_ms(value: DatetimeMS) -> bytes:
    return _encode_millis(int(value))


def _encode_binary(value: bytes) -> bytes:
    subtype = value.subtype if isinstance(value, Binary) else 0
    return b"\x46" + len(value).to_bytes(4, "big") + bytes([subtype]) + bytes(value)


def _encode_uuid(value: uuid.UUID) -> bytes:
    return b"\x46" + (16).to_bytes(4, "big") + b"\x04" + value.bytes


def _encode_timestamp(value: Timestamp) -> bytes:
    return b"\x6e" + value.time.to_bytes(4, "big") + value.inc.to_bytes(4, "big")


def regex_flags(flags: int | str) -> str:
    """Regex flags as MongoDB stores them: letters in alphabetical order."""
    if isinstance(flags, str):
        return "".join(sorted(flags))
    return "".join(letter for letter, bit in _REGEX_FLAGS if flags & bit)


def _encode_regex(value: Regex | re.Pattern) -> bytes:
    pattern = value.pattern
    if isinstance(pattern, bytes):
        pattern = pattern.decode("utf-8", "surrogateescape")
    return b"\x78" + _escape(pattern) + _escape(regex_flags(value.flags))


def _encode_code(value: Code) -> bytes:
    if value.scope is None:
        return b"\x82" + _escape(str(value))
    return b"\x8c" + _escape(str(value)) + _encode_dict(dict(value.scope))


def _encode_dict(value: dict) -> bytes:
    parts = [b"\x32"]
    for name, item in value.items():
        encoded = encode(item)
        parts.append(encoded[:1])
        parts.append(name.encode("utf-8", "surrogatepass") + b"\x00")
        parts.append(encoded[1:])
    parts.append(b"\x00")
    return b"".join(parts)


def _encode_list(value: list | tuple) -> bytes:
    return b"\x3c" + b"".join([encode(item) for item in value]) + b"\x00"


def _encode_other(value: Any) -> bytes:
    if value is MISSING:
        return NULL_KEY
    if value is UNDEFINED:
        return bytes([UNDEF])
    if isinstance(value, bool):
        return _encode_bool(value)
    if isinstance(value, int):
        return _encode_int(value)
    if isinstance(value, float):
        return _encode_float(value)
    if isinstance(value, str):
        return _encode_str(value)
    if isinstance(value, DBRef):
        return _encode_dict(value.as_doc())
    if isinstance(value, dict):
        return _encode_dict(value)
    if isinstance(value, (list, tuple)):
        return _encode_list(value)
    if isinstance(value, datetime.datetime):
        return _encode_datetime(value)
    if isinstance(value, Code):
        return _encode_code(value)
    if isinstance(value, bytes):
        return _encode_binary(value)
    if isinstance(value, decimal.Decimal):
        return _encode_decimal(value)
    raise TypeError(f"cannot encode {type(value).__name__} as an index key")


_ENCODERS: dict[type, Callable[[Any], bytes]] = {
    int: _encode_int,
    Int64: _encode_int,
    float: _encode_float,
    bool: _encode_bool,
    str: _encode_str,
    type(None): _encode_none,
    ObjectId: _encode_oid,
    datetime.datetime: _encode_datetime,
    DatetimeMS: _encode_datetime_ms,
    dict: _encode_dict,
    list: _encode_list,
    tuple: _encode_list,
    bytes: _encode_binary,
    Binary: _encode_binary,
    Decimal128: _encode_decimal128,
    decimal.Decimal: _encode_decimal,
    Timestamp: _encode_timestamp,
    Regex: _encode_regex,
    re.Pattern: _encode_regex,
    Code: _encode_code,
    uuid.UUID: _encode_uuid,
    MinKey: lambda value: MINKEY_KEY,
    MaxKey: lambda value: MAXKEY_KEY,
}


# -- decoding ------------------------------------------------------------------------------------


def decode(data: bytes, position: int = 0) -> tuple[Any, int]:
    """The value encoded at position (numbers come back as int, float or Decimal128) and the end."""
    kind = data[position]
    position += 1
    if kind == NUMBER:
        return _decode_number(data, position)
    if kind == STRING:
        return _unescape(data, position)
    if kind == OBJECT:
        doc: dict[str, Any] = {}
        while data[position] != 0:
            element_kind = data[position]
            name_end = data.index(b"\x00", position + 1)
            name = data[position + 1 : name_end].decode("utf-8", "surrogatepass")
            value, position = decode(data[:name_end] + bytes([element_kind]) + data[name_end + 1 :], name_end)
            doc[name] = value
        return doc, position + 1
    if kind == ARRAY:
        items = []
        while data[position] != 0:
            item, position = decode(data, position)
            items.append(item)
        return items, position + 1
    if kind == NULL:
        return None, position
    if kind == BOOL:
        return data[position] == 1, position + 1
    if kind == OBJECTID:
        return ObjectId(data[position : position + 12]), position + 12
    if kind == DATE:
        millis = int.from_bytes(data[position : position + 8], "big") - _DATE_BIAS
        try:
            return _EPOCH + millis * _ONE_MS, position + 8
        except OverflowError:
            return DatetimeMS(millis), position + 8
    if kind == TIMESTAMP:
        return (
            Timestamp(
                int.from_bytes(data[position : position + 4], "big"),
                int.from_bytes(data[position + 4 : position + 8], "big"),
            ),
            position + 8,
        )
    if kind == BINARY:
        length = int.from_bytes(data[position : position + 4], "big")
        subtype = data[position + 4]
        raw = data[position + 5 : position + 5 + length]
        return (raw if subtype == 0 else Binary(raw, subtype)), position + 5 + length
    if kind == REGEX:
        pattern, position = _unescape(data, position)
        flags, position = _unescape(data, position)
        return Regex(pattern, flags), position
    if kind == CODE:
        code, position = _unescape(data, position)
        return Code(code), position
    if kind == CODE_SCOPE:
        code, position = _unescape(data, position)
        scope, position = decode(data, position)
        return Code(code, scope), position
    if kind == MINKEY:
        return MinKey(), position
    if kind == MAXKEY:
        return MaxKey(), position
    if kind == UNDEF:
        return UNDEFINED, position
    raise ValueError(f"unknown key type byte {kind:#x} at {position - 1}")


def decode_compound(data: bytes, directions: Sequence[int]) -> list[Any]:
    """The field values of a compound key."""
    values = []
    position = 0
    for direction in directions:
        if direction > 0:
            value, position = decode(data, position)
        else:
            rest = data[position:].translate(_INVERT)
            value, used = decode(rest, 0)
            position += used
        values.append(value)
    return values


def _unescape(data: bytes, position: int) -> tuple[str, int]:
    out = bytearray()
    while True:
        end = data.index(b"\x00", position)
        out += data[position:end]
        if data[end + 1] == 0:
            return out.decode("utf-8", "surrogatepass"), end + 2
        out.append(0)
        position = end + 2


def _decode_number(data: bytes, position: int) -> tuple[Any, int]:
    sub = data[position]
    position += 1
    if sub == _NAN:
        return float("nan"), position
    if sub == _ZERO:
        return 0, position
    if sub in (_NEG_INF, _POS_INF):
        return (float("-inf") if sub == _NEG_INF else float("inf")), position
    negative = sub == _NEG
    end = position + 2
    terminator = 0xFF if negative else 0x00
    while data[end] != terminator:
        end += 1
    body = data[position : end + 1]
    if negative:
        body = body.translate(_INVERT)
    exponent = int.from_bytes(body[:2], "big") - _EXPONENT_BIAS
    digits = "".join(f"{byte - 1:02d}" for byte in body[2:-1]).rstrip("0")
    number = decimal.Decimal(f"{'-' if negative else ''}0.{digits}E{exponent}")
    return _python_number(number), end + 1


def _python_number(number: decimal.Decimal) -> Any:
    if number == number.to_integral_value() and -(1 << 63) <= number < (1 << 63):
        return int(number)
    as_float = float(number)
    if decimal.Decimal(as_float) == number:
        return as_float
    try:
        return Decimal128(number)
    except (decimal.InvalidOperation, ValueError, decimal.Inexact, decimal.Rounded):
        return as_float
