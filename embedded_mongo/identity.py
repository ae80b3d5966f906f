"""How the engine presents itself to drivers: a single-node replica set primary."""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from typing import Any

from bson import Int64, ObjectId

from .oplog import timestamp
from .wire import MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE, MAX_WRITE_BATCH_SIZE

VERSION = "7.0.0"
MAX_WIRE_VERSION = 21
SET_NAME = "embedded"


@dataclass
class ServerIdentity:
    """What hello reports about this server process."""

    process_id: ObjectId = field(default_factory=ObjectId)
    set_name: str = SET_NAME
    election_id: ObjectId = field(default_factory=lambda: ObjectId("7fffffff0000000000000001"))


def hello_reply(command: dict, connection_id: int, me: str, identity: ServerIdentity, cluster_ts: int) -> dict:
    """The reply to hello/isMaster (needs no data, so the event loop answers it directly)."""
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    op_time = {"ts": timestamp(cluster_ts), "t": Int64(1)}
    write_date = datetime.datetime.fromtimestamp((cluster_ts >> 32) or time.time(), datetime.UTC).replace(tzinfo=None)
    reply: dict[str, Any] = {
        "topologyVersion": {"processId": identity.process_id, "counter": Int64(0)},
        "hosts": [me],
        "setName": identity.set_name,
        "setVersion": 1,
        "ismaster" if next(iter(command)) != "hello" else "isWritablePrimary": True,
        "secondary": False,
        "primary": me,
        "me": me,
        "electionId": identity.election_id,
        "lastWrite": {
            "opTime": op_time,
            "lastWriteDate": write_date,
            "majorityOpTime": op_time,
            "majorityWriteDate": write_date,
        },
        "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE,
        "maxMessageSizeBytes": MAX_MESSAGE_SIZE,
        "maxWriteBatchSize": MAX_WRITE_BATCH_SIZE,
        "localTime": now,
        "logicalSessionTimeoutMinutes": 30,
        "connectionId": connection_id,
        "minWireVersion": 0,
        "maxWireVersion": MAX_WIRE_VERSION,
        "readOnly": False,
    }
    if command.get("helloOk"):
        reply["helloOk"] = True
    reply["ok"] = 1.0
    return reply


def server_info(me: str) -> dict[str, Any]:
    """explain's serverInfo."""
    host, _, port = me.rpartition(":")
    return {"host": host, "port": int(port) if port.isdigit() else 0, "version": VERSION, "gitVersion": "embedded"}
