"""The REST API for integrations (/api/v1): customer info, threads, messages, contacts."""

from __future__ import annotations

import dataclasses
import functools
import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import Enum
from typing import Any

from aiohttp import web
from bson import ObjectId
from bson.errors import InvalidId

from gateway.contacts import normalize_email, normalize_phone
from gateway.conversations import Draft
from gateway.keys import CONVERSATIONS, PROFILES, SETTINGS, STORE
from gateway.model import Author, Contact, Content, Message, Thread, ThreadStatus
from gateway.tokens import VisitorTokens

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_TEXT = 4096
_CONTACT_FIELDS = {"name", "email", "phone", "attributes"}


class BadInput(web.HTTPBadRequest):
    """400 naming the field that is wrong."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(text=json.dumps({"error": message, "field": field}), content_type="application/json")


class NotFound(web.HTTPNotFound):
    def __init__(self, what: str) -> None:
        super().__init__(text=json.dumps({"error": f"{what} not found"}), content_type="application/json")


def create_api() -> web.Application:
    """The /api/v1 sub-application; it reads shared state from the parent app."""
    api = web.Application(middlewares=[_authenticate])
    api.router.add_get("/threads", list_threads)
    api.router.add_get("/threads/{number}", get_thread)
    api.router.add_get("/threads/{number}/messages", list_messages)
    api.router.add_post("/threads/{number}/messages", post_message)
    api.router.add_get("/contacts", find_contacts)
    api.router.add_get("/contacts/{id}", get_contact)
    api.router.add_patch("/contacts/{id}", update_contact)
    api.router.add_patch("/visitors/{token}", update_visitor)
    return api


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.config_dict[SETTINGS]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    tokens = settings.api.tokens if settings.api else ()
    # Compare against every token so the time taken says nothing about which one is close.
    matches = [hmac.compare_digest(token.encode(), t.encode()) for t in tokens]
    if scheme.lower() != "bearer" or not any(matches):
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "a valid bearer token is required"}),
            content_type="application/json",
            headers={"WWW-Authenticate": 'Bearer realm="gateway"'},
        )
    return await handler(request)


async def list_threads(request: web.Request) -> web.Response:
    query = request.query
    status = _choice(query, "status", ThreadStatus)
    operator = _int(query, "operator")
    limit = _int(query, "limit", default=50, low=1, high=200)
    offset = _int(query, "offset", default=0, low=0)
    threads = await request.config_dict[STORE].threads.find(
        status=status, operator_id=operator, channel=query.get("channel") or None, limit=limit, skip=offset
    )
    return _json({"threads": [_thread(t) for t in threads]})


async def get_thread(request: web.Request) -> web.Response:
    return _json(_thread(await _load_thread(request)))


async def list_messages(request: web.Request) -> web.Response:
    thread = await _load_thread(request)
    limit = _int(request.query, "limit", default=100, low=1, high=500)
    offset = _int(request.query, "offset", default=0, low=0)
    messages = await request.config_dict[STORE].messages.for_thread(thread.id, limit=limit, skip=offset)
    return _json({"messages": [_message(m) for m in messages]})


async def post_message(request: web.Request) -> web.Response:
    """Answer a customer through their thread's channel."""
    thread = await _load_thread(request)
    body = await _body(request, {"text", "author_name"})
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadInput("text", "text must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise BadInput("text", f"text is limited to {MAX_TEXT} characters")
    author_name = body.get("author_name", "Support")
    if not isinstance(author_name, str) or not 0 < len(author_name) <= 100:
        raise BadInput("author_name", "author_name must be a string of 1-100 characters")
    message = await request.config_dict[CONVERSATIONS].send(
        thread, Draft(Content(text=text), author=Author.OPERATOR, author_name=author_name)
    )
    return _json(_message(message), status=201)


async def find_contacts(request: web.Request) -> web.Response:
    store = request.config_dict[STORE]
    region = request.config_dict[SETTINGS].contacts.default_region
    if "phone" in request.query:
        phone = normalize_phone(request.query["phone"], region)
        if phone is None:
            raise BadInput("phone", "not a valid phone number")
        contacts = await store.contacts.by_phone(phone)
    elif "email" in request.query:
        email = normalize_email(request.query["email"])
        if email is None:
            raise BadInput("email", "not a valid e-mail address")
        contacts = await store.contacts.by_email(email)
    else:
        raise BadInput("phone", "give phone or email")
    return _json({"contacts": [_contact(c) for c in contacts]})


async def get_contact(request: web.Request) -> web.Response:
    return _json(_contact(await _load_contact(request)))


async def update_contact(request: web.Request) -> web.Response:
    """Set name, e-mail, phone and custom attributes of a contact."""
    contact = await _load_contact(request)
    updated = await request.config_dict[PROFILES].update_contact(contact, **await _contact_fields(request))
    return _json(_contact(updated))


async def update_visitor(request: web.Request) -> web.Response:
    """The same, for the website: the contact is named by the widget's visitor token."""
    settings = request.config_dict[SETTINGS]
    if settings.webwidget is None:
        raise NotFound("visitor")
    ref = VisitorTokens(settings.webwidget.secret).identity(request.match_info["token"])
    if ref is None:
        raise BadInput("token", "not a valid visitor token")
    fields = await _contact_fields(request)
    profiles = request.config_dict[PROFILES]
    contact = await profiles.contact_for(ref)
    return _json(_contact(await profiles.update_contact(contact, **fields)))


async def _contact_fields(request: web.Request) -> dict[str, Any]:
    body = await _body(request, _CONTACT_FIELDS)
    fields: dict[str, Any] = {}
    for name, limit in (("name", 200), ("phone", 40), ("email", 254)):
        if name in body:
            value = body[name]
            if not isinstance(value, str) or not value.strip() or len(value) > limit:
                raise BadInput(name, f"{name} must be a non-empty string of at most {limit} characters")
            fields[name] = value
    if "email" in fields and normalize_email(fields["email"]) is None:
        raise BadInput("email", "not a valid e-mail address")
    if "attributes" in body:
        attributes = body["attributes"]
        if not isinstance(attributes, dict):
            raise BadInput("attributes", "attributes must be an object")
        for key, value in attributes.items():
            # Keys become MongoDB field names: no dots, no leading '$'.
            if not key or len(key) > 64 or "." in key or key.startswith("$"):
                raise BadInput(f"attributes.{key}", "attribute names are 1-64 characters without '.' or a leading '$'")
            if not isinstance(value, (str, int, float, bool)) and value is not None:
                raise BadInput(f"attributes.{key}", "attribute values are strings, numbers, booleans or null")
        fields["attributes"] = attributes
    if not fields:
        raise BadInput(None, f"give at least one of {', '.join(sorted(_CONTACT_FIELDS))}")
    return fields


async def _body(request: web.Request, allowed: set[str]) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise BadInput(None, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise BadInput(None, "the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadInput(unknown[0], f"unknown field; allowed: {', '.join(sorted(allowed))}")
    return body


async def _load_thread(request: web.Request) -> Thread:
    raw = request.match_info["number"].lstrip("#")
    if not raw.isdigit():
        raise BadInput("number", "a thread number is a positive integer")
    thread = await request.config_dict[STORE].threads.by_number(int(raw))
    if thread is None:
        raise NotFound("thread")
    return thread


async def _load_contact(request: web.Request) -> Contact:
    try:
        contact_id = ObjectId(request.match_info["id"])
    except InvalidId:
        raise BadInput("id", "not a contact id") from None
    contact = await request.config_dict[STORE].contacts.get(contact_id)
    if contact is None:
        raise NotFound("contact")
    return contact


def _int(
    query: Any, name: str, *, default: int | None = None, low: int | None = None, high: int | None = None
) -> int | None:
    if name not in query:
        return default
    try:
        value = int(query[name])
    except ValueError:
        raise BadInput(name, f"{name} must be an integer") from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise BadInput(name, f"{name} must be between {low} and {high}" if high else f"{name} must be >= {low}")
    return value


def _choice(query: Any, name: str, enum: type[Enum]) -> Any:
    if name not in query:
        return None
    try:
        return enum(query[name])
    except ValueError:
        raise BadInput(name, f"{name} must be one of {', '.join(e.value for e in enum)}") from None


def _thread(thread: Thread) -> dict[str, Any]:
    return dataclasses.asdict(thread)


def _message(message: Message) -> dict[str, Any]:
    doc = dataclasses.asdict(message)
    for internal in ("attempts", "next_attempt_at", "account", "identity"):
        doc.pop(internal)
    doc |= doc.pop("content")
    for media in doc["media"]:
        media.pop("ref")
    return doc


def _contact(contact: Contact) -> dict[str, Any]:
    return dataclasses.asdict(contact)


def _default(value: Any) -> Any:
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot serialise {type(value).__name__}")


_dumps = functools.partial(json.dumps, default=_default, ensure_ascii=False)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)
