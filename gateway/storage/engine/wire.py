"""MongoDB wire protocol framing: OP_MSG and the legacy OP_QUERY/OP_REPLY handshake."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from typing import Any

import bson
from bson.codec_options import CodecOptions, DatetimeConversion

OP_REPLY = 1
OP_QUERY = 2004
OP_COMPRESSED = 2012
OP_MSG = 2013

CHECKSUM_PRESENT = 1 << 0
MORE_TO_COME = 1 << 1

MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024
MAX_MESSAGE_SIZE = 48_000_000
MAX_WRITE_BATCH_SIZE = 100_000

_HEADER = struct.Struct("<iiii")
_INT32 = struct.Struct("<i")
_UINT32 = struct.Struct("<I")
_REPLY_PREFIX = struct.Struct("<iqii")

# Datetimes are kept naive UTC (as mongomock expects), and out-of-range ones survive as DatetimeMS.
CODEC: CodecOptions = CodecOptions(tz_aware=False, datetime_conversion=DatetimeConversion.DATETIME_AUTO)


class ProtocolError(Exception):
    """A malformed message; the connection is closed."""


@dataclass
class Request:
    """One decoded client message carrying a command."""

    request_id: int
    op_code: int
    database: str
    command: dict[str, Any]
    more_to_come: bool = False


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """Read the next message; None at a clean end of stream."""
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("connection closed inside a message header") from exc
        return None
    length, request_id, _response_to, op_code = _HEADER.unpack(header)
    if length < _HEADER.size or length > MAX_MESSAGE_SIZE + 1024 * 1024:
        raise ProtocolError(f"invalid message length {length}")
    body = await reader.readexactly(length - _HEADER.size)
    if op_code == OP_MSG:
        return _parse_op_msg(request_id, body)
    if op_code == OP_QUERY:
        return _parse_op_query(request_id, body)
    raise ProtocolError(f"unsupported opCode {op_code}")


def _parse_op_msg(request_id: int, body: bytes) -> Request:
    if len(body) < 5:
        raise ProtocolError("OP_MSG too short")
    (flags,) = _UINT32.unpack_from(body, 0)
    end = len(body) - 4 if flags & CHECKSUM_PRESENT else len(body)
    position = 4
    command: dict[str, Any] | None = None
    sequences: dict[str, list] = {}
    try:
        while position < end:
            kind = body[position]
            position += 1
            (size,) = _INT32.unpack_from(body, position)
            if size < 5 or position + size > end:
                raise ProtocolError("OP_MSG section overruns the message")
            if kind == 0:
                command = bson.decode(body[position : position + size], codec_options=CODEC)
            elif kind == 1:
                name_end = body.index(b"\x00", position + 4, position + size)
                name = body[position + 4 : name_end].decode()
                documents = bson.decode_all(body[name_end + 1 : position + size], CODEC)
                sequences.setdefault(name, []).extend(documents)
            else:
                raise ProtocolError(f"unknown OP_MSG section kind {kind}")
            position += size
    except (bson.errors.BSONError, ValueError, struct.error) as exc:
        raise ProtocolError(f"invalid OP_MSG: {exc}") from exc
    if command is None:
        raise ProtocolError("OP_MSG without a body section")
    for name, documents in sequences.items():
        command.setdefault(name, [])
        command[name].extend(documents)
    database = command.get("$db", "admin")
    return Request(request_id, OP_MSG, str(database), command, bool(flags & MORE_TO_COME))


def _parse_op_query(request_id: int, body: bytes) -> Request:
    try:
        name_end = body.index(b"\x00", 4)
        namespace = body[4:name_end].decode()
        position = name_end + 1 + 8  # numberToSkip, numberToReturn
        (size,) = _INT32.unpack_from(body, position)
        query = bson.decode(body[position : position + size], codec_options=CODEC)
    except (bson.errors.BSONError, ValueError, struct.error) as exc:
        raise ProtocolError(f"invalid OP_QUERY: {exc}") from exc
    if "$query" in query:
        query = query["$query"]
    database, _, collection = namespace.partition(".")
    if collection != "$cmd":
        query = {"$legacyQuery": namespace}
    return Request(request_id, OP_QUERY, database, query)


def encode_op_msg(request_id: int, response_to: int, document: dict[str, Any]) -> bytes:
    """An OP_MSG reply with a single body section."""
    payload = b"\x00\x00\x00\x00\x00" + bson.encode(document, codec_options=CODEC)
    return _HEADER.pack(_HEADER.size + len(payload), request_id, response_to, OP_MSG) + payload


def encode_op_reply(request_id: int, response_to: int, document: dict[str, Any]) -> bytes:
    """A legacy OP_REPLY carrying one document (answers OP_QUERY commands)."""
    payload = _REPLY_PREFIX.pack(0, 0, 0, 1) + bson.encode(document, codec_options=CODEC)
    return _HEADER.pack(_HEADER.size + len(payload), request_id, response_to, OP_REPLY) + payload
