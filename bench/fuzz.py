"""Hostile inputs at every surface of the running gateway; prints what it answered and what it logged.

Starts `python -m gateway run` as a subprocess on the embedded engine, with a customer bot, the operator
bot, WhatsApp, the widget and the API configured against the Telegram and Twilio emulators (run inside this
process). After a short warm-up that creates real conversations, it sends seeded hostile inputs surface by
surface with bounded concurrency, then prints per surface the inputs sent, the HTTP status codes and the
widget sockets' close codes, the tracebacks in the gateway's log, and for every response >= 500, abnormal
close or traceback the code site (the innermost frame of our code) with one example input. It also lists
updates whose handler raised but which were kept as dead letters and answered 200 (no traceback is logged
for them, so the done-criterion does not see them).

Done when: 0 responses >= 500, 0 sockets closed 1006/1011 (or dropped / unanswered), 0 tracebacks.
It measures and does not assert: the exit code is 0 whatever it finds.

    python bench/fuzz.py [--seed 1] [--count 10000] [--only SURFACE] [--concurrency 16] [--keep] [--save FILE]

SURFACE: telegram, operator, whatsapp, api, media, widget. An example is matched to its traceback by an id the
log line names, by the widget's error frame, by the thread the line names, or by time; afterwards candidates
are replayed one at a time into a gateway in this process, and "confirmed by replay" means the same code site
raised again. Only "by time" and "by the thread it names" examples are guesses.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import contextlib
import copy
import dataclasses
import json
import logging
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, quote_from_bytes

import aiohttp
from aiohttp import ClientSession, ClientTimeout, WSMsgType
from aiohttp.test_utils import TestServer
from bson import ObjectId
from multidict import CIMultiDict, MultiDict
from twilio.request_validator import RequestValidator
from yarl import URL

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the emulators live in tests/, not installed

import gateway.dead_letters
from gateway.app import create_app
from gateway.config import WebWidgetSettings, parse_settings
from gateway.keys import BUS
from gateway.media import MediaLinks
from gateway.tokens import Signer
from tests.emulators.telegram import TelegramEmulator
from tests.emulators.twilio import SAMPLE_JPEG, SAMPLE_OGG, SAMPLE_PDF, TwilioEmulator, build_vcard

ROOT = Path(__file__).resolve().parent.parent

SURFACES: dict[str, float] = {
    "telegram": 0.25,
    "operator": 0.20,
    "whatsapp": 0.20,
    "api": 0.17,
    "media": 0.05,
    "widget": 0.13,
}
DEFAULT_COUNT = 10_000

CUSTOMER_BOT = "7100001:customer-bot-token"
BOT_NAME = "support"
TG_SECRET = "fuzz-telegram-secret"
OPERATOR_BOT = "7000001:operator-bot-token"
OP_SECRET = "fuzz-operator-secret"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
OLGA, SAM, BOSS, EVE = 1001, 1002, 1003, 6666
OPERATORS = (OLGA, SAM, BOSS)
SUPERVISORS = -1009876543210
CUSTOMERS = tuple(range(5001, 5041))
ACCOUNT_SID = "AC" + "f0" * 16
AUTH_TOKEN = "fuzz-twilio-auth-token"
SENDER = "whatsapp:+14155238886"
WA_NUMBERS = tuple(f"+1415555{n:04d}" for n in range(2601, 2631))
API_TOKEN = "fuzz-api-token-0123456789"
WIDGET_SECRET = "fuzz-widget-secret-0123456789"
SERVER_SECRET = "fuzz-server-secret-0123456789"
WIDGET_ORIGIN = "https://shop.example"
INBOUND = "/channels/whatsapp/inbound"
STATUS = "/channels/whatsapp/status"
NOW = 1767225600
REQUEST_TIMEOUT = 60.0
PROBE_TIMEOUT = 15.0
QUIET = 3.0
OUR_PACKAGES = ("gateway", "channels", "operators", "embedded_mongo")


# -- hostile values ------------------------------------------------------------------------------


def _nested(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


HOSTILE_STRINGS: tuple[tuple[str, str], ...] = (
    ("empty", ""),
    ("blank", "   "),
    ("NUL", "\x00"),
    ("NUL inside", "a\x00b"),
    ("lone surrogate", "\ud800"),
    ("lone low surrogate", "x\udfffy"),
    ("superscript digit", "²"),
    ("Arabic-Indic digits", "١٧"),
    ("fullwidth digits", "１７"),
    ("emoji", "🙂"),
    ("4097 emoji", "🙂" * 4097),
    ("70k chars", "A" * 70_000),
    ("RTL override", "\u202egnp.exe"),
    ("zero-width", "\u200b\u200d\ufeff"),
    ("300 combining marks", "e" + "\u0301" * 300),
    ("max code point", "\U0010ffff"),
    ("non-characters", "\uffff\ufffe"),
    ("format string", "%s%n%d{0}{!r}"),
    ("HTML", "<script>alert(1)</script><b>"),
    ("Mongo operator", "$where"),
    ("dotted", "a.b.c"),
    ("CRLF", "a\r\nb\nc"),
    ("SQL", "'; DROP TABLE x; --"),
    ("path traversal", "../../../etc/passwd"),
    ("20-digit number", "99999999999999999999"),
    ("minus one", "-1"),
    ("1e309", "1e309"),
    ("NaN", "NaN"),
    ("#1", "#1"),
    ("padded number", "  1  "),
    ("URL", "http://127.0.0.1:1/x"),
    ("control chars", "\x01\x02\x1b[31m\x7f"),
    ("backslashes", "\\" * 100),
    ("mixed scripts", "Ωmega Ёж 漢字 עברית"),
)
HOSTILE_INTS: tuple[tuple[str, int], ...] = (
    ("0", 0),
    ("-1", -1),
    ("2**31-1", 2**31 - 1),
    ("2**31", 2**31),
    ("2**53+1", 2**53 + 1),
    ("2**63-1", 2**63 - 1),
    ("2**63", 2**63),
    ("2**64", 2**64),
    ("-2**63-1", -(2**63) - 1),
    ("10**12", 10**12),
    ("10**20", 10**20),
    ("10**100", 10**100),
    ("-10**30", -(10**30)),
)
HOSTILE_FLOATS: tuple[tuple[str, float], ...] = (
    ("float max", 1.7976931348623157e308),
    ("-float max", -1.7976931348623157e308),
    ("denormal", 5e-324),
    ("0.5", 0.5),
    ("-0.0", -0.0),
)
WRONG_TYPES: tuple[tuple[str, Any], ...] = (
    ("null", None),
    ("true", True),
    ("false", False),
    ("[]", []),
    ("{}", {}),
    ("list", [1, "a", None]),
    ("object", {"a": {"b": [1]}}),
    ("depth 10", _nested(10)),
    ("depth 200", _nested(200)),
)
# Text that is fine as text: the realistic part of the traffic.
PLAIN_TEXTS = (
    "Hello, I need help with my order",
    "Where is my parcel? Order #4411",
    "Здравствуйте! Заказ не пришёл",
    "¿Puedo cambiar la dirección?",
    "Thanks 🙏",
    "my email is ann@example.com and phone +1 415 555 2671",
    "ok",
)


def pick(rng: random.Random, pool: Sequence[tuple[str, Any]]) -> tuple[str, Any]:
    """One (class name, value) of a pool; the value is a copy the caller may change."""
    name, value = rng.choice(pool)
    return name, copy.deepcopy(value)


def hostile_value(rng: random.Random, like: Any = None) -> tuple[str, Any]:
    """A hostile replacement for `like`, usually of its JSON type."""
    same_type = rng.random() < 0.7
    if isinstance(like, bool):
        pool: Sequence[tuple[str, Any]] = WRONG_TYPES
    elif isinstance(like, int) and same_type:
        pool = HOSTILE_INTS
    elif isinstance(like, float) and same_type:
        pool = HOSTILE_FLOATS + HOSTILE_INTS
    elif isinstance(like, str) and same_type:
        pool = HOSTILE_STRINGS
    else:
        pool = rng.choice((HOSTILE_STRINGS, HOSTILE_INTS, HOSTILE_FLOATS, WRONG_TYPES))
    return pick(rng, pool)


def hostile_text(rng: random.Random) -> tuple[str, str]:
    """A hostile string and its class name."""
    return pick(rng, HOSTILE_STRINGS)


Path_ = tuple[str | int, ...]


def _paths(doc: Any, prefix: Path_ = ()) -> list[Path_]:
    found: list[Path_] = []
    items: Iterable[tuple[str | int, Any]] = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    )
    for key, value in items:
        path = (*prefix, key)
        found.append(path)
        if len(path) < 12:
            found.extend(_paths(value, path))
    return found


def _parent(doc: Any, path: Path_) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def path_label(path: Path_) -> str:
    """('message', 'photo', 2, 'width') -> 'message.photo[].width'."""
    out = ""
    for key in path:
        out += "[]" if isinstance(key, int) else ("." if out else "") + key
    return out


def mutate(doc: Any, rng: random.Random, times: int = 1, skip: Sequence[str] = ()) -> list[str]:
    """Change `doc` in place at random places; returns what was done, as labels."""
    labels: list[str] = []
    for _ in range(times):
        paths = [p for p in _paths(doc) if path_label(p) not in skip]
        if not paths:
            break
        path = rng.choice(paths)
        parent = _parent(doc, path)
        key = path[-1]
        action = rng.random()
        if action < 0.72:
            name, value = hostile_value(rng, parent[key])
            parent[key] = value
            labels.append(f"{path_label(path)}={name}")
        elif action < 0.87 and isinstance(parent, dict):
            del parent[key]
            labels.append(f"no {path_label(path)}")
        else:
            target = parent if isinstance(parent, dict) else None
            if target is None:
                continue
            name, value = hostile_value(rng)
            extra, _ = hostile_text(rng)
            target[extra or "_"] = value
            labels.append(f"extra key {extra[:20]!r}={name}")
    return labels


def json_bytes(doc: Any, rng: random.Random) -> tuple[bytes, str | None]:
    """The JSON text of doc; sometimes with its lone surrogates as raw (invalid UTF-8) bytes, not escapes."""
    if rng.random() < 0.04:
        raw = json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")
        return raw, "non-ASCII written raw" if raw.isascii() else "raw UTF-8 (surrogates as CESU-8)"
    return json.dumps(doc).encode(), None


def hostile_body(rng: random.Random, valid: bytes) -> tuple[str, bytes]:
    """A body that is wrong as a whole, built around a valid one."""
    choices: list[tuple[str, Callable[[], bytes]]] = [
        ("empty body", lambda: b""),
        ("not JSON", lambda: b"hello world"),
        ("invalid UTF-8 in a key", lambda: valid.replace(b'":', b'\xff\xfe":', 1)),
        ("UTF-8 BOM", lambda: b"\xef\xbb\xbf" + valid),
        ("UTF-16", lambda: valid.decode("utf-8", "replace").encode("utf-16")),
        ("JSON null", lambda: b"null"),
        ("JSON array", lambda: b"[]"),
        ("JSON string", lambda: b'"update"'),
        ("JSON 1e999", lambda: b"1e999"),
        ("truncated JSON", lambda: valid[: rng.randrange(1, max(2, len(valid)))]),
        ("trailing garbage", lambda: valid + b"}}]"),
        ("NaN literal", lambda: b'{"update_id": NaN, "text": Infinity, "limit": -Infinity}'),
        ("5000-digit number", lambda: b'{"update_id": 1' + b"0" * 5000 + b', "text": 1' + b"9" * 5000 + b"}"),
        (
            "duplicate keys",
            lambda: valid[:-1] + b', "update_id": "x", "text": null}' if valid.endswith(b"}") else valid,
        ),
        ("array nested 100k deep", lambda: b"[" * 100_000 + b"]" * 100_000),
        ("object nested 3000 deep", lambda: b'{"a":' * 3000 + b"1" + b"}" * 3000),
        ("unterminated nesting", lambda: b"[{" * 25_000),
        ("1.5 MB body", lambda: b'{"x":"' + b"A" * 1_500_000 + b'"}'),
        ("NUL bytes", lambda: b"\x00" * 64),
        ("escaped NUL and surrogates", lambda: b'{"\\u0000": "\\ud800\\udc00\\udfff\\ud800", "text": "\\u0000"}'),
    ]
    name, build = rng.choice(choices)
    return name, build()


JSON_TYPES: tuple[tuple[str, str | None], ...] = (
    ("charset=latin-1", "application/json; charset=latin-1"),
    ("charset=x-bogus", "application/json; charset=x-bogus-42"),
    ("charset=utf-16", "application/json; charset=utf-16"),
    ("text/plain", "text/plain"),
    ("multipart without boundary", "multipart/form-data"),
    ("form-urlencoded", "application/x-www-form-urlencoded"),
    ("absent", None),
    ("garbage", ";;;==="),
    ("non-ASCII", "application/jsön"),
)


# -- requests and cases --------------------------------------------------------------------------


@dataclass
class Request:
    """One HTTP request as sent; raw_headers (bytes) make it go over a plain socket, unencoded."""

    method: str
    target: str  # path and query, already percent-encoded as they go on the wire
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    raw_headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass
class Frame:
    """One WebSocket frame a widget socket sends."""

    kind: str  # text, utf8-bytes (a text frame of raw bytes), binary, ping
    data: str | bytes
    label: str


@dataclass
class Case:
    """One input (an HTTP request) or one socket (several frames), and what came back."""

    surface: str
    label: str
    request: Request | None = None
    frames: list[Frame] = field(default_factory=list)
    ws_headers: list[tuple[str, str]] = field(default_factory=list)
    markers: tuple[str, ...] = ()
    outcome: str = "not sent"  # an HTTP status, or for sockets a close code / alive / no answer
    handshake: str | None = None
    culprit: int | None = None  # the last frame sent before the server closed the socket
    error_codes: Counter[str] = field(default_factory=Counter)
    sent_at: list[float] = field(default_factory=list)  # when each frame went out
    refusals: list[tuple[float, int]] = field(default_factory=list)  # when "unavailable" came back, for which frame
    started: float = 0.0
    ended: float = 0.0

    @property
    def inputs(self) -> int:
        """How many inputs the case is: 1 for a request, its frames for a socket."""
        return len(self.frames) if self.request is None else 1

    @property
    def bad(self) -> bool:
        """What the done-criterion counts: a 5xx, a dropped connection or timeout, a socket that died."""
        if self.request is not None or self.handshake not in (None, "101"):
            return not self.outcome.isdigit() or int(self.outcome) >= 500
        return self.outcome in ("1006", "1011", "no answer", "dropped")


class Ids:
    """Unique ids for updates, messages, sids: runs stay comparable and re-deliveries are chosen, not accidental."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.update = 900_000_000
        self.message = 1_000_000
        self.client = 0

    def next_update(self) -> int:
        """A fresh update_id."""
        self.update += 1
        return self.update

    def next_message(self) -> int:
        """A fresh message_id."""
        self.message += 1
        return self.message

    def sid(self, prefix: str = "SM") -> str:
        """A Twilio-style SID from the seeded generator."""
        return f"{prefix}{self.rng.getrandbits(128):032x}"


@dataclass
class World:
    """What the warm-up created, for inputs that point at real things."""

    port: int
    threads: list[int] = field(default_factory=list)
    contact_ids: list[str] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)
    media_messages: list[tuple[str, int]] = field(default_factory=list)
    visitor_tokens: list[str] = field(default_factory=list)
    operator_messages: list[dict[str, Any]] = field(default_factory=list)
    customer_bot_messages: list[dict[str, Any]] = field(default_factory=list)
    customer_messages: list[tuple[int, int]] = field(default_factory=list)
    outbound_sids: list[str] = field(default_factory=list)
    inbound_sids: list[str] = field(default_factory=list)
    topics: list[int] = field(default_factory=list)

    @property
    def public_url(self) -> str:
        """The URL the gateway is configured with (and listens on)."""
        return f"http://127.0.0.1:{self.port}"

    def thread_number(self, rng: random.Random) -> str:
        """A thread number as an operator or integrator might write it: mostly real, sometimes not."""
        if self.threads and rng.random() < 0.6:
            number = str(rng.choice(self.threads))
            return rng.choice((number, number, f"#{number}"))
        return rng.choice(
            (
                "²",
                "99999999999999999999",
                "-1",
                "0",
                "1.5",
                "abc",
                "١",
                "#",
                "##1",
                "0x1",
                "1e3",
                "9" * 5000,
                "\ud800",
                "#\x00",
                str(2**63),
                str(max(self.threads, default=1) + 1),
            )
        )


# -- Telegram ------------------------------------------------------------------------------------


def tg_user(uid: int, rng: random.Random) -> dict[str, Any]:
    """A Telegram User of this id, with a varying profile."""
    user: dict[str, Any] = {"id": uid, "is_bot": False, "first_name": f"Customer{uid % 1000}"}
    if rng.random() < 0.5:
        user["last_name"] = rng.choice(("Lee", "Иванова", "O'Brien"))
    if rng.random() < 0.5:
        user["username"] = f"user{uid}"
    language = rng.choice(("en", "ru", "de", None))
    if language:
        user["language_code"] = language
    return user


def private_chat(user: dict[str, Any]) -> dict[str, Any]:
    """The user's private chat with the bot (its id is the user's)."""
    chat = {k: user[k] for k in ("id", "first_name", "last_name", "username") if k in user}
    return chat | {"type": "private"}


def _file(prefix: str, rng: random.Random) -> dict[str, Any]:
    return {"file_id": f"{prefix}-{rng.getrandbits(48):012x}", "file_unique_id": f"U{rng.getrandbits(32):08x}"}


def tg_content(kind: str, rng: random.Random, tg: TelegramEmulator, token: str, uid: int) -> dict[str, Any]:
    """What a message of this kind carries; files are real (downloadable from the emulator) half the time."""
    if kind in ("photo", "document", "voice") and uid in CUSTOMERS + OPERATORS and rng.random() < 0.5:
        builders: dict[str, Callable[[str, int], dict[str, Any]]] = {
            "photo": tg.photo_update,
            "document": tg.document_update,
            "voice": tg.voice_update,
        }
        message = builders[kind](token, uid)["message"]
        return {k: v for k, v in message.items() if k not in ("message_id", "from", "chat", "date")}
    size = rng.choice((1510, 48213, 0, None))
    sized: dict[str, Any] = {} if size is None else {"file_size": size}
    contents: dict[str, Callable[[], dict[str, Any]]] = {
        "text": lambda: {"text": rng.choice(PLAIN_TEXTS)},
        "command": lambda: {
            "text": "/start hello",
            "entities": [{"offset": 0, "length": 6, "type": "bot_command"}],
        },
        "photo": lambda: {
            "photo": [
                _file("AgAC", rng) | {"width": w, "height": h} | sized for w, h in ((90, 68), (320, 240), (1280, 960))
            ],
            "caption": rng.choice(PLAIN_TEXTS),
        },
        "document": lambda: {
            "document": _file("BQAC", rng) | {"file_name": "report.pdf", "mime_type": "application/pdf"} | sized
        },
        "voice": lambda: {"voice": _file("AwAC", rng) | {"duration": 3, "mime_type": "audio/ogg"} | sized},
        "audio": lambda: {"audio": _file("CQAC", rng) | {"duration": 180, "title": "Song", "performer": "X"} | sized},
        "video": lambda: {"video": _file("BAAC", rng) | {"width": 1280, "height": 720, "duration": 10} | sized},
        "video_note": lambda: {"video_note": _file("DQAC", rng) | {"length": 240, "duration": 5}},
        "animation": lambda: {
            "animation": _file("CgAC", rng) | {"width": 320, "height": 240, "duration": 2},
            "document": _file("CgAC", rng) | {"mime_type": "video/mp4"},
        },
        "sticker": lambda: {
            "sticker": _file("CAAC", rng)
            | {"type": "regular", "width": 512, "height": 512, "is_animated": False, "is_video": False, "emoji": "😀"}
        },
        "location": lambda: {"location": {"latitude": 52.520008, "longitude": 13.404954}},
        "venue": lambda: {
            "venue": {"location": {"latitude": 52.5, "longitude": 13.4}, "title": "Shop", "address": "Main St 1"},
            "location": {"latitude": 52.5, "longitude": 13.4},
        },
        "contact": lambda: {
            "contact": {"phone_number": rng.choice(("15551234567", "+14155552671", "4155552671")), "first_name": "A"}
            | ({"user_id": uid} if rng.random() < 0.6 else {})
        },
        "dice": lambda: {"dice": {"emoji": "🎲", "value": 4}},
        "poll": lambda: {
            "poll": {
                "id": "1",
                "question": "?",
                "options": [{"text": "a", "voter_count": 0}],
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
            }
        },
        "story": lambda: {"story": {"chat": {"id": uid, "type": "private"}, "id": 1}},
        "new_chat_members": lambda: {"new_chat_members": [{"id": uid, "is_bot": False, "first_name": "N"}]},
        "pinned_message": lambda: {
            "pinned_message": {"message_id": 1, "chat": {"id": uid, "type": "private"}, "date": 0}
        },
        "web_app_data": lambda: {"web_app_data": {"data": "x", "button_text": "b"}},
        "future type": lambda: {"brand_new_thing": {"x": 1}},
        "forwarded": lambda: {
            "text": rng.choice(PLAIN_TEXTS),
            "forward_origin": rng.choice(
                (
                    {"type": "user", "date": NOW, "sender_user": {"id": 77, "is_bot": False, "first_name": "Bob"}},
                    {"type": "hidden_user", "date": NOW, "sender_user_name": "Hidden"},
                    {"type": "channel", "date": NOW, "chat": {"id": -100123, "type": "channel"}, "message_id": 3},
                    {"type": "chat", "date": NOW, "sender_chat": {"id": -100124, "type": "supergroup"}},
                )
            ),
            "forward_date": NOW,
        },
    }
    return contents[kind]()


TG_KINDS = (
    "text",
    "text",
    "text",
    "command",
    "photo",
    "document",
    "voice",
    "audio",
    "video",
    "video_note",
    "animation",
    "sticker",
    "location",
    "venue",
    "contact",
    "dice",
    "poll",
    "story",
    "new_chat_members",
    "pinned_message",
    "web_app_data",
    "future type",
    "forwarded",
)

# Targeted changes the brief and the code's weak spots suggest; applied to an update in place.
TG_TARGETED: tuple[tuple[str, Callable[[dict[str, Any]], None]], ...] = (
    ("edit_date=10**12", lambda m: m.__setitem__("edit_date", 10**12)),
    ("edit_date=-1", lambda m: m.__setitem__("edit_date", -1)),
    ("edit_date=2**63", lambda m: m.__setitem__("edit_date", 2**63)),
    ("edit_date=1.5", lambda m: m.__setitem__("edit_date", 1.5)),
    ("date=10**12", lambda m: m.__setitem__("date", 10**12)),
    ("date=-10**11", lambda m: m.__setitem__("date", -(10**11))),
    ("date=10**20", lambda m: m.__setitem__("date", 10**20)),
    ("from.id=10**20", lambda m: m["from"].__setitem__("id", 10**20)),
    ("from.id=-1", lambda m: m["from"].__setitem__("id", -1)),
    ("from.id=0", lambda m: m["from"].__setitem__("id", 0)),
    ("chat.id=-2**63-1", lambda m: m["chat"].__setitem__("id", -(2**63) - 1)),
    ("message_id=2**63", lambda m: m.__setitem__("message_id", 2**63)),
    ("message_id=-1", lambda m: m.__setitem__("message_id", -1)),
    ("text=lone surrogate", lambda m: m.__setitem__("text", "hi \ud800")),
    ("text=NUL", lambda m: m.__setitem__("text", "a\x00b")),
    ("text=70k", lambda m: m.__setitem__("text", "A" * 70_000)),
    ("text=empty", lambda m: m.__setitem__("text", "")),
    ("caption=lone surrogate", lambda m: m.__setitem__("caption", "\udfff")),
    ("photo=[]", lambda m: m.__setitem__("photo", [])),
    (
        "photo sizes without dimensions",
        lambda m: m.__setitem__("photo", [{"file_id": "x", "file_unique_id": "y", "width": None, "height": 10**20}]),
    ),
    (
        "document.file_size=10**20",
        lambda m: m.__setitem__("document", {"file_id": "d", "file_unique_id": "u", "file_size": 10**20}),
    ),
    (
        "document.file_size=-1",
        lambda m: m.__setitem__("document", {"file_id": "d", "file_unique_id": "u", "file_size": -1}),
    ),
    (
        "document.file_name=NUL+surrogate",
        lambda m: m.__setitem__(
            "document",
            {"file_id": "d", "file_unique_id": "u", "file_name": "../a\x00\ud800.exe", "mime_type": "\ud800"},
        ),
    ),
    ("location=float max", lambda m: m.__setitem__("location", {"latitude": 1.7e308, "longitude": -1.7e308})),
    ("location=out of range", lambda m: m.__setitem__("location", {"latitude": 91.0, "longitude": 181.0})),
    ("venue without location", lambda m: m.__setitem__("venue", {"title": "t", "address": "a"})),
    (
        "contact.phone_number=²",
        lambda m: m.__setitem__("contact", {"phone_number": "²", "first_name": "A", "user_id": m["from"]["id"]}),
    ),
    (
        "contact.phone_number=empty",
        lambda m: m.__setitem__("contact", {"phone_number": "", "first_name": "A", "user_id": m["from"]["id"]}),
    ),
    (
        "contact.phone_number=5000 digits",
        lambda m: m.__setitem__("contact", {"phone_number": "1" * 5000, "first_name": "A"}),
    ),
    (
        "contact.phone_number=NUL",
        lambda m: m.__setitem__("contact", {"phone_number": "+1415\x00", "first_name": "\ud800"}),
    ),
    (
        "contact.user_id=10**20",
        lambda m: m.__setitem__("contact", {"phone_number": "+14155552671", "first_name": "A", "user_id": 10**20}),
    ),
    ("from.language_code=surrogate", lambda m: m["from"].__setitem__("language_code", "\ud800")),
    ("from.language_code=5000 chars", lambda m: m["from"].__setitem__("language_code", "e" * 5000)),
    ("from.first_name=NUL", lambda m: m["from"].__setitem__("first_name", "\x00")),
    ("from.first_name=empty", lambda m: m["from"].__setitem__("first_name", "")),
    ("from.username=lone surrogate", lambda m: m["from"].__setitem__("username", "\udc80")),
    ("from.is_bot=true", lambda m: m["from"].__setitem__("is_bot", True)),
    ("no from", lambda m: m.pop("from", None)),
    ("chat.type=unknown", lambda m: m["chat"].__setitem__("type", "spaceship")),
    ("chat.type=group", lambda m: m["chat"].update({"type": "group", "id": -4242, "title": "G"})),
    ("reply chain 60 deep", lambda m: m.__setitem__("reply_to_message", _reply_chain(m, 60))),
    ("reply to itself", lambda m: m.__setitem__("reply_to_message", dict(m))),
    (
        "entities out of range",
        lambda m: m.__setitem__(
            "entities",
            [
                {"type": "bold", "offset": -1, "length": 10**6},
                {"type": "text_link", "offset": 0, "length": 3, "url": "javascript:alert(1)"},
                {"type": "custom_emoji", "offset": 2, "length": 2},
                {"type": "no-such-type", "offset": 10**20, "length": -5},
            ],
        ),
    ),
    ("forward_origin unknown type", lambda m: m.__setitem__("forward_origin", {"type": "alien", "date": NOW})),
    (
        "forward_origin hidden without name",
        lambda m: m.__setitem__("forward_origin", {"type": "hidden_user", "date": NOW}),
    ),
    ("message_thread_id=2**64", lambda m: m.update({"message_thread_id": 2**64, "is_topic_message": True})),
    ("media_group_id=70k", lambda m: m.__setitem__("media_group_id", "g" * 70_000)),
)


def _reply_chain(message: dict[str, Any], depth: int) -> dict[str, Any]:
    chain: dict[str, Any] = {"message_id": 1, "chat": message["chat"], "date": NOW, "text": "root"}
    for n in range(depth):
        chain = {"message_id": n + 2, "chat": message["chat"], "date": NOW, "text": "r", "reply_to_message": chain}
    return chain


def message_refs(update: dict[str, Any]) -> list[str]:
    """The gateway's ids of the message in an update ("chat:message"), as stored and shown by the API."""
    refs = []
    for key in ("message", "edited_message"):
        message = update.get(key)
        with contextlib.suppress(AttributeError, KeyError, TypeError):
            if isinstance(message, dict):
                refs.append(f"{message['chat']['id']}:{message['message_id']}")
    return refs


def telegram_sender(rng: random.Random, pool: Sequence[int]) -> tuple[int, str | None]:
    """Mostly a known user (so replies to them work), sometimes an id no chat has."""
    if pool and rng.random() < 0.9:
        return rng.choice(pool), None
    name, uid = rng.choice((*HOSTILE_INTS, ("unknown user", 424242)))
    return uid, f"sender id {name}"


def secret_headers(rng: random.Random, secret: str) -> tuple[Request, str | None]:
    """The secret header, right most of the time; a Request carrying it (headers only)."""
    request = Request("POST", "")
    if rng.random() < 0.88:
        request.headers.append((SECRET_HEADER, secret))
        return request, None
    variants: list[tuple[str, Callable[[], None]]] = [
        ("no secret", lambda: None),
        ("wrong secret", lambda: request.headers.append((SECRET_HEADER, "wrong-secret"))),
        ("empty secret", lambda: request.headers.append((SECRET_HEADER, ""))),
        ("secret minus a char", lambda: request.headers.append((SECRET_HEADER, secret[:-1]))),
        ("secret plus a char", lambda: request.headers.append((SECRET_HEADER, secret + "x"))),
        ("10k-char secret", lambda: request.headers.append((SECRET_HEADER, "s" * 10_000))),
        ("non-ASCII secret (UTF-8)", lambda: request.headers.append((SECRET_HEADER, "sécret-ü-秘密"))),
        ("secret in upper case", lambda: request.headers.append((SECRET_HEADER, secret.upper()))),
        (
            "secret twice (right, wrong)",
            lambda: request.headers.extend([(SECRET_HEADER, secret), (SECRET_HEADER, "x")]),
        ),
        ("secret as latin-1 bytes", lambda: request.raw_headers.append((SECRET_HEADER.encode(), b"s\xe9cret\xff"))),
        (
            "secret with a raw NUL byte",
            lambda: request.raw_headers.append((SECRET_HEADER.encode(), secret.encode() + b"\x00")),
        ),
    ]
    name, apply = rng.choice(variants)
    apply()
    return request, name


def telegram_body(
    rng: random.Random, update: dict[str, Any], labels: list[str], request: Request
) -> tuple[bytes, list[str]]:
    """The update as a body, or (a tenth of the time) a body wrong as a whole; and the Content-Type."""
    body, how = json_bytes(update, rng)
    if how:
        labels.append(how)
    if rng.random() < 0.1:
        name, body = hostile_body(rng, body)
        labels = [name]
    content_type: str | None = "application/json"
    if rng.random() < 0.08:
        name, content_type = rng.choice(JSON_TYPES)
        labels.append(f"Content-Type {name}")
    if content_type is not None:
        request.headers.append(("Content-Type", content_type))
    return body, labels


class TelegramInputs:
    """Updates for the customer bot and the operator bot."""

    def __init__(self, rng: random.Random, ids: Ids, world: World, tg: TelegramEmulator) -> None:
        self.rng = rng
        self.ids = ids
        self.world = world
        self.tg = tg

    def message(self, token: str, uid: int, kind: str, **extra: Any) -> dict[str, Any]:
        """A message from `uid` in its private chat, carrying content of `kind`."""
        user = tg_user(uid, self.rng)
        return {
            "message_id": self.ids.next_message(),
            "from": user,
            "chat": private_chat(user),
            "date": NOW + self.rng.randrange(86_400),
            **tg_content(kind, self.rng, self.tg, token, uid),
            **extra,
        }

    def callback(self, token: str, uid: int, data: str | None, message: dict[str, Any] | None) -> dict[str, Any]:
        """A button press; its id is registered with the emulator, so answering it works as on Telegram."""
        query_id = str(self.ids.next_update())
        self.tg._world.bots[token].callback_queries[query_id] = False
        query: dict[str, Any] = {
            "id": query_id,
            "from": tg_user(uid, self.rng),
            "chat_instance": "-4512345678901234567",
        }
        if message is not None:
            query["message"] = message
        if data is not None:
            query["data"] = data
        return query

    def customer_case(self) -> Case:
        """One webhook call to the customer bot."""
        rng = self.rng
        update_id = self.ids.next_update()
        uid, sender_label = telegram_sender(rng, CUSTOMERS)
        labels = [sender_label] if sender_label else []
        payload_key: str | None
        payload: Any
        kind_roll = rng.random()
        if kind_roll < 0.6:
            kind = rng.choice(TG_KINDS)
            payload_key, payload = "message", self.message(CUSTOMER_BOT, uid, kind)
            labels.insert(0, f"message {kind}")
        elif kind_roll < 0.75:
            kind = rng.choice(TG_KINDS)
            payload = self.message(CUSTOMER_BOT, uid, kind, edit_date=NOW + 90_000)
            if self.world.customer_messages and rng.random() < 0.5:
                _, message_id = rng.choice(self.world.customer_messages)
                payload["message_id"] = message_id
            payload_key = "edited_message"
            labels.insert(0, f"edited_message {kind}")
        elif kind_roll < 0.9:
            message = self._bot_message(self.world.customer_bot_messages, uid)
            data = rng.choice(("vote:yes", "1", "", "x" * 65, "\ud800", None, "tpl:1", "👍" * 20))
            payload_key, payload = "callback_query", self.callback(CUSTOMER_BOT, uid, data, message)
            labels.insert(0, "callback_query" + ("" if message else " without message"))
        else:
            payload_key, payload, label = self._odd_update(uid)
            labels.insert(0, label)
        update: dict[str, Any] = {"update_id": update_id}
        if payload_key:
            update[payload_key] = payload
        if payload_key in ("message", "edited_message") and isinstance(payload, dict) and rng.random() < 0.3:
            name, change = rng.choice(TG_TARGETED)
            with contextlib.suppress(KeyError, TypeError):
                change(payload)
                labels.append(name)
        if rng.random() < 0.45:
            labels += mutate(update, rng, rng.choice((1, 1, 2, 3)))
        request, secret_label = secret_headers(rng, TG_SECRET)
        if secret_label:
            labels.append(secret_label)
        name = BOT_NAME
        if rng.random() < 0.02:
            name, label = rng.choice(
                (("nobody", "unknown bot"), ("%00", "bot name NUL"), ("%ED%A0%80", "bot name surrogate bytes"))
            )
            labels.append(label)
        request.target = f"/channels/telegram/{name}"
        if rng.random() < 0.01:
            request.method = rng.choice(("GET", "PUT", "DELETE"))
            labels.append(f"method {request.method}")
        request.body, labels = telegram_body(rng, update, labels, request)
        return Case("telegram", "; ".join(labels), request, markers=(str(update_id), *message_refs(update)))

    def _bot_message(self, pool: Sequence[dict[str, Any]], uid: int) -> dict[str, Any] | None:
        rng = self.rng
        roll = rng.random()
        if pool and roll < 0.6:
            return copy.deepcopy(rng.choice(pool))
        if roll < 0.8:
            return {"message_id": rng.choice((1, 10**9, 0)), "chat": {"id": uid, "type": "private"}, "date": 0}
        if roll < 0.9:
            return {
                "message_id": 5,
                "from": {"id": 7100001, "is_bot": True, "first_name": "Gateway"},
                "chat": {"id": uid, "type": "private"},
                "date": NOW,
                "text": "Pick one",
                "reply_markup": {"inline_keyboard": [[{"text": "\ud800", "callback_data": "x"}]]},
            }
        return None

    def _odd_update(self, uid: int) -> tuple[str | None, Any, str]:
        rng = self.rng
        user = tg_user(uid, rng)
        options: list[tuple[str | None, Any, str]] = [
            (None, None, "update without payload"),
            (
                "channel_post",
                {"message_id": 1, "chat": {"id": -100555, "type": "channel"}, "date": NOW, "text": "post"},
                "channel_post",
            ),
            ("inline_query", {"id": "1", "from": user, "query": "q", "offset": ""}, "inline_query"),
            ("my_chat_member", {"chat": private_chat(user), "from": user, "date": NOW}, "my_chat_member, incomplete"),
            ("message_reaction", {"chat": private_chat(user), "message_id": 1, "date": NOW}, "message_reaction"),
            ("business_message", self.message(CUSTOMER_BOT, uid, "text"), "business_message"),
            ("some_future_update", {"x": 1}, "unknown update type"),
            ("message", [], "message is a list"),
            ("message", "hello", "message is a string"),
            ("callback_query", {}, "empty callback_query"),
        ]
        return rng.choice(options)

    def operator_case(self) -> Case:
        """One webhook call to the operator bot: commands, replies, button presses."""
        rng = self.rng
        update_id = self.ids.next_update()
        roll = rng.random()
        if roll < 0.8:
            uid = rng.choice(OPERATORS)
            labels: list[str] = []
        elif roll < 0.9:
            uid, labels = EVE, ["from a non-operator"]
        elif roll < 0.95:
            uid, labels = rng.choice(CUSTOMERS), ["from a customer"]
        else:
            uid, sender = telegram_sender(rng, ())
            labels = [sender or "unknown sender"]
        kind_roll = rng.random()
        update: dict[str, Any] = {"update_id": update_id}
        if kind_roll < 0.45:
            text, label = self._command()
            message = self.message(OPERATOR_BOT, uid, "text", text=text)
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split(" ")[0])}]
            update["message"] = message
            labels.insert(0, label)
        elif kind_roll < 0.7:
            message, label = self._reply(uid)
            update["message" if rng.random() < 0.9 else "edited_message"] = message
            labels.insert(0, label)
        elif kind_roll < 0.92:
            data, label = self._callback_data()
            own = [m for m in self.world.operator_messages if m["chat"]["id"] == uid]
            pressed_on = self._bot_message(own or self.world.operator_messages, uid)
            update["callback_query"] = self.callback(OPERATOR_BOT, uid, data, pressed_on)
            labels.insert(0, label)
        else:
            message, label = self._topic_message(uid)
            update["message"] = message
            labels.insert(0, label)
        if rng.random() < 0.25:
            labels += mutate(update, rng, rng.choice((1, 1, 2)))
        request, secret_label = secret_headers(rng, OP_SECRET)
        if secret_label:
            labels.append(secret_label)
        request.target = "/operators/telegram"
        request.body, labels = telegram_body(rng, update, labels, request)
        return Case("operator", "; ".join(labels), request, markers=(str(update_id), *message_refs(update)))

    def _command(self) -> tuple[str, str]:
        rng = self.rng
        n = self.world.thread_number(rng)
        hostile, _ = hostile_text(rng)
        op = rng.choice(("@olga", "@sam", "@boss", "Olga", "1002", "@nobody", "@x", "@", "@" + "x" * 300, "-1", "²"))
        pattern = rng.choice(("(.*)*", "$where", "[", "\\", "a" * 5000, "ann", "+1415"))
        periods = ("today", "7d", "2026-11-20", "2026-02-30", "9999-12-31", "0001-01-01", "-1d", "0d", "²d")
        period = rng.choice((*periods, "99999999999999999999d", "2026-11-20T10"))
        capacity = rng.choice(("0", "-1", "99999999999999999999", "²", "3"))
        templates: list[tuple[str, str]] = [
            ("/online", "/online"),
            ("/away", "/away"),
            ("/offline", "/offline"),
            ("/status", "/status"),
            ("/help", "/help"),
            ("/help@desk_bot", "/help@bot"),
            ("/help@some_other_bot", "/help@other"),
            ("/chats", "/chats"),
            (f"/chat {n}", "/chat N"),
            ("/next", "/next"),
            (f"/history {n}", "/history N"),
            (f"/history {n} {rng.choice(('-1', '2', '99999999999999999999', '²'))}", "/history N PAGE"),
            (f"/info {n}", "/info N"),
            (f"/close {n}", "/close N"),
            (f"/transfer {n} {op}", "/transfer N OP"),
            (f"/transfer {n} {op} {hostile}", "/transfer N OP COMMENT"),
            (f"/transfer {n} sales", "/transfer N GROUP"),
            (f"/transfer {op}", "/transfer OP"),
            (f"/note {n} {hostile}", "/note N TEXT"),
            (f"/block {n}", "/block N"),
            (f"/unblock {n}", "/unblock N"),
            (f"/search {pattern}", "/search PATTERN"),
            (f"/search {hostile}", "/search TEXT"),
            ("/canned", "/canned"),
            (f"/canned {hostile}", "/canned TEXT"),
            (f"/canned add {hostile} {hostile}", "/canned add"),
            ("/queue", "/queue"),
            ("/operators", "/operators"),
            ("/all", "/all"),
            (f"/assign {n} {op}", "/assign N OP"),
            (f"/assign {n}", "/assign N"),
            (f"/stats {period}", "/stats PERIOD"),
            (
                f"/operator add {rng.choice(('123456', '99999999999999999999', '-5', '0', '²'))} {hostile}",
                "/operator add",
            ),
            (f"/operator remove {rng.choice(('424242', '99999999999999999999', '@nobody', '²'))}", "/operator remove"),
            (
                f"/operator role {rng.choice(('1002', '@sam'))} {rng.choice(('supervisor', 'operator', 'god', ''))}",
                "/operator role",
            ),
            (f"/operator capacity {rng.choice(('1002', '1001', '@sam'))} {capacity}", "/operator capacity"),
            ("/operator", "/operator"),
            ("/duplicates", "/duplicates"),
            (f"/merge {n} {self.world.thread_number(rng)}", "/merge N M"),
            (f"/unmerge {n}", "/unmerge N"),
            (f"/nosuchcommand {hostile}", "unknown command"),
            ("/", "bare slash"),
            (f"/close {n} " + "x" * 5000, "/close N + 5000 chars"),
        ]
        text, label = rng.choice(templates)
        return text, f"{label}: {text[:60]!r}"

    def _reply(self, uid: int) -> tuple[dict[str, Any], str]:
        """An operator writes: a reply to a real bot message or to one that does not exist, or plain text."""
        rng = self.rng
        kind = rng.choice(("text", "text", "text", "photo", "document", "voice", "sticker", "location", "contact"))
        message = self.message(OPERATOR_BOT, uid, kind)
        label = f"operator {kind}"
        if kind == "text" and rng.random() < 0.5:
            name, text = hostile_text(rng)
            message["text"] = text
            label += f" [{name}]"
        own = [m for m in self.world.operator_messages if m["chat"]["id"] == uid]
        roll = rng.random()
        if own and roll < 0.5:
            message["reply_to_message"] = copy.deepcopy(rng.choice(own))
            label += ", replying to a card"
        elif roll < 0.75:
            message["reply_to_message"] = {
                "message_id": rng.choice((424242, 0, -1, 2**63)),
                "from": {"id": 7000001, "is_bot": True, "first_name": "Desk"},
                "chat": message["chat"],
                "date": NOW,
                "text": rng.choice(("#999 hi", "#\ud800", "", "#1")),
            }
            label += ", replying to an unknown message"
        return message, label

    def _callback_data(self) -> tuple[str | None, str]:
        rng = self.rng
        real = [
            b["callback_data"]
            for m in self.world.operator_messages
            for row in (m.get("reply_markup") or {}).get("inline_keyboard", [])
            for b in row
            if "callback_data" in b
        ]
        roll = rng.random()
        if real and roll < 0.2:
            return rng.choice(real), "button: real data"
        prefixes = ("pick", "retry", "tpl", "hist", "history", "info", "close", "block", "unblock", "transfer", "xfer")
        suffixes = (
            "abc",
            "zz",
            "1",
            "",
            "99999999999999999999",
            "-1",
            "²",
            "1:-1",
            "1:99999999999999999999",
            "1:x",
            "x:1",
            "1:o:abc",
            "1:g:\ud800",
            "1:z:1",
            ":",
            "::::",
            "1:2:3:4:5",
            f"{ObjectId()}",
            "zz" * 12,
            "\x00",
        )
        if roll < 0.85:
            prefix = rng.choice(prefixes)
            suffix = rng.choice(suffixes)
            if self.world.threads and rng.random() < 0.3:
                suffix = f"{rng.choice(self.world.threads)}:{suffix}"
            return f"{prefix}:{suffix}", f"button {prefix}:{suffix[:20]!r}"
        dup = rng.choice(("dup:m:abc", "dup:m:", f"dup:m:{ObjectId()}:0", f"dup:m:{ObjectId()}:{ObjectId()}", "dup:n:"))
        return rng.choice(
            ((dup, f"button {dup[:6]}..."), ("x" * 200, "button: 200 chars"), (None, "button without data"))
        )

    def _topic_message(self, uid: int) -> tuple[dict[str, Any], str]:
        """A supervisor writes in the supervisors' forum: a conversation's topic, the general one or a made-up one."""
        rng = self.rng
        message = self.message(OPERATOR_BOT, uid, rng.choice(("text", "text", "photo", "sticker")))
        message["chat"] = {"id": SUPERVISORS, "title": "Supervisors", "is_forum": True, "type": "supergroup"}
        if self.world.topics and rng.random() < 0.6:
            topic = rng.choice(self.world.topics)
            label = "supervisors' topic"
        else:
            topic = rng.choice((1, 424242, 2**63))
            label = "unknown topic"
        if rng.random() < 0.8:
            message["message_thread_id"] = topic
            message["is_topic_message"] = True
        else:
            label = "supervisors' general topic"
        return message, label


# -- WhatsApp ------------------------------------------------------------------------------------

Form = list[tuple[str, str]]


class WhatsAppInputs:
    """Twilio's webhook forms, signed over public_url + path as Twilio signs them."""

    def __init__(self, rng: random.Random, ids: Ids, world: World, twilio: TwilioEmulator) -> None:
        self.rng = rng
        self.ids = ids
        self.world = world
        self.twilio = twilio
        self.validator = RequestValidator(AUTH_TOKEN)

    def inbound_form(self) -> tuple[Form, str, str]:
        """A realistic inbound message form, its MessageSid and what it is."""
        rng = self.rng
        number = rng.choice(WA_NUMBERS)
        sid = self.ids.sid("SM")
        kind = rng.choice(
            (
                "text",
                "text",
                "text",
                "image",
                "audio",
                "video",
                "document",
                "vcard",
                "location",
                "button",
                "reply",
                "sticker",
                "media x3",
                "empty",
            )
        )
        body = rng.choice(PLAIN_TEXTS) if kind in ("text", "reply", "button") else ""
        form: Form = [
            ("SmsMessageSid", sid),
            ("NumMedia", "0"),
            ("ProfileName", rng.choice(("Ann Lee", "Борис", "🙂"))),
            ("MessageType", "text"),
            ("SmsSid", sid),
            ("WaId", number[1:]),
            ("SmsStatus", "received"),
            ("Body", body),
            ("To", SENDER),
            ("NumSegments", "1"),
            ("ReferralNumMedia", "0"),
            ("MessageSid", sid),
            ("AccountSid", ACCOUNT_SID),
            ("From", "whatsapp:" + number),
            ("ApiVersion", "2010-04-01"),
        ]
        media = {
            "image": [("image/jpeg", SAMPLE_JPEG)],
            "audio": [("audio/ogg", SAMPLE_OGG)],
            "video": [("video/mp4", b"\x00\x00\x00\x18ftypmp42")],
            "document": [("application/pdf", SAMPLE_PDF)],
            "vcard": [("text/vcard", build_vcard("Bob Smith", ["+14155550100", "+442071838750"]).encode())],
            "sticker": [("image/webp", b"RIFF\x00\x00\x00\x00WEBPVP8 ")],
            "media x3": [("image/jpeg", SAMPLE_JPEG), ("application/pdf", SAMPLE_PDF), ("audio/ogg", SAMPLE_OGG)],
        }.get(kind, [])
        if media:
            _set(form, "NumMedia", str(len(media)))
            _set(form, "MessageType", "sticker" if kind == "sticker" else "image")
            for index, (mime, data) in enumerate(media):
                form.append((f"MediaContentType{index}", mime))
                form.append((f"MediaUrl{index}", self.twilio.add_media(mime, data, message_sid=sid)))
        if kind == "location":
            form += [("Latitude", "52.520008"), ("Longitude", "13.404954"), ("Address", "Main St 1"), ("Label", "Shop")]
        if kind == "button":
            form += [("ButtonText", body), ("ButtonPayload", "order:42"), ("ButtonType", "REPLY")]
        if kind == "reply" and self.world.outbound_sids:
            form += [
                ("OriginalRepliedMessageSid", rng.choice(self.world.outbound_sids)),
                ("OriginalRepliedMessageSender", SENDER),
            ]
        return form, sid, f"inbound {kind}"

    def status_form(self) -> tuple[Form, str, str]:
        """A status callback form for a known message (mostly) or an unknown one, its sid and what it is."""
        rng = self.rng
        known = self.world.outbound_sids + self.world.inbound_sids
        sid = rng.choice(known) if known and rng.random() < 0.7 else self.ids.sid("SM")
        status = rng.choice(("sent", "delivered", "read", "failed", "undelivered", "queued", "canceled", "sending"))
        form: Form = [
            ("ChannelPrefix", "whatsapp"),
            ("ApiVersion", "2010-04-01"),
            ("MessageStatus", status),
            ("SmsSid", sid),
            ("SmsStatus", status),
            ("ChannelInstallSid", "XE" + "0" * 32),
            ("To", "whatsapp:" + rng.choice(WA_NUMBERS)),
            ("From", SENDER),
            ("MessageSid", sid),
            ("AccountSid", ACCOUNT_SID),
        ]
        if status in ("failed", "undelivered"):
            form += [("ErrorCode", rng.choice(("63016", "63003", "30008", "1"))), ("ChannelStatusMessage", "failed")]
        return form, sid, f"status {status}" + (" (known sid)" if sid in known else "")

    def case(self, path: str) -> Case:
        """One webhook call to `path`, signed (mostly) as Twilio signs it."""
        rng = self.rng
        form, sid, label = self.inbound_form() if path == INBOUND else self.status_form()
        labels = [label]
        if rng.random() < 0.55:
            labels += self._mutate(form, path)
        query = ""
        if rng.random() < 0.03:
            query = rng.choice(("?a=1", "?%ZZ=%", "?x=" + "y" * 3000, "?bodySHA256=00"))
            labels.append(f"query {query[:12]!r}")
        request = Request("POST", path + query)
        body, content_type, parsed, body_label = self._encode(form)
        if body_label:
            labels.append(body_label)
        if content_type is not None:
            request.headers.append(("Content-Type", content_type))
        request.body = body
        signature, signature_label = self._signature(self.world.public_url + path + query, parsed, request)
        if signature_label:
            labels.append(signature_label)
        if signature is not None:
            request.headers.append(("X-Twilio-Signature", signature))
        return Case("whatsapp", "; ".join(labels), request, markers=(sid,))

    def _mutate(self, form: Form, path: str) -> list[str]:
        rng = self.rng
        if rng.random() < 0.6:
            name, value, label = rng.choice(self._targeted(path))
            if value is None:
                form[:] = [(k, v) for k, v in form if k != name]
            elif name == "+Latitude-only":
                form.append(("Latitude", value))
            else:
                _set(form, name, value)
            return [label]
        key = rng.choice([k for k, _ in form])
        roll = rng.random()
        if roll < 0.7:
            name, value = hostile_text(rng)
            _set(form, key, value)
            return [f"{key}={name}"]
        if roll < 0.85:
            form[:] = [(k, v) for k, v in form if k != key]
            return [f"no {key}"]
        form.append((key, rng.choice(("x", "", "\x00"))))
        return [f"{key} twice"]

    def _targeted(self, path: str) -> list[tuple[str, str | None, str]]:
        port = self.world.port
        common: list[tuple[str, str | None, str]] = [
            ("MessageSid", None, "no MessageSid"),
            ("MessageSid", "", "MessageSid empty"),
            ("MessageSid", "S" * 5000, "MessageSid 5000 chars"),
            ("MessageSid", "$gt", "MessageSid=$gt"),
            ("MessageSid", "SM\x00", "MessageSid with NUL"),
            ("AccountSid", "AC" + "0" * 32, "another AccountSid"),
        ]
        if path == STATUS:
            statuses = (
                ("DELIVERED", "upper case"),
                ("read ", "trailing space"),
                ("", "empty"),
                ("exploded", "unknown"),
            )
            codes = (("²", "²"), ("x" * 5000, "5000 chars"), ("-1", "-1"), ("99999999999999999999", "20 digits"))
            return [
                *common,
                *(("MessageStatus", status, f"MessageStatus={label}") for status, label in statuses),
                ("MessageStatus", "\x00", "MessageStatus=NUL"),
                ("MessageStatus", None, "no MessageStatus"),
                *(("ErrorCode", code, f"ErrorCode={label}") for code, label in codes),
            ]
        return [
            *common,
            ("NumMedia", "²", "NumMedia=²"),
            ("NumMedia", "٣", "NumMedia=٣ (Arabic-Indic)"),
            ("NumMedia", "-1", "NumMedia=-1"),
            ("NumMedia", "99999999999999999999", "NumMedia=20 digits"),
            ("NumMedia", "1" * 5000, "NumMedia=5000 digits"),
            ("NumMedia", " 1", "NumMedia=' 1'"),
            ("NumMedia", "1.0", "NumMedia=1.0"),
            ("NumMedia", "", "NumMedia empty"),
            ("MediaUrl0", "http://127.0.0.1:1/refused", "MediaUrl0 refused port"),
            ("MediaUrl0", f"http://127.0.0.1:{port}/metrics", "MediaUrl0 = the gateway itself"),
            ("MediaUrl0", "http://a:b@127.0.0.1:99999/x", "MediaUrl0 port 99999"),
            ("MediaUrl0", "http://[::1", "MediaUrl0 broken IPv6"),
            ("MediaUrl0", "http://", "MediaUrl0 'http://'"),
            ("MediaUrl0", "https://" + "a" * 5000, "MediaUrl0 5000-char host"),
            ("MediaUrl0", "file:///etc/passwd", "MediaUrl0 file://"),
            ("MediaUrl0", "http://\x00/", "MediaUrl0 NUL host"),
            ("MediaUrl0", f"{self.twilio.base_url}/2010-04-01/nothing", "MediaUrl0 404"),
            ("MediaContentType0", "text/vcard", "MediaContentType0 vCard (for whatever URL)"),
            ("MediaContentType0", "", "MediaContentType0 empty"),
            ("MediaContentType0", ";;;", "MediaContentType0 ;;;"),
            ("MediaContentType0", "image/jpeg; charset=\x00", "MediaContentType0 NUL"),
            ("MediaContentType0", "image/jpeg\r\nX-Injected: 1", "MediaContentType0 CRLF"),
            ("ProfileName", "Ann\r\nX-Injected: 1", "ProfileName CRLF"),
            ("Latitude", "nan", "Latitude=nan"),
            ("Latitude", "inf", "Latitude=inf"),
            ("Latitude", "1e309", "Latitude=1e309"),
            ("Latitude", "91", "Latitude=91"),
            ("Latitude", "٣", "Latitude=٣"),
            ("Latitude", "", "Latitude empty"),
            ("+Latitude-only", "10", "Latitude without Longitude"),
            ("From", None, "no From"),
            ("From", "whatsapp:", "From 'whatsapp:'"),
            ("From", "whatsapp:+1", "From too short"),
            ("From", "+14155552671", "From without whatsapp:"),
            ("From", "whatsapp:+١٤١٥٥٥٥٢٦٧١", "From Arabic-Indic digits"),
            ("From", "whatsapp:+14155552671\n", "From trailing newline"),
            ("From", "whatsapp:+99999999999999999999", "From 20 digits"),
            ("WaId", "²", "WaId=²"),
            ("WaId", "", "WaId empty"),
            ("WaId", "9" * 5000, "WaId 5000 digits"),
            ("ProfileName", "\x00", "ProfileName NUL"),
            ("ProfileName", "P" * 70_000, "ProfileName 70k"),
            ("Body", "B" * 70_000, "Body 70k"),
            ("ButtonPayload", "\x00" * 10, "ButtonPayload NULs"),
            ("OriginalRepliedMessageSid", "SM" + "0" * 32, "reply to an unknown message"),
            ("ChannelMetadata", "{not json", "ChannelMetadata not JSON"),
            *self._vcard_targets(),
        ]

    def _vcard_targets(self) -> list[tuple[str, str | None, str]]:
        """MediaUrl0 pointing at odd vCards (the contact card is read while Twilio waits)."""
        rng = self.rng
        cards = [
            ("vCard 300 KB", b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:" + b"A" * 300_000 + b"\r\nEND:VCARD\r\n"),
            ("vCard not a vCard", SAMPLE_JPEG),
            ("vCard invalid UTF-8", b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:\xff\xfe\r\nTEL:\xc3\x28\r\nEND:VCARD\r\n"),
            (
                "vCard NUL and ²",
                b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:\x00\r\nTEL:\xc2\xb2\r\nEMAIL:a@\x00\r\nEND:VCARD\r\n",
            ),
            (
                "vCard 1000 TEL lines",
                b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:X\r\n" + b"TEL:+1415555%04d\r\n" % 1 * 1000 + b"END:VCARD\r\n",
            ),
            ("vCard nested", b"BEGIN:VCARD\r\nBEGIN:VCARD\r\nBEGIN:VCARD\r\nFN:x\r\nEND:VCARD\r\n"),
            ("vCard empty", b""),
        ]
        name, data = rng.choice(cards)
        return [("MediaUrl0", self.twilio.add_media("text/vcard", data), name)]

    def _encode(self, form: Form) -> tuple[bytes, str | None, Form, str | None]:
        """Body, Content-Type, the parameters as the gateway will parse them (what a signature covers), label."""
        rng = self.rng
        urlencoded = "application/x-www-form-urlencoded"
        pairs = [(k, v.encode("utf-8", "surrogatepass")) for k, v in form]
        body = "&".join(quote(k) + "=" + quote_from_bytes(v) for k, v in pairs).encode()
        roll = rng.random()
        label: str | None = None
        content_type: str | None = urlencoded
        if roll < 0.015:
            body, label = body + b"&Body=\xff\xfe\xc3\x28", "raw invalid UTF-8 in the form"
        elif roll < 0.03:
            content_type, label = urlencoded + "; charset=x-bogus", "charset=x-bogus"
        elif roll < 0.04:
            content_type, label = urlencoded + "; charset=utf-16", "charset=utf-16"
        elif roll < 0.05:
            content_type, label = "multipart/form-data", "multipart without boundary"
        elif roll < 0.065:
            boundary = "fuzzb0undary"
            body = _multipart(form, boundary, with_file=rng.random() < 0.5)
            content_type, label = f"multipart/form-data; boundary={boundary}", "multipart form"
        elif roll < 0.075:
            content_type, label = "application/json", "JSON body"
            body = json.dumps(dict(form)).encode()
        elif roll < 0.085:
            content_type, label = None, "no Content-Type"
        elif roll < 0.095:
            body, label = rng.choice(
                (
                    (b"", "empty body"),
                    (b"Body=%ZZ%&&&==&x", "broken escapes"),
                    (b"A" * 1_100_000, "1.1 MB body"),
                    (b"\x00" * 100, "NUL bytes"),
                    (body + b"&" + b"k=v&" * 20_000, "20k parameters"),
                )
            )
        parsed = self._as_parsed(body, content_type, form)
        return body, content_type, parsed, label

    @staticmethod
    def _as_parsed(body: bytes, content_type: str | None, form: Form) -> Form:
        if content_type and content_type.startswith("multipart/form-data;"):
            return form
        try:
            text = body.rstrip().decode("utf-8")
        except UnicodeDecodeError:
            return form
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8")

    def _signature(self, url: str, form: Form, request: Request) -> tuple[str | None, str | None]:
        rng = self.rng
        # What the gateway decodes a lone surrogate's bytes to; a str holding one could not be signed at all.
        params: MultiDict[str] = MultiDict(
            (k, v.encode("utf-8", "surrogatepass").decode("utf-8", "replace")) for k, v in form
        )
        roll = rng.random()
        if roll < 0.85:
            return self.validator.compute_signature(url, params), None
        if roll < 0.89:
            return None, "unsigned"
        if roll < 0.92:
            return "bm90IGEgc2lnbmF0dXJl", "wrong signature"
        if roll < 0.94:
            return RequestValidator("another-token").compute_signature(url, params), "signed with another token"
        if roll < 0.96:
            return self.validator.compute_signature(url.replace("http://", "https://"), params), "signed over https"
        if roll < 0.98:
            return "ü" * 30, "non-ASCII signature"
        request.raw_headers.append((b"X-Twilio-Signature", b"\xff\xfe" + b"=" * 20))
        return None, "latin-1 signature bytes"


def _set(form: Form, key: str, value: str) -> None:
    for index, (k, _) in enumerate(form):
        if k == key:
            form[index] = (key, value)
            return
    form.append((key, value))


def _multipart(form: Form, boundary: str, *, with_file: bool) -> bytes:
    parts = []
    for key, value in form:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode()
            + value.encode("utf-8", "surrogatepass")
            + b"\r\n"
        )
    if with_file:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="Body"; filename="a.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + b"\x00\xff" * 100
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


# -- REST API ------------------------------------------------------------------------------------


def _pct(text: str) -> str:
    """Percent-encode anything, lone surrogates included (as their CESU-8 bytes)."""
    return quote_from_bytes(text.encode("utf-8", "surrogatepass"), safe="")


class ApiInputs:
    """Calls of /api/v1 with hostile paths, query strings, bodies and credentials."""

    def __init__(self, rng: random.Random, world: World) -> None:
        self.rng = rng
        self.world = world

    def case(self) -> Case:
        """One call of the API."""
        rng = self.rng
        roll = rng.random()
        labels: list[str]
        if roll < 0.18:
            request, labels = self._list_threads()
        elif roll < 0.3:
            number, kind = self._number()
            request, labels = Request("GET", f"/api/v1/threads/{number}"), [f"GET /threads/N (N {kind})"]
        elif roll < 0.42:
            request, labels = self._list_messages()
        elif roll < 0.58:
            number, kind = self._number()
            request, labels = self._body("POST", f"/api/v1/threads/{number}/messages", self._message_body())
            labels[0] = f"POST /threads/N/messages (N {kind}) {labels[0]}"
        elif roll < 0.66:
            request, labels = self._find_contacts()
        elif roll < 0.72:
            contact, kind = self._contact_id()
            request, labels = Request("GET", f"/api/v1/contacts/{contact}"), [f"GET /contacts/ID (ID {kind})"]
        elif roll < 0.84:
            contact, kind = self._contact_id()
            request, labels = self._body("PATCH", f"/api/v1/contacts/{contact}", self._contact_body())
            labels[0] = f"PATCH /contacts/ID (ID {kind}) {labels[0]}"
        elif roll < 0.92:
            token, kind = self._visitor_token()
            request, labels = self._body("PATCH", f"/api/v1/visitors/{token}", self._contact_body())
            labels[0] = f"PATCH /visitors/TOKEN (token {kind}) {labels[0]}"
        elif roll < 0.96:
            request, labels = Request("GET", "/api/v1/openapi.json"), ["GET /openapi.json"]
        else:
            request, labels = self._odd_path()
        self._auth(request, labels)
        return Case("api", "; ".join(labels), request)

    def _number(self) -> tuple[str, str]:
        """A thread number in a path, and its class."""
        rng = self.rng
        if self.world.threads and rng.random() < 0.55:
            number = str(rng.choice(self.world.threads))
            return rng.choice(((number, "real"), ("%23" + number, "real, as #N")))
        return rng.choice(
            (
                ("99999999999999999999", "20 digits"),
                ("-1", "-1"),
                ("0", "0"),
                ("%C2%B2", "²"),
                ("%D9%A1%D9%A7", "Arabic-Indic digits"),
                ("%EF%BC%91", "fullwidth digit"),
                ("1" * 5000, "5000 digits"),
                ("%201", "' 1'"),
                ("+1", "+1"),
                ("1e3", "1e3"),
                ("0x11", "0x11"),
                ("0017", "0017"),
                ("%00", "NUL"),
                ("%ED%A0%80", "surrogate bytes"),
                ("%FF", "invalid UTF-8"),
                ("%2F", "encoded slash"),
                ("%25", "encoded %"),
                ("1.0", "1.0"),
                (str(2**63), "2**63"),
                (str(2**63 - 1), "2**63-1 (unknown)"),
            )
        )

    def _contact_id(self) -> tuple[str, str]:
        rng = self.rng
        if self.world.contact_ids and rng.random() < 0.5:
            return rng.choice(self.world.contact_ids), "real"
        return rng.choice(
            (
                (str(ObjectId()), "unknown"),
                ("0" * 23, "23 digits"),
                ("z" * 24, "24 non-hex"),
                ("%00" * 24, "24 NULs"),
                ("%C2%B2" * 12, "12 ²"),
                ("a" * 5000, "5000 chars"),
                ("$where", "$where"),
                ("%ED%A0%80", "surrogate bytes"),
            )
        )

    def _visitor_token(self) -> tuple[str, str]:
        rng = self.rng
        signer = Signer(WIDGET_SECRET, "widget-visitor")
        if self.world.visitor_tokens and rng.random() < 0.4:
            return rng.choice(self.world.visitor_tokens), "real"
        return rng.choice(
            (
                ("abc.def", "forged"),
                ("nodot", "no dot"),
                (".", "a dot"),
                ("a" * 600, "600 chars"),
                (signer.sign({"v": "\ud800"}), "made with the real secret, v=lone surrogate"),
                (signer.sign({"v": "x\x00y"}), "made with the real secret, v=NUL"),
                (signer.sign({"v": 5}), "made with the real secret, v=5"),
                (signer.sign({"v": ""}), "made with the real secret, v empty"),
                (Signer("other-secret-0123456789", "widget-visitor").sign({"v": "abc"}), "another secret's"),
                (_pct("tok\ud800.x"), "surrogate bytes"),
            )
        )

    def _query_value(self) -> tuple[str, str]:
        name, value = self.rng.choice(
            (
                ("2**66", "73786976294838206464"),
                ("²", "²"),
                ("0", "0"),
                ("-1", "-1"),
                ("201", "201"),
                ("empty", ""),
                ("5000 digits", "1" * 5000),
                ("1.5", "1.5"),
                ("NUL", "\x00"),
                ("lone surrogate", "\ud800"),
                ("emoji", "🙂"),
                ("20 digits", "99999999999999999999"),
            )
        )
        return name, _pct(value)

    def _query(self, names: Sequence[str]) -> tuple[str, list[str]]:
        rng = self.rng
        parts: list[str] = []
        labels: list[str] = []
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            param = rng.choice(names)
            name, value = self._query_value()
            parts.append(f"{param}={value}")
            labels.append(f"{param}={name}")
        roll = rng.random()
        if roll < 0.05:
            parts.append("limit=1&limit=2")
            labels.append("limit twice")
        elif roll < 0.1:
            parts.append(rng.choice(("nosuch=1", "limit", "=", "&&", "%ZZ=1", "x=" + "y" * 9000)))
            labels.append(f"odd query {parts[-1][:10]!r}")
        return ("?" + "&".join(parts) if parts else ""), labels

    def _list_threads(self) -> tuple[Request, list[str]]:
        query, labels = self._query(("limit", "offset", "status", "operator", "channel"))
        if self.rng.random() < 0.3:
            value = self.rng.choice(("queued", "assigned", "closed", "open", "%00", "QUEUED", "telegram", "webwidget"))
            query += ("&" if query else "?") + self.rng.choice(("status=", "channel=")) + value
            labels.append(f"status/channel={value}")
        return Request("GET", "/api/v1/threads" + query), ["GET /threads", *labels]

    def _list_messages(self) -> tuple[Request, list[str]]:
        query, labels = self._query(("limit", "offset"))
        number, kind = self._number()
        return Request("GET", f"/api/v1/threads/{number}/messages{query}"), [
            f"GET /threads/N/messages (N {kind})",
            *labels,
        ]

    def _find_contacts(self) -> tuple[Request, list[str]]:
        rng = self.rng
        param = rng.choice(("phone", "email", "phone", "email", "both", "none"))
        value_name, value = rng.choice(
            (
                ("valid phone", "+14155552671"),
                ("national phone", "(415) 555-2671"),
                ("²", "²"),
                ("5000 digits", "1" * 5000),
                ("valid e-mail", "ann@example.com"),
                ("odd e-mail", "a@b@c"),
                ("IDN e-mail", "ann@пример.рф"),
                ("lone surrogate", "\ud800"),
                ("NUL", "+1415\x00"),
                ("Mongo operator", "$where"),
                ("regex", ".*"),
            )
        )
        if param == "both":
            query = f"?phone={_pct(value)}&email={_pct(value)}"
        elif param == "none":
            query = ""
        else:
            query = f"?{param}={_pct(value)}"
        return Request("GET", "/api/v1/contacts" + query), [f"GET /contacts?{param}={value_name}"]

    def _message_body(self) -> tuple[Any, str]:
        rng = self.rng
        body: dict[str, Any] = {"text": rng.choice(PLAIN_TEXTS)}
        if rng.random() < 0.5:
            body["author_name"] = "Maria"
        if rng.random() < 0.6:
            return body, "valid"
        labels = mutate(body, rng, rng.choice((1, 2)))
        return body, ", ".join(labels)

    def _contact_body(self) -> tuple[Any, str]:
        rng = self.rng
        body: dict[str, Any] = {}
        fields = (("name", "Ann Lee"), ("email", "ann@example.com"), ("phone", "+14155552671"))
        body.update({key: value for key, value in fields if rng.random() < 0.4})
        if rng.random() < 0.5:
            body["attributes"] = {"plan": "gold", "orders": 3, "vip": True}
        roll = rng.random()
        if roll < 0.3:
            return body, "valid"
        if roll < 0.6:
            key_name, key = rng.choice(
                (
                    ("NUL in key", "a\x00b"),
                    ("$ key", "$set"),
                    ("dotted key", "a.b"),
                    ("empty key", ""),
                    ("surrogate key", "\ud800"),
                    ("65-char key", "k" * 65),
                    ("_id key", "_id"),
                    ("__proto__", "__proto__"),
                )
            )
            value_name, value = hostile_value(rng)
            body["attributes"] = {key: value}
            return body, f"attributes {key_name}={value_name}"
        if roll < 0.65:
            body["attributes"] = {f"k{i}": i for i in range(rng.choice((51, 1000)))}
            return body, f"{len(body['attributes'])} attributes"
        labels = mutate(body, rng, rng.choice((1, 2))) if body else []
        if not labels:
            name, value = hostile_value(rng)
            body[rng.choice(("name", "email", "phone", "attributes", "extra"))] = value
            labels = [f"field={name}"]
        return body, ", ".join(labels)

    def _body(self, method: str, target: str, built: tuple[Any, str]) -> tuple[Request, list[str]]:
        rng = self.rng
        doc, label = built
        request = Request(method, target)
        body, how = json_bytes(doc, rng)
        labels = [label] + ([how] if how else [])
        if rng.random() < 0.12:
            name, body = hostile_body(rng, body)
            labels = [name]
        content_type: str | None = "application/json"
        if rng.random() < 0.08:
            name, content_type = rng.choice(JSON_TYPES)
            labels.append(f"Content-Type {name}")
        if content_type is not None:
            request.headers.append(("Content-Type", content_type))
        request.body = body
        return request, labels

    def _odd_path(self) -> tuple[Request, list[str]]:
        rng = self.rng
        method, target = rng.choice(
            (
                ("DELETE", "/api/v1/threads/1"),
                ("PUT", "/api/v1/threads/1/messages"),
                ("HEAD", "/api/v1/threads"),
                ("OPTIONS", "/api/v1/threads"),
                ("GET", "/api/v1/"),
                ("GET", "/api/v1/../../metrics"),
                ("GET", "/api/v1/%2e%2e/healthz"),
                ("GET", "/api/v1/threads/1/messages/extra"),
                ("GET", "/api/v1/contacts/" + "%00" * 100),
                ("GET", "/api/v2/threads"),
                ("GET", "/api/v1/threads?" + "a=1&" * 3000),
                ("POST", "/api/v1/openapi.json"),
                ("GET", "/api/v1/" + "x" * 9000),
            )
        )
        return Request(method, target), [f"{method} {target[:30]}"]

    def _auth(self, request: Request, labels: list[str]) -> None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.86:
            request.headers.append(("Authorization", f"Bearer {API_TOKEN}"))
            return
        variants: list[tuple[str, Callable[[], None]]] = [
            ("no token", lambda: None),
            ("wrong token", lambda: request.headers.append(("Authorization", "Bearer wrong-token-0123456789"))),
            ("Basic auth", lambda: request.headers.append(("Authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l"))),
            ("lower-case bearer", lambda: request.headers.append(("Authorization", f"bearer {API_TOKEN}"))),
            ("two spaces", lambda: request.headers.append(("Authorization", f"Bearer  {API_TOKEN}"))),
            ("token twice", lambda: request.headers.extend([("Authorization", f"Bearer {API_TOKEN}")] * 2)),
            ("non-ASCII token", lambda: request.headers.append(("Authorization", "Bearer tökén-ü-0123456789"))),
            ("latin-1 token bytes", lambda: request.raw_headers.append((b"Authorization", b"Bearer t\xf6k\xe9n\xff"))),
            ("10k token", lambda: request.headers.append(("Authorization", "Bearer " + "t" * 10_000))),
            ("scheme only", lambda: request.headers.append(("Authorization", "Bearer"))),
        ]
        name, apply = rng.choice(variants)
        apply()
        labels.append(name)


# -- media links ---------------------------------------------------------------------------------


class MediaInputs:
    """GET /media/{token}: genuine, expired, forged, truncated and random tokens."""

    def __init__(self, rng: random.Random, world: World) -> None:
        self.rng = rng
        self.world = world
        self.signer = Signer(SERVER_SECRET, "media-link")
        self.links = MediaLinks(SERVER_SECRET, world.public_url)

    def case(self) -> Case:
        """One request for a media link."""
        rng = self.rng
        genuine = self._genuine()
        options: list[tuple[str, Callable[[], str]]] = [
            ("genuine link", lambda: genuine),
            (
                "genuine link, one char changed",
                lambda: genuine[:-3] + ("A" if genuine[-3] != "A" else "B") + genuine[-2:],
            ),
            ("truncated link", lambda: genuine[: rng.randrange(1, len(genuine))]),
            ("random token", lambda: f"{rng.getrandbits(256):x}"),
            ("random a.b", lambda: f"{rng.getrandbits(64):x}.{rng.getrandbits(64):x}"),
            ("dot only", lambda: "."),
            ("8000 chars", lambda: "a" * 8000),
            ("percent junk", lambda: "%00%ED%A0%80%FF.%2F"),
            ("expired (real secret)", lambda: self.signer.sign({"m": self._message_id(), "i": 0}, ttl=-10)),
            (
                "made with the real secret, unknown message",
                lambda: self.signer.sign({"m": str(ObjectId()), "i": 0}, ttl=60),
            ),
            (
                "made with the real secret, index 10**30",
                lambda: self.signer.sign({"m": self._message_id(), "i": 10**30}, ttl=60),
            ),
            (
                "made with the real secret, index -1",
                lambda: self.signer.sign({"m": self._message_id(), "i": -1}, ttl=60),
            ),
            (
                "made with the real secret, index true",
                lambda: self.signer.sign({"m": self._message_id(), "i": True}, ttl=60),
            ),
            (
                "made with the real secret, index '0'",
                lambda: self.signer.sign({"m": self._message_id(), "i": "0"}, ttl=60),
            ),
            ("made with the real secret, m not an id", lambda: self.signer.sign({"m": "zz", "i": 0}, ttl=60)),
            ("made with the real secret, m a list", lambda: self.signer.sign({"m": [1], "i": 0}, ttl=60)),
            (
                "made with the real secret, m an object",
                lambda: self.signer.sign({"m": {"$oid": str(ObjectId())}, "i": 0}, ttl=60),
            ),
            ("made with the real secret, no m", lambda: self.signer.sign({"i": 0}, ttl=60)),
            (
                "made with the real secret, exp a string",
                lambda: self.signer.sign({"m": self._message_id(), "i": 0, "exp": "never"}),
            ),
            ("made with the real secret, payload a list", lambda: _signed_raw(self.signer, b"[1,2]")),
            ("made with the real secret, payload not JSON", lambda: _signed_raw(self.signer, b"\xff\xfe")),
            (
                "signed with another secret",
                lambda: Signer("another-secret-0123456789", "media-link").sign({"m": "x", "i": 0}),
            ),
            ("visitor token as media link", lambda: Signer(WIDGET_SECRET, "widget-visitor").sign({"v": "abc"})),
        ]
        name, build = rng.choice(options)
        token = build()
        target = "/media/" + quote(token, safe="%.-_")
        method = "GET" if rng.random() < 0.97 else rng.choice(("POST", "HEAD", "DELETE"))
        return Case("media", name + ("" if method == "GET" else f"; method {method}"), Request(method, target))

    def _message_id(self) -> str:
        if self.world.media_messages and self.rng.random() < 0.8:
            return self.rng.choice(self.world.media_messages)[0]
        return self.rng.choice(self.world.message_ids) if self.world.message_ids else str(ObjectId())

    def _genuine(self) -> str:
        rng = self.rng
        if self.world.media_messages:
            message_id, count = rng.choice(self.world.media_messages)
            index = rng.randrange(count) if rng.random() < 0.8 else count
        else:
            message_id, index = str(ObjectId()), 0
        return self.links.url(ObjectId(message_id), index).rsplit("/", 1)[1]


def _signed_raw(signer: Signer, payload: bytes) -> str:
    encoded = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    return f"{encoded}.{signer._mac(encoded)}"


# -- widget --------------------------------------------------------------------------------------


class WidgetInputs:
    """Sockets of the widget protocol, each a hello and a handful of frames, hostile or not."""

    def __init__(self, rng: random.Random, ids: Ids, world: World) -> None:
        self.rng = rng
        self.ids = ids
        self.world = world
        self.signer = Signer(WIDGET_SECRET, "widget-visitor")

    def case(self) -> Case:
        """One socket: a hello, then 5 to 14 frames."""
        rng = self.rng
        headers, handshake_label = self._headers()
        frames = [self._hello(), *(self._frame() for _ in range(rng.randrange(5, 15)))]
        label = "socket" + (f" ({handshake_label})" if handshake_label else "")
        return Case("widget", label, frames=frames, ws_headers=headers)

    def _headers(self) -> tuple[list[tuple[str, str]], str | None]:
        rng = self.rng
        # The gateway limits new visitors per address; behind the (trusted) proxy each socket is someone else.
        address = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        headers = [
            ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"),
            ("X-Forwarded-For", address),
        ]
        roll = rng.random()
        if roll < 0.5:
            headers.append(("Origin", WIDGET_ORIGIN))
            return headers, None
        if roll < 0.9:
            return headers, None
        name, extra = rng.choice(
            (
                ("foreign Origin", [("Origin", "https://evil.example")]),
                ("Origin null", [("Origin", "null")]),
                ("non-ASCII Origin", [("Origin", "https://shöp.example")]),
                ("10k User-Agent", [("User-Agent", "Mozilla/5.0 " + "(x) " * 2500)]),
                ("odd User-Agent", [("User-Agent", "\u202e() { :; }; /bin/sh")]),
                ("X-Forwarded-For junk", [("X-Forwarded-For", "999.1.1.1, ::ffff:zz, " + "1.2.3.4," * 500)]),
            )
        )
        replaced = {k for k, _ in extra}
        return [h for h in headers if h[0] not in replaced] + extra, name

    def _hello(self) -> Frame:
        rng = self.rng
        hello: dict[str, Any] = {
            "type": "hello",
            "page": {"url": "https://shop.example/cart", "title": "Cart", "referrer": "https://google.com/"},
            "language": rng.choice(("en", "ru", "de-DE")),
        }
        label = "hello"
        roll = rng.random()
        if self.world.visitor_tokens and roll < 0.3:
            hello["visitor_token"] = rng.choice(self.world.visitor_tokens)
            label = "hello (returning visitor)"
        elif roll < 0.65:
            label = "hello"
        else:
            name, value = rng.choice(
                (
                    ("forged token", "abc.def"),
                    ("token of another secret", Signer("other-secret-0123456789", "widget-visitor").sign({"v": "a"})),
                    ("real-secret token, v=lone surrogate", self.signer.sign({"v": "\ud800"})),
                    ("real-secret token, v=NUL", self.signer.sign({"v": "\x00"})),
                    ("real-secret token, v=70k chars", self.signer.sign({"v": "v" * 70_000})),
                    ("token is a number", 5),
                    ("token is a list", ["a"]),
                )
            )
            hello["visitor_token"] = value
            label = f"hello, {name}"
            if rng.random() < 0.5:
                labels = mutate(hello, rng, 1, skip=("type", "visitor_token"))
                label += ", " + ", ".join(labels)
        return Frame("text", json.dumps(hello), label)

    def _frame(self) -> Frame:
        rng = self.rng
        roll = rng.random()
        self.ids.client += 1
        client_id = f"c{self.ids.client}"
        if roll < 0.3:
            return Frame(
                "text",
                json.dumps({"type": "message", "text": rng.choice(PLAIN_TEXTS), "client_id": client_id}),
                "message",
            )
        if roll < 0.5:
            frame: dict[str, Any] = {"type": "message", "text": rng.choice(PLAIN_TEXTS), "client_id": client_id}
            if rng.random() < 0.5:
                name, value = hostile_value(rng, "text")
                frame["text"] = value
                return Frame("text", json.dumps(frame), f"message text={name}")
            name, value = hostile_value(rng, "id")
            frame["client_id"] = value
            return Frame("text", json.dumps(frame), f"message client_id={name}")
        if roll < 0.6:
            frame = {"type": "page", "url": "https://shop.example/p/1", "title": "Product"}
            labels = mutate(frame, rng, 1, skip=("type",))
            return Frame("text", json.dumps(frame), "page " + ", ".join(labels))
        if roll < 0.7:
            frame = {"type": "identify", "name": "Ann", "email": "ann@example.com", "phone": "+14155552671"}
            labels = mutate(frame, rng, rng.choice((1, 2)), skip=("type",))
            return Frame("text", json.dumps(frame), "identify " + ", ".join(labels))
        if roll < 0.75:
            return Frame("text", json.dumps({"type": "typing"}), "typing")
        if roll < 0.8:
            name, value = rng.choice(
                (
                    ("hello again", {"type": "hello", "page": {"url": "x"}}),
                    ("rating", {"type": "rating", "score": 10**20, "comment": "\ud800"}),
                    ("read", {"type": "read", "id": {"$gt": ""}}),
                    ("type __proto__", {"type": "__proto__"}),
                    ("type empty", {"type": ""}),
                    ("type a number", {"type": 1}),
                    ("type 5000 chars", {"type": "t" * 5000}),
                    ("no type", {"text": "hi"}),
                )
            )
            return Frame("text", json.dumps(value), name)
        options: list[tuple[str, Callable[[], Frame]]] = [
            ("JSON array", lambda: Frame("text", "[]", "JSON array")),
            ("JSON string", lambda: Frame("text", '"message"', "JSON string")),
            ("JSON null", lambda: Frame("text", "null", "JSON null")),
            ("not JSON", lambda: Frame("text", "{type: message}", "not JSON")),
            ("NaN", lambda: Frame("text", '{"type": "message", "text": NaN, "client_id": 1e999}', "NaN / 1e999")),
            ("nested 2000", lambda: Frame("text", "[" * 2000 + "]" * 2000, "array nested 2000 deep (4 KB)")),
            (
                "nested 990",
                lambda: Frame("text", '{"type": "page", "url": ' + "[" * 990 + "]" * 990 + "}", "page nested 990 deep"),
            ),
            ("nested objects", lambda: Frame("text", '{"a":' * 1500 + "1" + "}" * 1500, "object nested 1500 deep")),
            (
                "16 KB + 1",
                lambda: Frame(
                    "text", json.dumps({"type": "message", "text": "x" * 16_400, "client_id": "big"}), "16 KB frame"
                ),
            ),
            ("60 KB", lambda: Frame("text", "x" * 60_000, "60 KB frame")),
            (
                "70 KB",
                lambda: Frame(
                    "text", json.dumps({"type": "message", "text": "x" * 70_000, "client_id": "huge"}), "70 KB frame"
                ),
            ),
            ("binary", lambda: Frame("binary", b"\x00\x01\x02", "binary frame")),
            ("binary 70 KB", lambda: Frame("binary", b"\xff" * 70_000, "binary 70 KB frame")),
            (
                "invalid UTF-8",
                lambda: Frame("utf8-bytes", b'{"type": "typing", "x": "\xff\xfe"}', "text frame of invalid UTF-8"),
            ),
            ("ping", lambda: Frame("ping", b"p" * 100, "ping")),
            (
                "escaped NUL",
                lambda: Frame(
                    "text", '{"type": "message", "text": "\\u0000", "client_id": "\\ud800"}', "escaped NUL / surrogate"
                ),
            ),
            (
                "duplicate client_id",
                lambda: Frame(
                    "text", json.dumps({"type": "message", "text": "again", "client_id": "c1"}), "re-sent client_id"
                ),
            ),
        ]
        _, build = rng.choice(options)
        return build()


# -- the gateway process -------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def widget_limits() -> str:
    """Every per-minute limit the widget's settings know, as high as allowed: inputs should reach the handlers."""
    lines = []
    for name, info in WebWidgetSettings.model_fields.items():
        if "per_minute" in name:
            ceilings = [m.le for m in info.metadata if getattr(m, "le", None) is not None]
            lines.append(f"{name} = {min([100_000, *ceilings])}")
    return "\n".join(lines)


def write_config(workdir: Path, port: int, telegram_api: str, twilio_api: str) -> Path:
    """The gateway's TOML: every part configured, Telegram and Twilio pointed at the emulators."""
    operators = "\n".join(
        f'[[operators]]\ntelegram_id = {uid}\nname = "{name}"\nusername = "{name.lower()}"\nrole = "{role}"\n'
        + ('groups = ["sales"]\n' if uid == SAM else "")
        for uid, name, role in ((OLGA, "Olga", "operator"), (SAM, "Sam", "operator"), (BOSS, "Boss", "supervisor"))
    )
    config = f"""
[server]
host = "127.0.0.1"
port = {port}
public_url = "http://127.0.0.1:{port}"
secret = "{SERVER_SECRET}"
trusted_proxies = ["127.0.0.1/32"]

[storage]
uri = "embedded"
database = "fuzz"
data_dir = "{workdir / "data"}"

[telegram]
api_base = "{telegram_api}"

[[telegram.bots]]
name = "{BOT_NAME}"
token = "{CUSTOMER_BOT}"
webhook_secret = "{TG_SECRET}"

[operator_bot]
token = "{OPERATOR_BOT}"
webhook_secret = "{OP_SECRET}"
supervisors_chat_id = {SUPERVISORS}

[whatsapp]
account_sid = "{ACCOUNT_SID}"
auth_token = "{AUTH_TOKEN}"
sender = "{SENDER}"
api_base = "{twilio_api}"

[[whatsapp.templates]]
name = "follow_up"
content_sid = "HX{"0b" * 16}"
variables = ["name"]

[webwidget]
allowed_origins = ["{WIDGET_ORIGIN}"]
secret = "{WIDGET_SECRET}"
{widget_limits()}

[api]
tokens = ["{API_TOKEN}"]

[routing]
max_chats_per_operator = 50

[delivery]
max_attempts = 2
retry_base_seconds = 0.5
poll_seconds = 0.2

{operators}
"""
    path = workdir / "gateway.toml"
    path.write_text(config, encoding="utf-8")
    return path


async def start_gateway(config: Path, log: Path) -> asyncio.subprocess.Process:
    """`python -m gateway run` in a child process, its output (the log) into `log`."""
    env = {k: v for k, v in os.environ.items() if k not in ("TWILIO_EDGE", "TWILIO_REGION", "MONGODB_URI")}
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "run", "--config", str(config), cwd=ROOT, env=env, stdout=out, stderr=out
        )


async def wait_ready(session: ClientSession, base: str, process: asyncio.subprocess.Process) -> bool:
    """Whether /readyz answered 200 before the process died or a minute passed."""
    for _ in range(600):
        if process.returncode is not None:
            return False
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with session.get(base + "/readyz") as response:
                if response.status == 200:
                    return True
        await asyncio.sleep(0.1)
    return False


async def stop_gateway(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, as an operator would stop it (shutdown tracebacks count too); SIGKILL after 30 s."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 30)
    except TimeoutError:
        process.kill()
        await process.wait()


# -- sending -------------------------------------------------------------------------------------


async def send_http(session: ClientSession, base: str, port: int, case: Case) -> None:
    """Send one request; its outcome is the status code, or how the connection failed."""
    request = case.request
    assert request is not None
    case.started = time.time()
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            if request.raw_headers:
                case.outcome = await send_raw(port, request)
            else:
                headers = CIMultiDict(request.headers)
                async with session.request(
                    request.method,
                    URL(base + request.target, encoded=True),
                    headers=headers,
                    data=request.body,
                    skip_auto_headers=("Content-Type",),
                    allow_redirects=False,
                ) as response:
                    await response.read()
                    case.outcome = str(response.status)
    except TimeoutError:
        case.outcome = "timeout"
    except aiohttp.ClientResponseError as err:  # e.g. a 400 with a body, in answer to HEAD
        case.outcome = str(err.status) if err.status else f"dropped ({type(err).__name__})"
    except (aiohttp.ClientError, OSError, ValueError) as err:
        case.outcome = f"dropped ({type(err).__name__})"
    case.ended = time.time()


async def send_raw(port: int, request: Request) -> str:
    """Send bytes as they are, for header values no HTTP client would encode."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"{request.method} {request.target} HTTP/1.1".encode(), f"Host: 127.0.0.1:{port}".encode()]
        lines += [b"Connection: close", f"Content-Length: {len(request.body or b'')}".encode()]
        lines += [f"{k}: {v}".encode() for k, v in request.headers]
        lines += [k + b": " + v for k, v in request.raw_headers]
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + (request.body or b""))
        await writer.drain()
        status_line = await reader.readline()
        with contextlib.suppress(ConnectionError):
            await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    parts = status_line.split()
    return parts[1].decode() if len(parts) > 1 and parts[1].isdigit() else "dropped (no status line)"


async def send_socket(session: ClientSession, base: str, case: Case) -> None:
    """Open a widget socket and send its frames, each followed by a probe; the outcome is how the socket ended.

    A probe is a frame of an unknown type named after the frame before it; the widget answers it with an error
    naming it. Frames are handled in order, so whatever comes back before probe i's answer is frame i's doing.
    """
    case.started = time.time()
    try:
        ws = await session.ws_connect(
            base + "/channels/webwidget/ws",
            headers=CIMultiDict(case.ws_headers),
            max_msg_size=0,
            timeout=aiohttp.ClientWSTimeout(ws_close=10),
        )
    except aiohttp.WSServerHandshakeError as err:
        case.handshake = case.outcome = str(err.status)
        case.ended = time.time()
        return
    except (aiohttp.ClientError, OSError) as err:
        case.handshake = case.outcome = f"dropped ({type(err).__name__})"
        case.ended = time.time()
        return
    case.handshake = "101"
    answered = asyncio.Event()
    handled = 0  # frames whose probe came back
    closing = False
    heard_at = 0.0  # when the socket last answered
    heard_code = ""  # and the error code it answered with

    async def read() -> None:
        nonlocal handled, heard_at, heard_code
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                continue
            heard_at, heard_code = time.time(), ""
            with contextlib.suppress(ValueError):
                frame = json.loads(message.data)
                if not isinstance(frame, dict) or frame.get("type") != "error":
                    continue
                code = heard_code = str(frame.get("code"))
                probe = re.search(r"fuzz-probe-(\d+)", str(frame.get("message")))
                if probe:
                    handled = int(probe.group(1)) + 1
                    if handled == len(case.frames):
                        answered.set()
                    continue
                case.error_codes[code] += 1
                if code == "unavailable":
                    case.refusals.append((time.time(), handled))
        if not closing:
            case.culprit = handled

    reader = asyncio.create_task(read())
    try:
        for index, frame in enumerate(case.frames):
            if ws.closed or reader.done():
                break
            case.sent_at.append(time.time())
            await _send_frame(ws, frame)
            await ws.send_str(json.dumps({"type": f"fuzz-probe-{index}"}))
        sent = time.time()
        probe = asyncio.create_task(answered.wait())
        while time.time() < sent + PROBE_TIMEOUT and not (answered.is_set() or reader.done()):
            await asyncio.wait({probe, reader}, timeout=0.25, return_when=asyncio.FIRST_COMPLETED)
            if heard_at > sent and time.time() - heard_at > QUIET:
                break
        probe.cancel()
        if answered.is_set():
            case.outcome = "alive"
        elif reader.done():
            case.outcome = str(ws.close_code or 1006)
        elif heard_at > sent:
            case.outcome = f"alive, last probe answered {heard_code or 'without an error'}"
        else:
            case.outcome = "no answer"
            case.culprit = handled
    except (ConnectionError, aiohttp.ClientError) as err:
        case.outcome = str(ws.close_code) if ws.close_code else f"dropped ({type(err).__name__})"
        case.culprit = handled
    finally:
        closing = True
        await ws.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    case.ended = time.time()


async def _send_frame(ws: aiohttp.ClientWebSocketResponse, frame: Frame) -> None:
    if frame.kind == "text":
        assert isinstance(frame.data, str)
        await ws.send_str(frame.data)
    elif frame.kind == "utf8-bytes":
        assert isinstance(frame.data, bytes)
        await ws.send_frame(frame.data, WSMsgType.TEXT)
    elif frame.kind == "binary":
        assert isinstance(frame.data, bytes)
        await ws.send_bytes(frame.data)
    else:
        assert isinstance(frame.data, bytes)
        await ws.ping(frame.data)


async def run_cases(session: ClientSession, base: str, port: int, cases: Sequence[Case], concurrency: int) -> None:
    """Send every case, at most `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(case: Case) -> None:
        async with gate:
            if case.request is None:
                await send_socket(session, base, case)
            else:
                await send_http(session, base, port, case)

    await asyncio.gather(*(one(case) for case in cases))


async def settle(tg: TelegramEmulator, twilio: TwilioEmulator, quiet: float = 0.7, limit: float = 15.0) -> None:
    """Wait until the gateway stops calling the emulators (its background work has caught up)."""
    deadline = time.monotonic() + limit
    seen = -1
    while time.monotonic() < deadline:
        now = len(tg.requests) + len(twilio.requests)
        if now == seen:
            return
        seen = now
        await asyncio.sleep(quiet)


# -- warm-up -------------------------------------------------------------------------------------


def setup_emulators(tg: TelegramEmulator) -> None:
    """The two bots, the operators, the customers and the supervisors' forum on the Telegram emulator."""
    tg.add_bot(CUSTOMER_BOT, "shop_support_bot", first_name="Shop support")
    tg.add_bot(OPERATOR_BOT, "desk_bot", first_name="Support desk")
    for uid, name in ((OLGA, "Olga"), (SAM, "Sam"), (BOSS, "Boss"), (EVE, "Eve")):
        tg.user(uid, name, username=name.lower(), language_code="ru" if uid == SAM else "en")
    for uid in CUSTOMERS:
        tg.user(uid, f"Customer{uid % 1000}", username=f"user{uid}")
    tg.supergroup(SUPERVISORS, "Supervisors", is_forum=True, members=[BOSS, OLGA])


async def warm_up(
    session: ClientSession, tg: TelegramEmulator, twilio: TwilioEmulator, world: World, ids: Ids
) -> list[str]:
    """Real conversations first, so that inputs can point at real threads, cards, contacts and files."""
    base = world.public_url
    problems: list[str] = []
    rng = random.Random(0)
    inputs = TelegramInputs(rng, ids, world, tg)

    async def post(path: str, body: Any, headers: dict[str, str]) -> int:
        async with session.post(base + path, json=body, headers=headers) as response:
            await response.read()
            if response.status >= 300:
                problems.append(f"warm-up {path}: HTTP {response.status}")
            return response.status

    for uid in (OLGA, BOSS):
        message = inputs.message(OPERATOR_BOT, uid, "text", text="/online")
        await post(
            "/operators/telegram", {"update_id": ids.next_update(), "message": message}, {SECRET_HEADER: OP_SECRET}
        )
    for uid in CUSTOMERS[:8]:
        message = inputs.message(CUSTOMER_BOT, uid, "text", text=f"Hello, order {uid} did not arrive")
        world.customer_messages.append((uid, message["message_id"]))
        await post(
            "/channels/telegram/support",
            {"update_id": ids.next_update(), "message": message},
            {SECRET_HEADER: TG_SECRET},
        )
    for builder in (tg.photo_update, tg.document_update):
        update = builder(CUSTOMER_BOT, CUSTOMERS[0])
        update["update_id"] = ids.next_update()
        await post("/channels/telegram/support", update, {SECRET_HEADER: TG_SECRET})
    wa = WhatsAppInputs(rng, ids, world, twilio)
    for number in WA_NUMBERS[:4]:
        params = {
            "MessageSid": (sid := ids.sid()),
            "From": "whatsapp:" + number,
            "To": SENDER,
            "Body": "Hi from WhatsApp",
        }
        params |= {"NumMedia": "0", "WaId": number[1:], "ProfileName": "WA customer", "AccountSid": ACCOUNT_SID}
        if number == WA_NUMBERS[0]:
            params |= {"NumMedia": "1", "MediaContentType0": "image/jpeg"}
            params["MediaUrl0"] = twilio.add_media("image/jpeg", SAMPLE_JPEG, message_sid=sid)
        world.inbound_sids.append(sid)
        status, _ = await twilio.post_inbound(base + INBOUND, params)
        if status != 200:
            problems.append(f"warm-up WhatsApp inbound: HTTP {status}")
    del wa
    for n in range(4):
        async with session.ws_connect(base + "/channels/webwidget/ws", headers={"Origin": WIDGET_ORIGIN}) as ws:
            await ws.send_json({"type": "hello", "page": {"url": "https://shop.example/", "title": "Shop"}})
            welcome = await ws.receive_json()
            world.visitor_tokens.append(welcome.get("visitor_token", ""))
            await ws.send_json({"type": "message", "text": f"Widget question {n}", "client_id": f"warm-{n}"})
            await ws.receive_json()
    await settle(tg, twilio)
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    async with session.get(base + "/api/v1/threads?limit=200", headers=auth) as response:
        threads = (await response.json()).get("threads", [])
    for thread in threads:
        world.threads.append(thread["number"])
        world.contact_ids.append(thread["contact_id"])
        async with session.get(base + f"/api/v1/threads/{thread['number']}/messages", headers=auth) as response:
            for message in (await response.json()).get("messages", []):
                world.message_ids.append(message["id"])
                if message.get("media"):
                    world.media_messages.append((message["id"], len(message["media"])))
        async with session.post(
            base + f"/api/v1/threads/{thread['number']}/messages", headers=auth, json={"text": "How can I help?"}
        ) as response:
            await response.read()
    await settle(tg, twilio)
    world.outbound_sids += [m.sid for m in twilio.messages]
    world.operator_messages = [m.message for op in OPERATORS for m in tg.sent(chat_id=op, token=OPERATOR_BOT)]
    world.customer_bot_messages = [m.message for m in tg.sent(token=CUSTOMER_BOT)]
    world.topics = list(tg.topics(SUPERVISORS))
    if not world.threads:
        problems.append("warm-up: no threads were created")
    if not world.operator_messages:
        problems.append("warm-up: the operator bot sent nothing to operators")
    return problems


# -- the log -------------------------------------------------------------------------------------

_RECORD = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) (\S+): (.*)$")
_FRAME_LINE = re.compile(r'^\s*File "([^"]+)", line (\d+), in (.+)$')
_TRACEBACK = "Traceback (most recent call last)"


@dataclass
class LoggedTraceback:
    """One log record with a traceback: when, what the line said, where in our code it was raised."""

    at: float
    header: str
    exception: str
    site: str
    thread: int | None = None  # the conversation the record names ([thread=#17])
    case: Case | None = None
    frame: int | None = None
    matched: str = ""
    candidates: list[Case] = field(default_factory=list)  # inputs that may have caused it, likeliest first


@dataclass
class HiddenFailure:
    """An update whose handler raised, kept as a dead letter and answered 200: no 5xx, no traceback, still a bug."""

    update_id: str
    exception: str
    case: Case | None = None
    site: str = ""

    @property
    def kind(self) -> str:
        """The exception with its numbers blanked, to group failures."""
        return re.sub(r"\d+", "N", self.exception)[:160]

    @property
    def group(self) -> tuple[str, str, str]:
        """Failures replayed as one: the same exception from another surface or kind of input may be another site."""
        if self.case is None:
            return ("?", self.kind, "")
        return (self.case.surface, self.kind, re.split(r"[:;,]", self.case.label, maxsplit=1)[0])


_HIDDEN = re.compile(r"kept as a dead letter: update (\d+) could not be handled: (.+?)(?: \[[^\]]*\])?$")


def read_hidden_failures(log: Path, cases: Sequence[Case]) -> list[HiddenFailure]:
    """Dead letters kept because a handler raised (not because the input was unreadable), matched to inputs."""
    markers = {marker: case for case in cases for marker in case.markers}
    found = []
    for line in log.read_text(encoding="utf-8", errors="backslashreplace").splitlines():
        match = _HIDDEN.search(line)
        if match:
            found.append(HiddenFailure(match.group(1), match.group(2), markers.get(match.group(1))))
    return found


class Replayer:
    """A gateway in this process on the fuzzed one's port and config (fresh data), to replay inputs one by one.

    It tells what an input raised: the exceptions logged with a traceback, and those a dead letter hides (the
    dead-letter path logs none, so they are taken from the exception active when DeadLetters.keep is called,
    from the handler's except block). Same port, same public URL: Twilio signatures and media links hold.
    """

    def __init__(self, config: str, workdir: Path, port: int, collector: Collector) -> None:
        raw = tomllib.loads(config)
        raw["storage"]["data_dir"] = str(workdir / "replay")
        self.app = create_app(parse_settings(raw, source="replay.toml", environ={}))
        self.server = TestServer(self.app, port=port)
        self.base = f"http://127.0.0.1:{port}"
        self.port = port
        self.collector = collector
        self.hidden: list[BaseException] = []
        self.session: ClientSession | None = None
        self._keeper = getattr(gateway.dead_letters, "DeadLetters", None)
        self._keep = getattr(self._keeper, "keep", None)

    async def __aenter__(self) -> Replayer:
        original, hidden = self._keep, self.hidden
        if self._keeper is not None and original is not None:

            async def keep(keeper: Any, *args: Any, **kwargs: Any) -> None:
                error = sys.exc_info()[1]
                if error is not None:
                    hidden.append(error)
                await original(keeper, *args, **kwargs)

            self._keeper.keep = keep
        await self.server.start_server()
        self.session = ClientSession()
        # Operators online, so that customers' messages are routed and relayed as in the fuzzed gateway.
        for number, uid in enumerate((OLGA, BOSS)):
            message = {"message_id": 1 + number, "from": {"id": uid, "is_bot": False, "first_name": "Op"}}
            message |= {"chat": {"id": uid, "type": "private"}, "date": NOW, "text": "/online"}
            body = json.dumps({"update_id": 1 + number, "message": message}).encode()
            headers = [(SECRET_HEADER, OP_SECRET), ("Content-Type", "application/json")]
            online = Case("operator", "/online", Request("POST", "/operators/telegram", headers, body))
            await send_http(self.session, self.base, self.port, online)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._keeper is not None and self._keep is not None:
            self._keeper.keep = self._keep
        if self.session is not None:
            await self.session.close()
        await self.server.close()

    async def replay(self, case: Case) -> tuple[list[str], list[str]]:
        """Send the input again; the code sites of what it raised: (logged with a traceback, hidden)."""
        assert self.session is not None
        self.hidden.clear()
        self.collector.raised.clear()
        fresh = dataclasses.replace(case, error_codes=Counter(), sent_at=[], refusals=[])
        if case.request is not None:
            await send_http(self.session, self.base, self.port, fresh)
        else:
            await send_socket(self.session, self.base, fresh)
        bus = self.app.get(BUS)
        if bus is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await bus.drain()
        return [_site_of(e) for e in self.collector.raised], [_site_of(e) for e in self.hidden]


async def confirm(replayer: Replayer, tracebacks: list[LoggedTraceback], hidden: list[HiddenFailure]) -> None:
    """Find by replay the code sites of hidden failures, and an input that surely causes each traceback's site."""
    groups: dict[tuple[str, str, str], list[Case]] = defaultdict(list)
    for failure in hidden:
        if failure.case is not None and failure.case.request is not None and not failure.case.request.raw_headers:
            groups[failure.group].append(failure.case)
    for group, cases in groups.items():
        site = "(not reproduced on a fresh gateway)"
        # Some need state the fuzzed gateway had (a thread, an assignment): try a few, smallest first.
        for case in sorted(cases, key=_size)[:4]:
            _, sites = await replayer.replay(case)
            if sites:
                site = sites[-1]
                break
        for failure in hidden:
            if failure.group == group:
                failure.site = site
    by_site: dict[str, list[LoggedTraceback]] = defaultdict(list)
    for tb in tracebacks:
        by_site[tb.site].append(tb)
    for site, tbs in by_site.items():
        if any(tb.matched in SURE for tb in tbs):
            continue
        tried: set[int] = set()
        candidates = [c for tb in tbs for c in tb.candidates]
        # Inputs that were changed on purpose first: an unchanged one rarely breaks anything.
        candidates.sort(key=lambda c: ";" not in c.label)
        for case in candidates:
            if id(case) in tried or len(tried) >= 12 or (case.request is not None and case.request.raw_headers):
                continue
            tried.add(id(case))
            logged, _ = await replayer.replay(case)
            if site in logged:
                tbs[0].case, tbs[0].frame, tbs[0].matched = case, None, "confirmed by replay"
                break


SURE = ("by id", "by the error frame it caused", "confirmed by replay")


def _site_of(error: BaseException) -> str:
    """The innermost frame of our code in the exception, or in the one it was raised from or while handling."""
    seen: BaseException | None = error
    while seen is not None:
        frames = [f for f in traceback.extract_tb(seen.__traceback__) if _ours(f.filename)]
        if frames:
            frame = frames[-1]
            return f"{Path(frame.filename).resolve().relative_to(ROOT)}:{frame.lineno} {frame.name}"
        seen = seen.__cause__ or seen.__context__
    return "(library code only)"


def read_tracebacks(log: Path) -> tuple[int, list[LoggedTraceback]]:
    """How many tracebacks the log holds, and each record that carries them."""
    text = log.read_text(encoding="utf-8", errors="backslashreplace")
    records: list[tuple[float, str, list[str]]] = []
    for line in text.splitlines():
        match = _RECORD.match(line)
        if match:
            at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            records.append((at, f"{match.group(3)}: {match.group(4)}", []))
        elif records:
            records[-1][2].append(line)
        else:
            records.append((0.0, "(before the first log line)", [line]))
    found = []
    for at, header, lines in records:
        if any(_TRACEBACK in line for line in lines) or _TRACEBACK in header:
            exception, site = _innermost(lines)
            named = re.search(r"thread=#(\d+)", " ".join([header, *lines[-3:]]))
            found.append(LoggedTraceback(at, header, exception, site, int(named.group(1)) if named else None))
    return text.count(_TRACEBACK), found


def _innermost(lines: list[str]) -> tuple[str, str]:
    """The exception raised last and the innermost frame of our code that raised it (or of any code)."""
    blocks: list[list[str]] = []
    for line in lines:
        if _TRACEBACK in line:
            blocks.append([])
        elif blocks:
            blocks[-1].append(line)
    exception = "?"
    for line in reversed(blocks[-1] if blocks else lines):
        if line.strip() and not line.startswith((" ", "\t")):
            exception = line.strip()
            break
    fallback = None
    for block in reversed(blocks):
        frames = [m for m in map(_FRAME_LINE.match, block) if m]
        ours = [m for m in frames if _ours(m.group(1))]
        if ours:
            frame = ours[-1]
            return exception, f"{Path(frame.group(1)).resolve().relative_to(ROOT)}:{frame.group(2)} {frame.group(3)}"
        if frames and fallback is None:
            frame = frames[-1]
            fallback = f"(library) {Path(frame.group(1)).name}:{frame.group(2)} {frame.group(3)}"
    return exception, fallback or "(no frames)"


def _ours(path: str) -> bool:
    try:
        relative = Path(path).resolve().relative_to(ROOT)
    except ValueError:
        return False
    return relative.parts[0] in OUR_PACKAGES


ThreadMessages = dict[int, list[tuple[float, str]]]


async def inbound_messages(session: ClientSession, base: str, numbers: Iterable[int]) -> ThreadMessages:
    """When each customer message of these threads was stored, and its channel id (to find the input that sent it)."""
    found: ThreadMessages = {}
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    for number in numbers:
        with contextlib.suppress(aiohttp.ClientError, ValueError, KeyError, TypeError):
            async with session.get(f"{base}/api/v1/threads/{number}/messages?limit=500", headers=auth) as response:
                messages = (await response.json())["messages"]
            found[number] = [
                (datetime.fromisoformat(m["created_at"]).timestamp(), ":".join(m["channel_message_id"].split(":")[:2]))
                for m in messages
                if m["direction"] == "in" and m.get("channel_message_id")
            ]
    return found


def attribute(tracebacks: list[LoggedTraceback], cases: Sequence[Case], threads: ThreadMessages) -> None:
    """Match each traceback to the input that most likely caused it: by an id in its line, by the thread it
    names (its latest customer message before the record), by the widget's error frame, else by time."""
    markers = {marker: case for case in cases for marker in case.markers}
    ordered = sorted((c for c in cases if c.started), key=lambda c: c.started)
    starts = [c.started for c in ordered]
    claimed: set[int] = set()
    for tb in tracebacks:
        for token in re.findall(r"[A-Za-z0-9]{6,}", tb.header):
            if token in markers:
                tb.case, tb.matched = markers[token], "by id"
                claimed.add(id(tb.case))
                break
        if tb.case is None and tb.thread in threads:
            before = sorted((at, ref) for at, ref in threads[tb.thread] if at <= tb.at + 0.5 and ref in markers)
            tb.candidates = [markers[ref] for _, ref in reversed(before[-20:])]
            if before:
                tb.case, tb.matched = tb.candidates[0], "by the thread it names (its latest message)"
        if tb.case is not None:
            continue
        hint = _surface_hint(tb)
        if hint == "widget" and _by_refusal(tb, cases):
            continue
        # Log times have millisecond precision; allow for the gateway logging a little after answering.
        low = bisect.bisect_left(starts, tb.at - 30)
        candidates = [
            c
            for c in ordered[low : bisect.bisect_right(starts, tb.at + 0.01)]
            if c.ended == 0 or c.ended >= tb.at - 0.3
        ]
        if hint:
            candidates = [c for c in candidates if c.surface == hint] or candidates
        if candidates:
            # A bad answer explains one traceback best; the next one likely belongs to another bad answer.
            ranked = sorted(candidates, key=lambda c: (not c.bad, id(c) in claimed, abs((c.ended or tb.at) - tb.at)))
            tb.candidates = ranked[:6]
            tb.case = ranked[0]
            tb.matched = "by time"
            claimed.add(id(tb.case))


def _by_refusal(tb: LoggedTraceback, cases: Sequence[Case]) -> bool:
    """The widget answers a frame it failed on with an "unavailable" error: the socket that got one next did it."""
    replies = [(at, frame, case) for case in cases for at, frame in case.refusals if tb.at - 0.01 <= at <= tb.at + 2]
    if not replies:
        return False
    _, tb.frame, tb.case = min(replies, key=lambda reply: reply[0])
    tb.matched = "by the error frame it caused"
    return True


def _surface_hint(tb: LoggedTraceback) -> str | None:
    site = tb.site + " " + tb.header
    for needle, surface in (
        ("operator_bot", "operator"),
        ("operators", "operator"),
        ("webwidget", "widget"),
        ("whatsapp", "whatsapp"),
        ("telegram", "telegram"),
        ("gateway/api", "api"),
        ("media_view", "media"),
    ):
        if needle in site:
            return surface
    return None


class Collector(logging.Handler):
    """Counts what goes wrong in this process (the emulators) instead of printing it among the figures."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: Counter[str] = Counter()
        self.raised: list[BaseException] = []  # what a replayed input raised, with its traceback
        self.replaying = False

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        if self.replaying:
            if error is not None:
                self.raised.append(error)
            return
        what = f"{record.name}: {record.getMessage()[:80]}"
        if error is not None:
            what += f" ({type(error).__name__}: {str(error)[:160]})"
        self.seen[what] += 1


# -- the report ----------------------------------------------------------------------------------


def excerpt(data: bytes | str | None, limit: int = 360) -> str:
    """Text of at most `limit` characters, with what is not printable escaped."""
    if data is None:
        return ""
    text = data.decode("utf-8", "backslashreplace") if isinstance(data, bytes) else data
    text = text.encode("unicode_escape", "backslashreplace").decode("ascii") if not text.isprintable() else text
    size = len(data)
    return (
        text if len(text) <= limit else f"{text[:limit]}… ({size:,} {'bytes' if isinstance(data, bytes) else 'chars'})"
    )


def describe(case: Case, frame: int | None = None) -> str:
    """One input, shortly, as it went on the wire; for a socket, the frame that did it (or was last) in full."""
    if case.request is not None:
        request = case.request
        headers = [f"{k}: {excerpt(v, 60)}" for k, v in request.headers if k.lower() != "authorization"]
        headers += [f"{k.decode()}: {v!r}" for k, v in request.raw_headers]
        auth = [v for k, v in request.headers if k.lower() == "authorization"]
        if auth:
            headers.append(
                "Authorization: " + ("<valid token>" if auth == [f"Bearer {API_TOKEN}"] else excerpt(auth[0], 40))
            )
        head = f"{request.method} {excerpt(request.target, 160)}"
        return f"{head}  [{'; '.join(headers)}]  {excerpt(request.body)}"
    frames = case.frames
    index = case.culprit if frame is None else frame
    shown = frames[index] if index is not None and 0 <= index < len(frames) else None
    parts = [f"{len(frames)} frames: " + ", ".join(f.label for f in frames)[:400]]
    if shown is not None:
        which = "the frame" if frame is not None else "last frame before it ended"
        parts.append(f"{which} #{index} ({shown.label}): {excerpt(shown.data, 300)}")
    if case.ws_headers:
        parts.append("headers: " + "; ".join(f"{k}: {excerpt(v, 40)}" for k, v in case.ws_headers))
    return "  ".join(parts)


def input_class(case: Case, frame: int | None = None) -> str:
    """What kind of input a case is; for a socket, with the frame that mattered."""
    index = case.culprit if frame is None else frame
    if case.request is None and index is not None and 0 <= index < len(case.frames):
        return f"{case.label}: {case.frames[index].label}"
    return case.label


def report(
    cases_by_surface: dict[str, list[Case]],
    seconds: dict[str, float],
    total_tracebacks: int,
    tracebacks: list[LoggedTraceback],
    args: argparse.Namespace,
    problems: Sequence[str],
    emulators: Counter[str],
) -> None:
    """Print the figures: inputs and answers per surface, tracebacks, the done-criterion, the findings."""
    all_cases = [c for cases in cases_by_surface.values() for c in cases]
    inputs = sum(c.inputs for c in all_cases)
    print(f"\nfuzz: seed {args.seed}, {inputs:,} inputs, concurrency {args.concurrency}, code at {revision()}")
    for problem in problems:
        print(f"  warning: {problem}")
    print(f"\n{'surface':<10}{'inputs':>8}  {'sent as':<14}{'seconds':>8}  answers")
    for surface, cases in cases_by_surface.items():
        count = sum(c.inputs for c in cases)
        if surface == "widget":
            handshakes = Counter(c.handshake for c in cases)
            closes = Counter(c.outcome for c in cases if c.handshake == "101")
            sent_as = f"{len(cases)} sockets"
            answer = "close: " + _counts(closes) + "   handshake: " + _counts(handshakes)
        else:
            sent_as = f"{len(cases)} requests"
            answer = _counts(Counter(c.outcome for c in cases))
        print(f"{surface:<10}{count:>8,}  {sent_as:<14}{seconds.get(surface, 0):>8.1f}  {answer}")
        if surface == "widget":
            errors: Counter[str] = Counter()
            for case in cases:
                errors.update(case.error_codes)
            print(f"{'':<42}error frames: {_counts(errors)}")
    http = [c for c in all_cases if c.request is not None or c.handshake not in (None, "101")]
    bad_http = [c for c in http if c.bad]
    sockets = [c for c in all_cases if c.handshake == "101"]
    bad_sockets = [c for c in sockets if c.bad]
    if emulators:
        print(f"\nerrors in the emulators (what the gateway sent them; not counted): {sum(emulators.values())}")
        for what, count in emulators.most_common(5):
            print(f"  {count}× {excerpt(what, 300)}")
    print(f"\ntracebacks in the gateway's log: {total_tracebacks} (in {len(tracebacks)} log records)")
    met = not bad_http and not bad_sockets and not total_tracebacks
    print(
        f"done-criterion: responses >= 500 or dropped: {len(bad_http)}, sockets closed 1006/1011 or dead: "
        f"{len(bad_sockets)}, tracebacks: {total_tracebacks}  ->  {'MET' if met else 'NOT MET'}"
    )
    findings(tracebacks, bad_http + bad_sockets)


def revision() -> str:
    """The commit measured (others edit while this runs: "-dirty" says the work tree differed from it)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def _counts(counter: Counter[Any]) -> str:
    return "  ".join(f"{k}×{v}" for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))) or "-"


def findings(tracebacks: list[LoggedTraceback], bad: list[Case]) -> None:
    """Print the code sites of tracebacks, and the bad answers no traceback explains, each with an example."""
    by_site: dict[str, list[LoggedTraceback]] = defaultdict(list)
    for tb in tracebacks:
        by_site[tb.site].append(tb)
    explained = {id(tb.case) for tb in tracebacks if tb.case is not None and tb.case.bad}
    unexplained: dict[tuple[str, str, str], list[Case]] = defaultdict(list)
    for case in bad:
        if id(case) not in explained:
            unexplained[(case.surface, case.outcome, input_class(case))].append(case)
    if not by_site and not unexplained:
        print("\nno findings")
        return
    print(f"\nfindings: {len(by_site)} code sites with tracebacks, {len(unexplained)} other kinds of bad answers")
    ranked = sorted(by_site.items(), key=lambda kv: -len(kv[1]))
    for number, (site, tbs) in enumerate(ranked, 1):
        exceptions = Counter(_short(tb.exception) for tb in tbs)
        headers = Counter(re.sub(r"\d+", "N", tb.header)[:110] for tb in tbs)
        matched = [tb for tb in tbs if tb.case is not None]
        outcomes = Counter(f"{tb.case.surface} {tb.case.outcome}" for tb in matched if tb.case is not None)
        classes = Counter(input_class(tb.case, tb.frame) for tb in matched if tb.case is not None)
        print(f"\n{number}. {site}  — {len(tbs)} tracebacks")
        print(f"   raises: {_counts(exceptions)[:300]}")
        print(f"   logged as: {_counts(headers)[:300]}")
        if matched:
            print(f"   with answers: {_counts(outcomes)}")
            print(f"   input classes: {_counts(Counter(dict(classes.most_common(4))))[:400]}")
            example = min(
                matched, key=lambda tb: (tb.matched != "by id", not tb.case.bad if tb.case else True, _size(tb.case))
            )
            assert example.case is not None
            print(f"   example ({example.case.surface}, {example.matched}): {describe(example.case, example.frame)}")
        else:
            print("   (no input matched: logged outside any request, e.g. at start-up or shutdown)")
    for number, ((surface, outcome, kind), bad_cases) in enumerate(
        sorted(unexplained.items(), key=lambda kv: -len(kv[1])), len(ranked) + 1
    ):
        smallest = min(bad_cases, key=_size)
        print(f"\n{number}. {surface}: {outcome} without a traceback — {len(bad_cases)}×, input class: {kind[:200]}")
        print(f"   example: {describe(smallest)}")


def report_hidden(hidden: list[HiddenFailure]) -> None:
    """Failures the done-criterion does not see: the handler raised, the update was kept as a dead letter."""
    if not hidden:
        return
    groups: dict[tuple[str, str], list[HiddenFailure]] = defaultdict(list)
    for failure in hidden:
        groups[(failure.site or "(no replayable example)", failure.kind)].append(failure)
    print(
        f"\nhandler failures hidden as dead letters (answered 200, no traceback; not in the done-criterion): "
        f"{len(hidden)} in {len(groups)} kinds"
    )
    for (site, kind), failures in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        matched = [f.case for f in failures if f.case is not None]
        print(f"\n- {site}  — {len(failures)}×  {excerpt(kind, 160)}")
        if matched:
            classes = Counter(input_class(c) for c in matched)
            print(f"   input classes: {_counts(Counter(dict(classes.most_common(4))))[:400]}")
            print(f"   example ({matched[0].surface}, by update id): {describe(min(matched, key=_size))}")


def _short(exception: str) -> str:
    return exception if len(exception) <= 140 else exception[:140] + "…"


def _size(case: Case | None) -> int:
    if case is None:
        return 1 << 62
    if case.request is not None:
        return len(case.request.body or b"") + len(case.request.target)
    return sum(len(f.data) for f in case.frames)


def save(path: Path, cases_by_surface: dict[str, list[Case]]) -> None:
    """Write every input with its class and answer, one JSON object a line."""
    with path.open("w", encoding="utf-8") as out:
        for cases in cases_by_surface.values():
            for case in cases:
                entry = {"surface": case.surface, "class": input_class(case), "answer": case.outcome}
                entry["input"] = describe(case)
                out.write(json.dumps(entry, default=str) + "\n")
    print(f"fuzz: every input and its answer in {path}")


# -- main ----------------------------------------------------------------------------------------


def plan(args: argparse.Namespace) -> dict[str, int]:
    """How many inputs each surface gets."""
    surfaces = [args.only] if args.only else list(SURFACES)
    total = sum(SURFACES[s] for s in surfaces)
    return {s: max(1, round(args.count * SURFACES[s] / total)) for s in surfaces}


def build_cases(
    surface: str, count: int, rng: random.Random, ids: Ids, world: World, tg: TelegramEmulator, twilio: TwilioEmulator
) -> list[Case]:
    """`count` inputs for a surface (for the widget: sockets until their frames reach `count`)."""
    telegram = TelegramInputs(rng, ids, world, tg)
    whatsapp = WhatsAppInputs(rng, ids, world, twilio)
    api = ApiInputs(rng, world)
    media = MediaInputs(rng, world)
    widget = WidgetInputs(rng, ids, world)
    cases: list[Case] = []
    frames = 0
    while (frames if surface == "widget" else len(cases)) < count:
        if surface == "telegram":
            cases.append(telegram.customer_case())
        elif surface == "operator":
            cases.append(telegram.operator_case())
        elif surface == "whatsapp":
            cases.append(whatsapp.case(INBOUND if rng.random() < 0.7 else STATUS))
        elif surface == "api":
            cases.append(api.case())
        elif surface == "media":
            cases.append(media.case())
        else:
            cases.append(widget.case())
            frames += cases[-1].inputs
    return cases


async def main(args: argparse.Namespace) -> None:
    """Start the emulators and the gateway, warm up, fuzz surface by surface, replay, report."""
    counts = plan(args)
    workdir = Path(tempfile.mkdtemp(prefix="gateway-fuzz-"))
    log = workdir / "gateway.log"
    rng = random.Random(args.seed)
    ids = Ids(random.Random(args.seed + 1))
    cases_by_surface: dict[str, list[Case]] = {}
    seconds: dict[str, float] = {}
    problems: list[str] = []
    process: asyncio.subprocess.Process | None = None
    collector = Collector()
    threads: ThreadMessages = {}
    logging.getLogger().handlers[:] = [collector]
    try:
        async with (
            TelegramEmulator() as tg,
            TwilioEmulator(ACCOUNT_SID, AUTH_TOKEN, whatsapp_number=SENDER, auto_status_callbacks=False) as twilio,
        ):
            setup_emulators(tg)
            port = free_port()
            world = World(port)
            config = write_config(workdir, port, tg.base_url, twilio.base_url)
            process = await start_gateway(config, log)
            connector = aiohttp.TCPConnector(limit=args.concurrency * 2)
            async with ClientSession(connector=connector, timeout=ClientTimeout(total=REQUEST_TIMEOUT)) as session:
                if not await wait_ready(session, world.public_url, process):
                    print("fuzz: the gateway did not become ready; its log ends with:")
                    print("\n".join(log.read_text(errors="backslashreplace").splitlines()[-30:]))
                    return
                print(f"fuzz: gateway pid {process.pid} on {world.public_url}, log {log}")
                problems = await warm_up(session, tg, twilio, world, ids)
                print(
                    f"fuzz: warm-up made {len(world.threads)} threads, {len(world.operator_messages)} operator "
                    f"messages, {len(world.media_messages)} files, {len(world.topics)} topics"
                )
                for surface, count in counts.items():
                    cases = build_cases(surface, count, rng, ids, world, tg, twilio)
                    started = time.monotonic()
                    await run_cases(session, world.public_url, port, cases, args.concurrency)
                    await settle(tg, twilio)
                    seconds[surface] = time.monotonic() - started
                    cases_by_surface[surface] = cases
                    print(f"fuzz: {surface}: {sum(c.inputs for c in cases):,} inputs in {seconds[surface]:.1f} s")
                # Asked while the gateway still runs: which customer messages the threads named in the log hold.
                named = {tb.thread for tb in read_tracebacks(log)[1] if tb.thread is not None}
                threads = await inbound_messages(session, world.public_url, sorted(named))
            await stop_gateway(process)
            every = [c for cases in cases_by_surface.values() for c in cases]
            total, tracebacks = read_tracebacks(log)
            attribute(tracebacks, every, threads)
            hidden = read_hidden_failures(log, every)
            collector.replaying = True
            async with Replayer(config.read_text(encoding="utf-8"), workdir, port, collector) as replayer:
                await confirm(replayer, tracebacks, hidden)
            collector.replaying = False
        report(cases_by_surface, seconds, total, tracebacks, args, problems, collector.seen)
        report_hidden(hidden)
        if args.save:
            save(Path(args.save), cases_by_surface)
    finally:
        if process is not None:
            await stop_gateway(process)
        if args.keep:
            print(f"\nfuzz: kept {workdir} (gateway.log, gateway.toml, data/)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help=f"inputs in all (default {DEFAULT_COUNT:,})")
    parser.add_argument("--only", choices=list(SURFACES), help="fuzz one surface only")
    parser.add_argument("--concurrency", type=int, default=16, help="requests or sockets in flight (default 16)")
    parser.add_argument("--keep", action="store_true", help="keep the gateway's log, config and data")
    parser.add_argument("--save", metavar="FILE", help="write every input's surface, class and answer (JSON lines)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    # Inputs are hostile on purpose: what is printed about them must never stop the report.
    sys.stdout.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    asyncio.run(main(parse_args()))
