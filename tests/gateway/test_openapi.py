"""The API's OpenAPI 3.1 document: served without a token, valid, complete, and what the API really does.

Schemathesis runs against the real app here, with and without the token, and must find nothing: no 5xx,
no response the document does not describe, no traceback in a response or in the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.helpers import AUTH, Widget

PREFIX = "/api/v1"
# Validations the JSON Schema cannot express (a phone number that exists, a visitor token the server
# signed) answer 400 to schema-valid input, so "valid data is accepted" is not a check this API passes.
CHECKS = {"checks": {"positive_data_acceptance": {"enabled": False}}}
EXAMPLES = 12


class Contract:
    """The served OpenAPI document, able to say whether a response is one it documents."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.prefix = document["servers"][0]["url"]
        self._templates = [
            (re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(self.prefix + path)) + "$"), path)
            for path in document["paths"]
        ]

    def operation(self, method: str, raw_path: str) -> dict[str, Any] | None:
        """The documented operation a request goes to, if any."""
        for pattern, path in self._templates:
            if pattern.match(raw_path):
                return self.document["paths"][path].get(method.lower())
        return None

    def problems(self, method: str, raw_path: str, status: int, headers: Any, body: bytes) -> list[str]:
        """Why this response is not one the document describes (nothing when it is)."""
        operation = self.operation(method, raw_path)
        if operation is None:
            return [f"{method} {raw_path} is not documented"]
        response = operation["responses"].get(str(status))
        if response is None:
            return [f"{method} {raw_path} answered {status}, which is not documented"]
        for name, header in response.get("headers", {}).items():
            if header.get("required") and name not in headers:
                return [f"{method} {raw_path} {status} lacks the {name} header"]
        if not headers.get("Content-Type", "").startswith("application/json"):
            return [f"{method} {raw_path} {status} is not JSON"]
        schema = response["content"]["application/json"]["schema"]
        validator = jsonschema_rs.Draft202012Validator(
            schema | {"components": self.document["components"]}, validate_formats=True
        )
        return [
            f"{method} {raw_path} {status}: {e.message} at {list(e.instance_path)}"
            for e in validator.iter_errors(json.loads(body))
        ]


async def served_document(client: TestClient) -> dict[str, Any]:
    """GET /api/v1/openapi.json, without a token."""
    response = await client.get(f"{PREFIX}/openapi.json")
    assert response.status == 200 and response.content_type == "application/json"
    return await response.json()


def refs(node: Any) -> Iterator[str]:
    """Every $ref in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


async def test_the_document_is_valid_openapi_3_1_and_served_without_a_token(gateway: TestClient) -> None:
    document = await served_document(gateway)
    # Schemathesis checks the document against the OpenAPI 3.1 meta-schema.
    schemathesis.openapi.from_dict(json.loads(json.dumps(document))).validate()
    assert document["openapi"] == "3.1.0" and document["servers"] == [{"url": PREFIX}]
    assert document["components"]["securitySchemes"] == {"bearerAuth": {"type": "http", "scheme": "bearer"}}
    assert document["security"] == [{"bearerAuth": []}]
    schemas = document["components"]["schemas"]
    for ref in refs(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    for name, schema in schemas.items():
        assert jsonschema_rs.meta.is_valid(schema), name
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            declared = set(re.findall(r"\{([^}]+)\}", path))
            assert {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"} == declared
            assert "400" in operation["responses"], (method, path)
            public = operation.get("security") == []
            assert ("401" in operation["responses"]) is not public, (method, path)
            assert public is (path == "/openapi.json")


async def test_the_document_lists_every_route_the_api_serves(gateway: TestClient) -> None:
    document = await served_document(gateway)
    documented = {
        (method.upper(), PREFIX + path) for path, operations in document["paths"].items() for method in operations
    }
    served = {
        (route.method, route.resource.canonical)
        for route in gateway.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith(PREFIX + "/")
    }
    assert served == documented
    assert ("GET", f"{PREFIX}/threads/{{number}}") in served  # the sub-app's routes were seen at all


async def test_the_contract_check_refuses_what_the_document_does_not_say(gateway: TestClient) -> None:
    contract = Contract(await served_document(gateway))
    json_headers = {"Content-Type": "application/json"}
    good = json.dumps({"threads": []}).encode()
    assert contract.problems("GET", f"{PREFIX}/threads", 200, json_headers, good) == []
    assert contract.problems("GET", f"{PREFIX}/threads", 200, json_headers, b'{"threads": [{"id": 1}]}')
    assert contract.problems("GET", f"{PREFIX}/threads", 200, json_headers, b'{"threads": [], "busy_notice_sent": 1}')
    assert contract.problems("GET", f"{PREFIX}/threads", 418, json_headers, good)
    assert contract.problems("DELETE", f"{PREFIX}/threads", 200, json_headers, good)
    assert contract.problems("GET", f"{PREFIX}/threads", 401, json_headers, b'{"error": "x", "field": null}')


def fuzz(
    schema: Any, base_url: str, headers: dict[str, str], mode: GenerationMode, known: dict[str, Any] | None
) -> int:
    """Run every operation with generated requests and every check; returns how many requests were sent."""
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        raw = operation.definition.raw
        if mode is GenerationMode.NEGATIVE and not (raw.get("parameters") or raw.get("requestBody")):
            continue  # nothing in the request to get wrong
        names = {p["name"] for p in raw.get("parameters", []) if p["in"] == "path"}
        fixed = {name: value for name, value in (known or {}).items() if name in names} or None
        public = operation.path == "/openapi.json"

        @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            nonlocal sent
            response = case.call(base_url=base_url, headers=headers)
            sent += 1
            assert response.status_code < 500, response.text
            assert "Traceback" not in response.text
            if not headers and not public:  # noqa: B023 (run() is called right away)
                assert response.status_code == 401, response.text
            case.validate_response(response, headers=headers)

        run()
    return sent


async def test_schemathesis_finds_nothing_with_or_without_the_token(
    gateway: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    widget = await Widget.connect(gateway)
    await widget.say("Do you ship to Norway?", "c-1")
    listed = await (await gateway.get(f"{PREFIX}/threads", headers=AUTH)).json()
    thread = listed["threads"][0]
    known = {"number": thread["number"], "id": thread["contact_id"], "token": widget.token}
    document = await served_document(gateway)
    schema = schemathesis.openapi.from_dict(document, config=schemathesis.Config.from_dict(CHECKS))
    base_url = str(gateway.make_url(PREFIX))

    caplog.set_level(logging.WARNING)
    sent = 0
    # Requests go out from a worker thread; the app answers them on this test's event loop meanwhile.
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for path_parameters in (None, known):
            sent += await asyncio.to_thread(fuzz, schema, base_url, AUTH, mode, path_parameters)
    sent += await asyncio.to_thread(fuzz, schema, base_url, {}, GenerationMode.POSITIVE, known)
    assert sent > 100
    problems = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR or "Traceback" in r.getMessage()]
    assert problems == [], [r.getMessage() for r in problems]
