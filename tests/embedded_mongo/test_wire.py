"""Engine-only tests: raw wire protocol handling and robustness."""

from __future__ import annotations

import asyncio
import struct
import zlib

import bson

from embedded_mongo import EmbeddedMongo

from .conftest import engine_only

pytestmark = engine_only

OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013


def _op_msg(request_id: int, command: dict, flags: int = 0, sequences: dict | None = None) -> bytes:
    body = struct.pack("<I", flags) + b"\x00" + bson.encode(command)
    for name, docs in (sequences or {}).items():
        payload = name.encode() + b"\x00" + b"".join(bson.encode(d) for d in docs)
        body += b"\x01" + struct.pack("<i", len(payload) + 4) + payload
    if flags & 1:
        body += struct.pack("<I", zlib.crc32(body))  # any checksum: the server ignores it
    return struct.pack("<iiii", 16 + len(body), request_id, 0, OP_MSG) + body


def _op_query(request_id: int, namespace: str, query: dict) -> bytes:
    body = struct.pack("<i", 0) + namespace.encode() + b"\x00" + struct.pack("<ii", 0, -1)
    body += bson.encode(query)
    return struct.pack("<iiii", 16 + len(body), request_id, 0, OP_QUERY) + body


async def _reply(reader: asyncio.StreamReader) -> tuple[int, int, dict]:
    length, _, response_to, op_code = struct.unpack("<iiii", await reader.readexactly(16))
    body = await reader.readexactly(length - 16)
    if op_code == OP_MSG:
        return op_code, response_to, bson.decode(body[5:])
    return op_code, response_to, bson.decode(body[20:])


async def test_legacy_handshake_and_op_msg(tmp_path):
    async with EmbeddedMongo(None) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(_op_query(7, "admin.$cmd", {"isMaster": 1, "helloOk": True}))
            op_code, response_to, reply = await _reply(reader)
            assert (op_code, response_to) == (OP_REPLY, 7)
            assert reply["ismaster"] is True and reply["helloOk"] is True
            assert reply["maxWireVersion"] == 21
            # A single-node replica set primary, so drivers use sessions, retryable writes and change streams.
            assert reply["setName"] == "embedded" and reply["hosts"] == [f"127.0.0.1:{server.port}"]
            assert reply["me"] == reply["primary"] == f"127.0.0.1:{server.port}"

            writer.write(_op_msg(8, {"insert": "c", "$db": "t"}, sequences={"documents": [{"_id": 1}, {"_id": 2}]}))
            op_code, response_to, reply = await _reply(reader)
            assert (op_code, response_to, reply["n"]) == (OP_MSG, 8, 2)

            # moreToCome: executed, never answered.
            writer.write(_op_msg(9, {"insert": "c", "documents": [{"_id": 3}], "$db": "t"}, flags=2))
            writer.write(_op_msg(10, {"count": "c", "$db": "t"}, flags=1))
            op_code, response_to, reply = await _reply(reader)
            assert (response_to, reply["n"]) == (10, 3)
        finally:
            writer.close()
            await writer.wait_closed()


async def test_garbage_closes_only_that_connection(tmp_path):
    async with EmbeddedMongo(None) as server:
        bad_reader, bad_writer = await asyncio.open_connection("127.0.0.1", server.port)
        bad_writer.write(struct.pack("<iiii", 3, 1, 0, OP_MSG) + b"\xff" * 32)
        assert await bad_reader.read() == b""
        bad_writer.close()

        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(_op_msg(1, {"ping": 1, "$db": "admin"}))
            assert (await _reply(reader))[2]["ok"] == 1.0
            writer.write(_op_msg(2, {"find": "c", "filter": {"$nope": 1}, "$db": "t"}))
            error = (await _reply(reader))[2]
            assert error["ok"] == 0.0 and isinstance(error["code"], int) and error["errmsg"]
            writer.write(_op_msg(3, {"ping": 1, "$db": "admin"}))
            assert (await _reply(reader))[2]["ok"] == 1.0
        finally:
            writer.close()
            await writer.wait_closed()
