"""Untrusted input, parsed safely: bounded integers, JSON bodies with size and depth caps, storable strings.

Shared by everything that reads requests from outside (the REST API, the webhooks, the widget). Every
function refuses bad input with a ValueError (InputError when it can say which field), never anything else.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from typing import Any

from aiohttp import web

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_BODY_BYTES = 64 * 1024
# A client trickling its body byte by byte must not hold a handler (and its memory) for long.
BODY_TIMEOUT = 15.0
READ_TIMEOUT = web.AppKey("read_timeout", float)
MAX_JSON_DEPTH = 8

# A JSON string (possibly unterminated) or one bracket: enough to measure nesting without parsing.
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)
_UTF8 = {"utf-8", "utf8"}


class InputError(ValueError):
    """Input that cannot be accepted; `field` names the part that is wrong (None: the input as a whole)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_int(text: str, *, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    """The integer `text` spells in ASCII digits (with an optional '-'), if within [low, high]; else ValueError."""
    digits = text[1:] if text.startswith("-") else text
    # str.isdigit alone accepts '²' and other digits int() cannot read or reads in surprising ways.
    if not digits or not (digits.isascii() and digits.isdigit()):
        raise ValueError("must be an integer written in digits 0-9")
    # Checked before int(): a long string of digits costs time to convert and overflows int64 anyway.
    if len(digits.lstrip("0")) > 19 or not low <= (value := int(text)) <= high:
        raise ValueError(f"must be an integer from {low} to {high}")
    return value


# RFC 6838 names: what a sender's MIME type must look like before it goes into a header.
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
# Control characters, path separators and lone surrogates: nothing a file name needs.
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f-\x9f/\\\u2028\u2029\ud800-\udfff]")
FILE_NAME_LIMIT = 128


def media_type(raw: str | None) -> str | None:
    """The `type/subtype` of a MIME type a sender gave (lower-case, parameters dropped); None unless well-formed."""
    essence = (raw or "").split(";", 1)[0].strip().lower()
    return essence if _MEDIA_TYPE.fullmatch(essence) else None


def file_name(raw: str | None) -> str | None:
    """A sender's file name fit for a header or a caption: unsafe characters dropped, at most FILE_NAME_LIMIT
    characters with the extension kept; None when nothing is left."""
    name = _UNSAFE_NAME.sub("", raw or "").strip().strip(".")
    if len(name) > FILE_NAME_LIMIT:
        stem, dot, extension = name.rpartition(".")
        keep = extension[:16] if dot and stem else ""
        name = name[: FILE_NAME_LIMIT - len(keep) - 1].rstrip() + "." + keep if keep else name[:FILE_NAME_LIMIT]
    return name or None


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored (a NUL character, a lone surrogate), or None when it can."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain lone surrogates"
    return None


def check_text(value: str) -> str:
    """`value` itself when it can be stored; ValueError naming the problem otherwise."""
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def field_name_problem(name: str) -> str | None:
    """Why a string cannot be a MongoDB field name (empty, '.', a leading '$', NUL, lone surrogate), or None."""
    if not name:
        return "must not be empty"
    if "." in name or name.startswith("$"):
        return "must not contain '.' or start with '$'"
    return text_problem(name)


def printable(value: str) -> str:
    """`value` with lone surrogates written as escapes, so that it can be encoded in a response or a log line."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in JSON text, without parsing it (the text need not be valid)."""
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("]", "}"):
            depth -= 1
    return deepest


def parse_json(
    raw: bytes, *, charset: str | None = None, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """The JSON value in a UTF-8 body of at most max_bytes, nested at most max_depth deep; InputError otherwise."""
    if charset is not None and charset.strip().lower() not in _UTF8:
        raise InputError(None, "the body must be JSON in UTF-8 (charset=utf-8)")
    if len(raw) > max_bytes:
        raise InputError(None, f"the body is limited to {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(None, "the body is not valid UTF-8") from None
    # The json module recurses once per level: "[" * 100000 would raise RecursionError.
    if json_depth(text) > max_depth:
        raise InputError(None, f"the body nests deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_float)
    except ValueError:
        raise InputError(None, "the body is not valid JSON") from None


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


class BodyTooLarge(InputError):
    """The body is larger than its limit (HTTP 413 where the caller does not answer 400)."""


class BodyTooSlow(InputError):
    """The body did not arrive within its time limit (HTTP 408 where the caller does not answer 400)."""


async def read_body(request: web.BaseRequest, max_bytes: int = MAX_BODY_BYTES) -> bytes:
    """The request's body, refused as soon as it is known to exceed max_bytes or to take longer than the app's
    READ_TIMEOUT (BODY_TIMEOUT when the app sets none)."""
    timeout = request.config_dict.get(READ_TIMEOUT, BODY_TIMEOUT) if isinstance(request, web.Request) else BODY_TIMEOUT
    if request.content_length is not None and request.content_length > max_bytes:
        raise BodyTooLarge(None, f"the body is limited to {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while size <= max_bytes:
                chunk = await request.content.read(max_bytes + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
    except TimeoutError:
        raise BodyTooSlow(None, f"the body was not sent within {timeout:g} s") from None
    if size > max_bytes:
        raise BodyTooLarge(None, f"the body is limited to {max_bytes} bytes")
    return b"".join(chunks)


def refusal(err: InputError) -> web.HTTPException:
    """The HTTP answer to a refused body: 413 too large, 408 too slow, 400 otherwise."""
    if isinstance(err, BodyTooLarge):
        return web.HTTPRequestEntityTooLarge(max_size=0, actual_size=0, text=err.message)
    if isinstance(err, BodyTooSlow):
        return web.HTTPRequestTimeout(text=err.message)
    return web.HTTPBadRequest(text=err.message)


async def read_json(
    request: web.BaseRequest, *, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """The request's JSON body, read with read_body's cap and parsed with parse_json's checks."""
    raw = await read_body(request, max_bytes)
    return parse_json(raw, charset=request.charset, max_bytes=max_bytes, max_depth=max_depth)
