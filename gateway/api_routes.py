"""Endpoints declared once: the same table gives the aiohttp routes and the OpenAPI 3.1 document.

An endpoint names its path and query parameter models, its body model and its response model. Its route
validates the path, the query and the body against them before the handler runs (a 400 naming the field
otherwise) and writes the handler's answer with the response model; the document is generated from them.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_type_hints

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from gateway.api_requests import NoParams
from gateway.api_responses import ErrorOut
from gateway.inputs import InputError, printable, read_json

REF_TEMPLATE = "#/components/schemas/{model}"
SECURITY_SCHEME = "bearerAuth"
JSON = "application/json"

_STATUS_TEXT = {
    200: "OK.",
    201: "Created.",
    400: "Bad input; `field` names the parameter or body field at fault.",
    401: "No valid bearer token.",
    404: "Not found.",
    409: "Not possible in the current state; `error` says why.",
}


def error_json(message: str, field: str | None = None) -> str:
    """A JSON error in the documented form, {"error", "field"}, safe to encode whatever the input was."""
    return ErrorOut(error=printable(message), field=None if field is None else printable(field)).model_dump_json()


class ApiError(web.HTTPException):
    """An HTTP error whose body is an ErrorOut."""

    def __init__(
        self, status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self.status_code = status
        super().__init__(text=error_json(message, field), content_type=JSON, headers=headers)


class BadInput(ApiError):
    """400 naming the field that is wrong."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(400, message, field)


class NotFound(ApiError):
    """404 for an id that names nothing."""

    def __init__(self, what: str) -> None:
        super().__init__(404, f"{what} not found")


Handler = Callable[..., Awaitable[BaseModel]]


@dataclass(frozen=True)
class Endpoint:
    """One operation: method, path, handler, the models of what it takes and answers, and its statuses.

    The handler is called as handler(request, path=..., query=..., body=...), each keyword only when the
    endpoint declares that part, with validated model instances; it returns an instance of `response`.
    """

    method: str
    path: str
    handler: Handler
    summary: str
    response: type[BaseModel]
    status: int = 200
    path_params: type[BaseModel] = NoParams
    query: type[BaseModel] = NoParams
    body: type[BaseModel] | None = None
    # Statuses the handler itself may answer besides `status`; 400 for bad input and 401 are implied.
    errors: tuple[int, ...] = ()
    public: bool = False

    def __post_init__(self) -> None:
        # A handler whose signature disagrees with its declaration would be documented wrongly: refuse at import.
        hints = get_type_hints(self.handler)
        expected = dict(self.inputs())
        declared = {name: hints.get(name) for name in inspect.signature(self.handler).parameters if name != "request"}
        if declared != expected or hints.get("return") is not self.response:
            raise TypeError(f"{self.handler.__qualname__} does not take and return what {self.method} {self.path} says")

    def inputs(self) -> list[tuple[str, type[BaseModel]]]:
        """The parts of a request this endpoint reads, by the keyword its handler receives them as."""
        parts: list[tuple[str, type[BaseModel]]] = []
        if self.path_params is not NoParams:
            parts.append(("path", self.path_params))
        if self.query is not NoParams:
            parts.append(("query", self.query))
        if self.body is not None:
            parts.append(("body", self.body))
        return parts

    def view(self) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """The aiohttp handler: validate, call, serialise."""

        async def view(request: web.Request) -> web.StreamResponse:
            # Path and query are validated even when none are declared: then any given is refused.
            given = {
                "path": _validate(self.path_params, dict(request.match_info), "path parameter"),
                "query": _validate(self.query, _single_values(request.query), "query parameter"),
            }
            if self.body is not None:
                given["body"] = _validate(self.body, await _json_object(request), "field")
            result = await self.handler(request, **{name: given[name] for name, _ in self.inputs()})
            if not isinstance(result, self.response):
                raise TypeError(f"{self.handler.__qualname__} returned {type(result).__name__}")
            return web.Response(status=self.status, body=result.model_dump_json(), content_type=JSON)

        view.__name__ = view.__qualname__ = self.handler.__name__
        return view


def add_routes(app: web.Application, endpoints: Iterable[Endpoint]) -> set[web.AbstractRoute]:
    """Register the endpoints' routes (no implicit HEAD); returns the routes of public endpoints."""
    public = set()
    for endpoint in endpoints:
        route = app.router.add_route(endpoint.method, endpoint.path, endpoint.view())
        if endpoint.public:
            public.add(route)
    return public


def _single_values(query: Any) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in query.items():
        if name in values:
            raise BadInput(name, "given more than once")
        values[name] = value
    return values


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        data = await read_json(request)
    except InputError as err:
        raise BadInput(err.field, err.message) from None
    if not isinstance(data, dict):
        raise BadInput(None, "the body must be a JSON object")
    return data


def _validate(model: type[BaseModel], data: dict[str, Any], what: str) -> BaseModel:
    unknown = [name for name in data if name not in model.model_fields]
    if unknown:
        # Named from the input itself: pydantic replaces what cannot be encoded in the names it reports.
        allowed = ", ".join(model.model_fields) or "none"
        raise BadInput(unknown[0], f"unknown {what}; allowed: {allowed}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise _bad_input(err) from None


def _bad_input(err: ValidationError) -> BadInput:
    """The first problem pydantic found, as a 400 naming the field."""
    problem = err.errors(include_url=False, include_context=False)[0]
    loc = [str(part) for part in problem["loc"]]
    if loc and loc[-1] == "[key]":
        # A bad key of a mapping: pydantic mangles it in `loc`, the input is the key as given.
        loc[-2:] = [str(problem["input"])]
    field = ".".join(loc) or None
    if problem["type"] == "missing":
        return BadInput(field, f"{field} is required")
    message = problem["msg"].removeprefix("Value error, ")
    return BadInput(field, f"{field}: {message}" if field else message)


def openapi_document(
    endpoints: Sequence[Endpoint], *, title: str, version: str, server_url: str, description: str = ""
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of these endpoints, with their models under components/schemas."""
    inputs = _unique(model for endpoint in endpoints for _, model in endpoint.inputs())
    outputs = _unique([*(endpoint.response for endpoint in endpoints), ErrorOut])
    modes: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        *((model, "validation") for model in inputs),
        *((model, "serialization") for model in outputs),
    ]
    refs, definitions = models_json_schema(modes, ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = definitions.get("$defs", {})
    parameter_models: set[str] = set()

    def name(model: type[BaseModel], mode: str) -> str:
        return str(refs[(model, mode)]["$ref"]).rsplit("/", 1)[1]  # type: ignore[index]

    def parameters(model: type[BaseModel], where: str) -> list[dict[str, Any]]:
        if model is NoParams:
            return []
        parameter_models.add(name(model, "validation"))
        schema = schemas[name(model, "validation")]
        found = []
        for field, field_schema in schema.get("properties", {}).items():
            field_schema = {k: v for k, v in field_schema.items() if k != "title"}
            parameter = {"name": field, "in": where, "required": where == "path" or field in schema.get("required", [])}
            if "description" in field_schema:
                parameter["description"] = field_schema.pop("description")
            found.append(parameter | {"schema": field_schema})
        return found

    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation: dict[str, Any] = {"operationId": endpoint.handler.__name__, "summary": endpoint.summary}
        if doc := inspect.getdoc(endpoint.handler):
            operation["description"] = doc
        found = parameters(endpoint.path_params, "path") + parameters(endpoint.query, "query")
        if found:
            operation["parameters"] = found
        if endpoint.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {JSON: {"schema": refs[(endpoint.body, "validation")]}},
            }
        responses = {str(endpoint.status): _response(endpoint.status, refs[(endpoint.response, "serialization")])}
        error = refs[(ErrorOut, "serialization")]
        for status in sorted({400, *endpoint.errors, *(() if endpoint.public else (401,))}):
            responses[str(status)] = _response(status, error)
        operation["responses"] = responses
        if endpoint.public:
            operation["security"] = []
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation

    for unused in parameter_models:
        schemas.pop(unused, None)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {SECURITY_SCHEME: {"type": "http", "scheme": "bearer"}},
        },
        "security": [{SECURITY_SCHEME: []}],
    }


def _response(status: int, schema: Any) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _STATUS_TEXT.get(status, "Error.")}
    response["content"] = {JSON: {"schema": schema}}
    if status == 401:
        challenge = {"description": "The scheme to use: Bearer.", "required": True, "schema": {"type": "string"}}
        response["headers"] = {"WWW-Authenticate": challenge}
    return response


def _unique(models: Iterable[type[BaseModel]]) -> list[type[BaseModel]]:
    return list(dict.fromkeys(models))
