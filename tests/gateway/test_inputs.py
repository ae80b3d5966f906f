"""Parsing untrusted input: whatever comes in, the answer is a value or a ValueError, never anything else."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.inputs import (
    FILE_NAME_LIMIT,
    INT64_MAX,
    INT64_MIN,
    MAX_JSON_DEPTH,
    InputError,
    field_name_problem,
    file_name,
    json_depth,
    media_type,
    parse_int,
    parse_json,
    printable,
    read_body,
    read_json,
    text_problem,
)

ANY_CHARACTER = st.characters(exclude_categories=())  # surrogates included
ANY_TEXT = st.text(ANY_CHARACTER)
DIGITS = re.compile("-?[0-9]+")
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()


def depth_of(value: Any) -> int:
    """How deeply arrays and objects nest in a Python value made of JSON types."""
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


def json_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    return st.recursive(
        JSON_SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=max_leaves,
    )


@given(st.integers(INT64_MIN, INT64_MAX))
def test_every_int64_written_in_digits_is_read_back(n: int) -> None:
    assert parse_int(str(n)) == n
    assert parse_int("000" + str(n) if n >= 0 else "-000" + str(-n)) == n


@given(st.integers(min_value=INT64_MAX + 1) | st.integers(max_value=INT64_MIN - 1))
@example(2**63)
@example(-(2**63) - 1)
@example(2**66)
def test_integers_beyond_64_bits_are_refused(n: int) -> None:
    with pytest.raises(ValueError, match="from -9223372036854775808 to 9223372036854775807"):
        parse_int(str(n))


@given(ANY_TEXT)
@example("²")
@example("١٢")  # Arabic-Indic digits: int() reads them, isdigit() accepts them
@example("1_000")
@example(" 7")
@example("+7")
@example("")
@example("-")
@example("9" * 5000)
def test_anything_but_ascii_digits_is_refused_with_a_value_error(text: str) -> None:
    try:
        value = parse_int(text)
    except ValueError:
        assert not DIGITS.fullmatch(text) or len(text.lstrip("-0")) > 19 or not INT64_MIN <= int(text) <= INT64_MAX
    else:
        assert DIGITS.fullmatch(text) and value == int(text)


@given(st.integers(-1000, 1000), st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_bounds_are_inclusive(n: int, low: int, high: int) -> None:
    if low <= n <= high:
        assert parse_int(str(n), low=low, high=high) == n
    else:
        with pytest.raises(ValueError, match=f"from {low} to {high}"):
            parse_int(str(n), low=low, high=high)


@given(ANY_TEXT)
@example("a\x00b")
@example("\ud800")
@example("\udfff x")
def test_a_text_can_be_stored_unless_it_has_a_nul_or_a_lone_surrogate(text: str) -> None:
    storable = "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)
    assert (text_problem(text) is None) is storable
    if storable:
        text.encode("utf-8")


@given(ANY_TEXT)
@example("")
@example("a.b")
@example("$where")
@example("a$")
@example("\x00")
def test_field_names_follow_mongodb_rules(name: str) -> None:
    allowed = (
        bool(name)
        and "." not in name
        and not name.startswith("$")
        and "\x00" not in name
        and not any("\ud800" <= c <= "\udfff" for c in name)
    )
    assert (field_name_problem(name) is None) is allowed


@given(ANY_TEXT)
def test_printable_text_can_always_be_encoded_and_changes_only_what_cannot(text: str) -> None:
    shown = printable(text)
    shown.encode("utf-8")
    if text_problem(text.replace("\x00", "")) is None:
        assert shown == text


@given(json_values())
def test_json_depth_is_the_nesting_of_the_value(value: Any) -> None:
    text = json.dumps(value)
    assert json_depth(text) == depth_of(value)


@given(json_values())
def test_json_within_the_limits_is_parsed_as_the_json_module_does(value: Any) -> None:
    raw = json.dumps(value, ensure_ascii=False).encode()
    if depth_of(value) <= MAX_JSON_DEPTH:
        assert parse_json(raw) == json.loads(raw)
    else:
        with pytest.raises(InputError):
            parse_json(raw)


@given(st.binary(max_size=300))
@example(b"[" * 60_000)  # within the size cap: only the depth cap stops it
@example(b'{"a":' * 10_000)
@example(b"\xff\xfe")
@example(b"\xef\xbb\xbf{}")  # a byte-order mark
@example(b"NaN")
@example(b"[Infinity]")
@example(b"1e999")
@example(b'"\\ud800"')
@example(b"1" * 5000)
def test_any_body_is_a_json_value_or_an_input_error(raw: bytes) -> None:
    try:
        value = parse_json(raw)
    except InputError:
        return  # refused, as a ValueError: nothing else may escape
    assert value == json.loads(raw.decode("utf-8"))


@pytest.mark.parametrize(("depth", "accepted"), [(MAX_JSON_DEPTH, True), (MAX_JSON_DEPTH + 1, False), (100_000, False)])
def test_nesting_is_capped_before_parsing(depth: int, accepted: bool) -> None:
    raw = b"[" * depth + b"]" * depth
    if accepted:
        assert depth_of(parse_json(raw)) == depth
    else:
        with pytest.raises(InputError, match="deeper"):
            parse_json(raw, max_bytes=len(raw))


@pytest.mark.parametrize("charset", [None, "utf-8", "UTF-8", "utf8"])
def test_utf8_is_the_one_charset(charset: str | None) -> None:
    assert parse_json('{"name": "Zoë"}'.encode(), charset=charset) == {"name": "Zoë"}


@pytest.mark.parametrize("charset", ["latin-1", "utf-16", "", "\udcff", "utf-8; x"])
def test_other_charsets_are_refused(charset: str) -> None:
    with pytest.raises(InputError, match="UTF-8"):
        parse_json(b"{}", charset=charset)


def test_non_finite_numbers_are_refused() -> None:
    for raw in (b"NaN", b"[-Infinity]", b'{"x": 1e400}'):
        with pytest.raises(InputError):
            parse_json(raw)


def test_bodies_over_the_cap_are_refused_before_decoding() -> None:
    with pytest.raises(InputError, match="limited to 10 bytes"):
        parse_json(b"\xff" * 11, max_bytes=10)
    assert parse_json(b"[1,2,3,4]", max_bytes=10) == [1, 2, 3, 4]


@pytest.fixture
async def echo(aiohttp_client: Any) -> TestClient:
    """A bare app that answers with what read_body / read_json made of the request."""

    async def body(request: web.Request) -> web.Response:
        try:
            data = await read_body(request, max_bytes=int(request.query["max"]))
        except InputError as err:
            return web.json_response({"error": err.message}, status=400)
        return web.json_response({"size": len(data)})

    async def json_body(request: web.Request) -> web.Response:
        try:
            value = await read_json(request, max_bytes=100)
        except InputError as err:
            return web.json_response({"error": err.message}, status=400)
        return web.json_response({"value": value})

    app = web.Application()
    app.router.add_post("/body", body)
    app.router.add_post("/json", json_body)
    return await aiohttp_client(app)


@pytest.mark.parametrize(("size", "accepted"), [(0, True), (100, True), (101, False), (10_000, False)])
async def test_read_body_caps_the_size_declared_or_not(echo: TestClient, size: int, accepted: bool) -> None:
    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, size, 7):
            yield b"x" * min(7, size - start)

    for data in (b"x" * size, chunked()):  # with a Content-Length, then without one
        response = await echo.post("/body?max=100", data=data)
        assert response.status == (200 if accepted else 400)
        assert (await response.json()) == (
            {"size": size} if accepted else {"error": "the body is limited to 100 bytes"}
        )


async def test_read_json_checks_the_declared_charset(echo: TestClient) -> None:
    body = '{"name": "Zoë"}'.encode()
    ok = await echo.post("/json", data=body, headers={"Content-Type": "application/json; charset=utf-8"})
    assert (await ok.json()) == {"value": {"name": "Zoë"}}
    bogus = await echo.post("/json", data=body, headers={"Content-Type": "application/json; charset=klingon"})
    assert bogus.status == 400 and "UTF-8" in (await bogus.json())["error"]


@given(ANY_TEXT)
@example("image/jpeg\r\nX-Injected: 1")
@example("Image/JPEG; charset=binary")
def test_a_media_type_is_a_plain_type_and_subtype_or_none(raw: str) -> None:
    kind = media_type(raw)
    if kind is not None:
        assert re.fullmatch(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*", kind)
        assert raw.lower().strip().startswith(kind)


def test_media_types_keep_their_essence() -> None:
    assert media_type("Image/JPEG; charset=binary") == "image/jpeg"
    assert media_type("application/vnd.openxmlformats-officedocument.wordprocessingml.document") == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert [media_type(bad) for bad in ("jpeg", "image/", "/x", "image/jpeg\r\nX: 1", "text/plain x", None)] == [
        None
    ] * 6


@given(ANY_TEXT)
@example("report\r\nX-Injected: 1.pdf")
@example("😀" * 4097 + ".pdf")
def test_a_file_name_fits_a_header_and_a_caption(raw: str) -> None:
    name = file_name(raw)
    if name is not None:
        assert 0 < len(name) <= FILE_NAME_LIMIT
        assert text_problem(name) is None
        assert not re.search(r"[\x00-\x1f\x7f/\\]", name)


def test_a_long_file_name_keeps_its_extension() -> None:
    assert file_name("😀" * 4097 + ".pdf") == "😀" * (FILE_NAME_LIMIT - 4) + ".pdf"
    assert file_name("../../etc/passwd") == "etcpasswd"
    assert file_name("invoice 2026.pdf") == "invoice 2026.pdf"
    assert file_name("\x00\r\n") is None
