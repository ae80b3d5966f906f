"""The REST API for integrations (/api/v1): customer info, threads, messages, contacts.

Every endpoint is declared once in ENDPOINTS; its routes and the OpenAPI document (GET /openapi.json,
the one request that needs no token) both come from there.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from bson import ObjectId

from gateway.api_requests import (
    ContactIn,
    ContactPath,
    ContactQuery,
    MessageIn,
    MessageQuery,
    ThreadPath,
    ThreadQuery,
    VisitorPath,
)
from gateway.api_responses import (
    ContactList,
    ContactOut,
    ErasureOut,
    ExportOut,
    MessageList,
    MessageOut,
    OpenApiOut,
    ThreadList,
    ThreadOut,
    contact_out,
    erasure_out,
    export_out,
    message_out,
    thread_out,
)
from gateway.api_routes import JSON, ApiError, BadInput, Endpoint, NotFound, add_routes, openapi_document
from gateway.contacts import normalize_email, normalize_phone
from gateway.conversations import Draft
from gateway.keys import CONVERSATIONS, PRIVACY, PROFILES, SETTINGS, STORE
from gateway.model import Author, Contact, Content, Thread
from gateway.privacy import ErasureOutcome
from gateway.tokens import VisitorTokens

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PREFIX = "/api/v1"


async def list_threads(request: web.Request, query: ThreadQuery) -> ThreadList:
    """Threads, most recently active first, optionally filtered by status, operator and channel."""
    threads = await request.config_dict[STORE].threads.find(
        status=query.status,
        operator_id=query.operator,
        channel=query.channel or None,
        limit=query.limit,
        skip=query.offset,
    )
    return ThreadList(threads=[thread_out(t) for t in threads])


async def get_thread(request: web.Request, path: ThreadPath) -> ThreadOut:
    """One thread by its number."""
    return thread_out(await _thread(request, path.number))


async def list_messages(request: web.Request, path: ThreadPath, query: MessageQuery) -> MessageList:
    """A thread's messages, oldest first."""
    thread = await _thread(request, path.number)
    messages = await request.config_dict[STORE].messages.for_thread(thread.id, limit=query.limit, skip=query.offset)
    return MessageList(messages=[message_out(m) for m in messages])


async def post_message(request: web.Request, path: ThreadPath, body: MessageIn) -> MessageOut:
    """Answer the customer through the thread's channel; the message comes back with its delivery status."""
    thread = await _thread(request, path.number)
    if thread.erased_at is not None:
        raise ApiError(409, "this conversation's customer was erased: there is nobody to answer")
    message = await request.config_dict[CONVERSATIONS].send(
        thread, Draft(Content(text=body.text), author=Author.OPERATOR, author_name=body.author_name)
    )
    return message_out(message)


async def find_contacts(request: web.Request, query: ContactQuery) -> ContactList:
    """Contacts by phone number (any format) or by e-mail address; give one of them."""
    store = request.config_dict[STORE]
    if query.phone is not None:
        phone = normalize_phone(query.phone, request.config_dict[SETTINGS].contacts.default_region)
        if phone is None:
            raise BadInput("phone", "not a valid phone number")
        contacts = await store.contacts.by_phone(phone)
    elif query.email is not None:
        email = normalize_email(query.email)
        if email is None:
            raise BadInput("email", "not a valid e-mail address")
        contacts = await store.contacts.by_email(email)
    else:
        raise BadInput("phone", "give phone or email")
    return ContactList(contacts=[contact_out(c) for c in contacts])


async def get_contact(request: web.Request, path: ContactPath) -> ContactOut:
    """One contact by id."""
    return contact_out(await _contact(request, path.id))


async def update_contact(request: web.Request, path: ContactPath, body: ContactIn) -> ContactOut:
    """Set name, e-mail, phone and custom attributes of a contact."""
    contact = await _contact(request, path.id)
    updated = await request.config_dict[PROFILES].update_contact(contact, **body.model_dump(exclude_unset=True))
    return contact_out(updated)


async def export_contact(request: web.Request, path: ContactPath) -> ExportOut:
    """Everything stored about the person, as one document: their card (and the cards merged into it), every
    conversation with its messages and delivery statuses, visitor data, merges, duplicate candidates and links
    to their files. A merged-away card's id stands for the person too."""
    export = await request.config_dict[PRIVACY].export(ObjectId(path.id))
    if export is None:
        raise NotFound("contact")
    return export_out(export)


async def erase_contact(request: web.Request, path: ContactPath) -> ErasureOut:
    """Erase the person: their card and the cards merged into it, identities, messages, notes, visitor data,
    duplicate candidates and file references; merge records keep only that a merge happened. Conversations are
    kept as timings only, so the KPIs stay right. Their next message starts a fresh card. Erasing again answers
    the first erasure; the answer lists what the gateway cannot delete (what reached Telegram, WhatsApp, ...)."""
    result = await request.config_dict[PRIVACY].erase(ObjectId(path.id), via="api", api_token=_fingerprint(request))
    if result.outcome is ErasureOutcome.BUSY:
        raise ApiError(409, "the contact is being merged or erased right now; try again in a moment")
    if result.record is None:
        raise NotFound("contact")
    return erasure_out(result.record, already=result.outcome is ErasureOutcome.ALREADY_ERASED)


async def update_visitor(request: web.Request, path: VisitorPath, body: ContactIn) -> ContactOut:
    """The same, for the website: the contact is named by the widget's visitor token."""
    settings = request.config_dict[SETTINGS]
    if settings.webwidget is None:
        raise NotFound("visitor")
    ref = VisitorTokens(settings.webwidget.secret).identity(path.token)
    if ref is None:
        raise BadInput("token", "not a valid visitor token")
    profiles = request.config_dict[PROFILES]
    contact = await profiles.contact_for(ref)
    return contact_out(await profiles.update_contact(contact, **body.model_dump(exclude_unset=True)))


async def get_openapi(request: web.Request) -> OpenApiOut:
    """This API's OpenAPI 3.1 document."""
    return OpenApiOut(document())


async def _thread(request: web.Request, number: int) -> Thread:
    thread = await request.config_dict[STORE].threads.by_number(number)
    if thread is None:
        raise NotFound("thread")
    return thread


async def _contact(request: web.Request, contact_id: str) -> Contact:
    contact = await request.config_dict[STORE].contacts.get(ObjectId(contact_id))
    if contact is None:
        raise NotFound("contact")
    return contact


ENDPOINTS = (
    Endpoint("GET", "/threads", list_threads, "List threads", ThreadList, query=ThreadQuery),
    Endpoint("GET", "/threads/{number}", get_thread, "Get a thread", ThreadOut, path_params=ThreadPath, errors=(404,)),
    Endpoint(
        "GET",
        "/threads/{number}/messages",
        list_messages,
        "List a thread's messages",
        MessageList,
        path_params=ThreadPath,
        query=MessageQuery,
        errors=(404,),
    ),
    Endpoint(
        "POST",
        "/threads/{number}/messages",
        post_message,
        "Answer the customer",
        MessageOut,
        status=201,
        path_params=ThreadPath,
        body=MessageIn,
        errors=(404, 409),
    ),
    Endpoint("GET", "/contacts", find_contacts, "Find contacts by phone or e-mail", ContactList, query=ContactQuery),
    Endpoint("GET", "/contacts/{id}", get_contact, "Get a contact", ContactOut, path_params=ContactPath, errors=(404,)),
    Endpoint(
        "PATCH",
        "/contacts/{id}",
        update_contact,
        "Set customer info",
        ContactOut,
        path_params=ContactPath,
        body=ContactIn,
        errors=(404,),
    ),
    Endpoint(
        "DELETE",
        "/contacts/{id}",
        erase_contact,
        "Erase a person's data",
        ErasureOut,
        path_params=ContactPath,
        errors=(404, 409),
    ),
    Endpoint(
        "GET",
        "/contacts/{id}/export",
        export_contact,
        "Export everything stored about a person",
        ExportOut,
        path_params=ContactPath,
        errors=(404,),
    ),
    Endpoint(
        "PATCH",
        "/visitors/{token}",
        update_visitor,
        "Set customer info by visitor token",
        ContactOut,
        path_params=VisitorPath,
        body=ContactIn,
        errors=(404,),
    ),
    Endpoint("GET", "/openapi.json", get_openapi, "This document", OpenApiOut, public=True),
)


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI document of ENDPOINTS (built once)."""
    return openapi_document(
        ENDPOINTS,
        title="Messenger gateway API",
        version="1",
        server_url=PREFIX,
        description="Threads, messages and customer info, for integrations. "
        "Every request but this document's needs `Authorization: Bearer <token>` (config `api.tokens`).",
    )


def create_api() -> web.Application:
    """The /api/v1 sub-application; it reads shared state from the parent app."""
    document()  # a declaration that cannot be documented fails here, at start-up
    api = web.Application()
    public = add_routes(api, ENDPOINTS)
    # Authentication runs first, before anything of the request is decoded or read.
    api.middlewares.extend([_authenticator(public), _json_errors])
    return api


def _authenticator(public: set[web.AbstractRoute]) -> Any:
    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.route not in public and not _authorized(request):
            raise ApiError(
                401, "a valid bearer token is required", headers={"WWW-Authenticate": 'Bearer realm="gateway"'}
            )
        return await handler(request)

    return authenticate


def _fingerprint(request: web.Request) -> str:
    """Which API token a request carries, for the audit: the start of its SHA-256, never the token itself."""
    header = request.headers.get("Authorization", "")
    return hashlib.sha256(header.partition(" ")[2].encode("utf-8", "surrogateescape")).hexdigest()[:12]


def _authorized(request: web.Request) -> bool:
    """Whether the request carries one of the configured tokens (compared as bytes, whatever it holds)."""
    settings = request.config_dict[SETTINGS]
    tokens = settings.api.tokens if settings.api else ()
    given = [value for name, value in request.raw_headers if name.lower() == b"authorization"]
    if len(given) != 1:
        return False
    scheme, _, token = given[0].partition(b" ")
    # Compare against every token so the time taken says nothing about which one is close.
    matches = [hmac.compare_digest(token, t.encode()) for t in tokens]
    return scheme.lower() == b"bearer" and any(matches)


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own errors (unknown path, method not allowed) in the API's JSON form."""
    try:
        return await handler(request)
    except web.HTTPException as err:
        if err.status < 400 or err.content_type == JSON:
            raise
        headers = {k: v for k, v in err.headers.items() if k.lower() in ("allow", "www-authenticate")}
        raise ApiError(err.status, err.reason.lower(), headers=headers) from None
