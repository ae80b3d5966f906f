"""Bot API wire format: reading parameters the way the real server does, and writing envelopes."""

from __future__ import annotations

import email.policy
import json
import re
from collections.abc import Mapping
from email.parser import BytesParser
from typing import Any, Final
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from .errors import UPLOAD_TOO_BIG, ApiError
from .records import UploadedFile

MAX_UPLOAD_BYTES: Final = 50 * 1024 * 1024

# Parameters whose string value is a JSON-serialized object or array (aiogram `prepare_value`).
JSON_PARAMS: Final = frozenset(
    {
        "reply_markup",
        "reply_parameters",
        "reaction",
        "entities",
        "caption_entities",
        "allowed_updates",
        "commands",
        "scope",
        "link_preview_options",
        "media",
        "message_ids",
        "quote_entities",
        "suggested_post_parameters",
    }
)
INT_PARAMS: Final = frozenset(
    {
        "message_id",
        "message_thread_id",
        "offset",
        "limit",
        "timeout",
        "max_connections",
        "duration",
        "width",
        "height",
        "length",
        "cache_time",
        "icon_color",
        "user_id",
        "live_period",
        "heading",
        "proximity_alert_radius",
        "reply_to_message_id",
        "video_start_timestamp",
        "direct_messages_topic_id",
    }
)
FLOAT_PARAMS: Final = frozenset({"latitude", "longitude", "horizontal_accuracy"})
BOOL_PARAMS: Final = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "allow_sending_without_reply",
        "has_spoiler",
        "supports_streaming",
        "disable_content_type_detection",
        "allow_paid_broadcast",
        "show_caption_above_media",
        "disable_web_page_preview",
    }
)
CHAT_ID_PARAMS: Final = frozenset({"chat_id", "from_chat_id"})
_INTEGER: Final = re.compile(r"^-?\d+$")


def decode_params(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Turn raw wire values (all strings for forms) into Python values; JSON-string params are parsed."""
    params: dict[str, Any] = {}
    for key, value in raw.items():
        params[key] = _decode_value(key, value) if isinstance(value, str) else value
    return params


def _decode_value(key: str, value: str) -> Any:
    if key in JSON_PARAMS:
        try:
            return json.loads(value)
        except ValueError:
            raise ApiError.bad_request(f"Bad Request: can't parse {key} JSON object") from None
    if key in CHAT_ID_PARAMS:
        return int(value) if _INTEGER.match(value.strip()) else value
    if key in INT_PARAMS:
        # tdlib's to_integer reads garbage as 0 rather than rejecting it.
        return int(value) if _INTEGER.match(value.strip()) else 0
    if key in FLOAT_PARAMS:
        try:
            return float(value)
        except ValueError:
            return 0.0
    if key in BOOL_PARAMS:
        return value.strip().lower() in {"true", "1"}
    return value


async def read_request(request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """Collect parameters from the query string and a urlencoded, JSON or multipart body."""
    raw: dict[str, Any] = dict(request.query)
    parts: dict[str, UploadedFile] = {}
    if not request.body_exists:
        return raw, parts
    content_type = request.content_type
    if content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError.bad_request("Bad Request: can't parse JSON object") from None
        if not isinstance(body, dict):
            raise ApiError.bad_request("Bad Request: can't parse JSON object")
        raw.update(body)
    elif content_type == "multipart/form-data":
        await _read_multipart(await request.multipart(), raw, parts)
    else:
        raw.update(parse_qsl((await request.read()).decode("utf-8"), keep_blank_values=True))
    return raw, parts


def read_webhook_reply(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """Parse a method call a webhook returned in its 2xx response body (urlencoded, JSON or multipart)."""
    raw: dict[str, Any] = {}
    parts: dict[str, UploadedFile] = {}
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename()
            if filename is None:
                raw[name] = data.decode(part.get_content_charset() or "utf-8")
            else:
                parts[name] = UploadedFile(name, filename, data, part.get_content_type())
    elif media_type == "application/x-www-form-urlencoded":
        raw.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    else:
        try:
            decoded = json.loads(body or b"{}")
        except ValueError:
            return raw, parts
        if isinstance(decoded, dict):
            raw.update(decoded)
    return raw, parts


async def _read_multipart(reader: aiohttp.MultipartReader, raw: dict[str, Any], parts: dict[str, UploadedFile]) -> None:
    while (part := await reader.next()) is not None:
        if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
            continue
        if part.filename is None:
            raw[part.name] = await part.text()
            continue
        data = await part.read(decode=False)
        if len(data) > MAX_UPLOAD_BYTES:
            raise ApiError(413, UPLOAD_TOO_BIG)
        content_type = part.headers.get(aiohttp.hdrs.CONTENT_TYPE, "application/octet-stream")
        parts[part.name] = UploadedFile(
            part=part.name, filename=part.filename, data=bytes(data), content_type=content_type
        )


def ok_body(result: Any, description: str | None = None) -> dict[str, Any]:
    """The success envelope; `description` follows `result` as in `JsonQueryOk`."""
    body: dict[str, Any] = {"ok": True, "result": result}
    if description is not None:
        body["description"] = description
    return body


def dumps(value: Any) -> str:
    """Compact UTF-8 JSON as the real server writes it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_response(status: int, body: dict[str, Any]) -> web.Response:
    """An envelope response; the HTTP status equals error_code for errors."""
    return web.Response(status=status, text=dumps(body), content_type="application/json")
