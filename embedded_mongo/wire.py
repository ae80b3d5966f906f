"""MongoDB wire protocol framing: OP_MSG and the legacy OP_QUERY/OP_REPLY handshake.

Framing a message only moves bytes and is done on the event loop; decoding it (`parse`) is done by
the engine thread (the loop decodes only the small handshake commands it answers itself).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import bson
from bson.codec_options import CodecOptions, DatetimeConversion

OP_REPLY = 1
OP_QUERY = 2004
OP_COMPRESSED = 2012
OP_MSG = 2013

CHECKSUM_PRESENT = 1 << 0
MORE_TO_COME = 1 << 1
EXHAUST_ALLOWED = 1 << 16

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
class Message:
    """One framed client message, not yet decoded."""

    request_id: int
    op_code: int
    body: bytes

    @property
    def flags(self) -> int:
        """OP_MSG flag bits (0 for other opcodes)."""
        if self.op_code != OP_MSG or len(self.body) < 4:
            return 0
        return int(_UINT32.unpack_from(self.body, 0)[0])

    @property
    def more_to_come(self) -> bool:
        """Whether the client expects no reply (unacknowledged write)."""
        return bool(self.flags & MORE_TO_COME)

    def command_name(self) -> str | None:
        """The command's name, read without decoding the message (None if it is not plain)."""
        body = self.body
        if self.op_code == OP_MSG:
            if len(body) < 11 or body[4] != 0:
                return None
            start = 4 + 1 + 4 + 1  # flags, section kind, document size, element type
        elif self.op_code == OP_QUERY:
            try:
                name_end = body.index(b"\x00", 4)
            except ValueError:
                return None
            if not body[4:name_end].endswith(b".$cmd"):
                return None
            start = name_end + 1 + 8 + 4 + 1
        else:
            return None
        end = body.find(b"\x00", start)
        if end < 0:
            return None
        try:
            return body[start:end].decode()
        except UnicodeDecodeError:
            return None


@dataclass
class Request:
    """One decoded client message carrying a command."""

    request_id: int
    op_code: int
    database: str
    command: dict[str, Any]
    more_to_come: bool = False
    exhaust_allowed: bool = False
    # Raw BSON of documents sent as OP_MSG document sequences, so inserts can store them as sent.
    raw_documents: dict[str, list[bytes]] = field(default_factory=dict)


def parse(message: Message) -> Request:
    """Decode a message into a command."""
    if message.op_code == OP_MSG:
        return _parse_op_msg(message.request_id, message.body)
    return _parse_op_query(message.request_id, message.body)


def _parse_op_msg(request_id: int, body: bytes) -> Request:
    if len(body) < 5:
        raise ProtocolError("OP_MSG too short")
    (flags,) = _UINT32.unpack_from(body, 0)
    end = len(body) - 4 if flags & CHECKSUM_PRESENT else len(body)
    position = 4
    command: dict[str, Any] | None = None
    raw: dict[str, list[bytes]] = {}
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
                documents = raw.setdefault(name, [])
                offset, stop = name_end + 1, position + size
                while offset < stop:
                    (doc_size,) = _INT32.unpack_from(body, offset)
                    if doc_size < 5 or offset + doc_size > stop:
                        raise ProtocolError("OP_MSG document sequence overruns its section")
                    documents.append(body[offset : offset + doc_size])
                    offset += doc_size
            else:
                raise ProtocolError(f"unknown OP_MSG section kind {kind}")
            position += size
        if command is None:
            raise ProtocolError("OP_MSG without a body section")
        for name, documents in raw.items():
            command.setdefault(name, [])
            command[name].extend(bson.decode(doc, codec_options=CODEC) for doc in documents)
    except (bson.errors.BSONError, ValueError, struct.error) as exc:
        raise ProtocolError(f"invalid OP_MSG: {exc}") from exc
    database = command.get("$db", "admin")
    return Request(
        request_id, OP_MSG, str(database), command, bool(flags & MORE_TO_COME), bool(flags & EXHAUST_ALLOWED), raw
    )


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


def encode_reply(
    op_code: int, request_id: int, response_to: int, document: dict[str, Any], more_to_come: bool = False
) -> bytes:
    """The reply to a request: OP_MSG for OP_MSG, OP_REPLY for a legacy OP_QUERY."""
    encoded = bson.encode(document, codec_options=CODEC)
    if op_code == OP_QUERY:
        payload = _REPLY_PREFIX.pack(0, 0, 0, 1) + encoded
        return _HEADER.pack(_HEADER.size + len(payload), request_id, response_to, OP_REPLY) + payload
    flags = MORE_TO_COME if more_to_come else 0
    payload = _UINT32.pack(flags) + b"\x00" + encoded
    return _HEADER.pack(_HEADER.size + len(payload), request_id, response_to, OP_MSG) + payload


def encoded(documents: Iterable[dict]) -> Iterator[bytes]:
    """Documents as BSON, lazily."""
    for doc in documents:
        yield bson.encode(doc, codec_options=CODEC)
