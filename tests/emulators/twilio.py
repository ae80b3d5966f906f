"""Local emulator of the Twilio REST API (Messages) and of Twilio's WhatsApp webhooks, speaking Twilio's wire formats."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import secrets
import uuid
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from aiohttp import ClientError, ClientSession, ClientTimeout, web
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy
from twilio.request_validator import RequestValidator

if TYPE_CHECKING:
    from twilio.rest import Client

__all__ = [
    "API_VERSION",
    "DEFAULT_STATUS_PATH",
    "DEFAULT_WHATSAPP_SENDER",
    "DeliveryFailure",
    "EmulatedMessage",
    "InboundMedia",
    "RecordedRequest",
    "RestError",
    "StoredMedia",
    "TwilioEmulator",
    "WebhookDelivery",
    "build_vcard",
    "error_body",
    "new_sid",
]

API_VERSION = "2010-04-01"
DEFAULT_WHATSAPP_SENDER = "whatsapp:+14155238886"
DEFAULT_STATUS_PATH: tuple[str, ...] = ("queued", "sent", "delivered", "read")
FAILURE_STATUSES = frozenset({"failed", "undelivered"})

# Real Twilio texts where known; the {to}/{from_} placeholders are filled from the request.
ERROR_MESSAGES: Mapping[int, str] = {
    20003: "Authentication Error - invalid username",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "The 'To' number {to} is not a valid phone number.",
    21212: "The 'From' number {from_} is not a valid phone number, shortcode, or alphanumeric sender ID.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21609: "Invalid StatusCallback url",
    21610: "Attempt to send to unsubscribed recipient",
    21611: "This 'From' number has exceeded the maximum number of queued messages",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21619: "A text message body or media urls must be specified.",
    21656: "The ContentVariables Parameter is invalid.",
    63007: "Twilio could not find a Channel with the specified From address",
}

CHANNEL_STATUS_MESSAGES: Mapping[int, str] = {
    63003: "Channel could not find To address",
    63016: (
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template."
    ),
    63018: "Rate limit exceeded for Channel",
    63024: "Invalid message recipient",
}

# Rank used so a late (out-of-order) callback never moves the stored resource backwards, as on the real API.
_STATUS_RANK: Mapping[str, int] = {
    "scheduled": 0,
    "accepted": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "read": 5,
    "canceled": 6,
}
_EVENT_TYPES: Mapping[str, str] = {"delivered": "DELIVERED", "read": "READ", "undelivered": "UNDELIVERED"}
_PHONE = re.compile(r"^\+?[1-9]\d{6,14}$")
_WEBHOOK_TIMEOUT = ClientTimeout(total=15)  # Twilio's webhook timeout

# Tiny payloads carrying the right magic bytes, so sniffing code sees plausible files.
SAMPLE_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
SAMPLE_OGG = b"OggS\x00\x02" + b"\x00" * 20 + b"OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00"
SAMPLE_MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
SAMPLE_PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

ParamsInput = Mapping[str, str] | Iterable[tuple[str, str]]
_T = TypeVar("_T")


def new_sid(prefix: str) -> str:
    """Return a random Twilio-style SID: two-letter prefix + 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def error_body(http_status: int, code: int, message: str, **extra: Any) -> dict[str, Any]:
    """Return Twilio's legacy REST error JSON (the shape `TwilioRestException` is built from)."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": http_status,
        **extra,
    }


def build_vcard(name: str, phones: Sequence[str]) -> str:
    """Return a vCard 3.0 as WhatsApp shares it: N, FN and one TEL line (with waid) per phone, CRLF line ends."""
    given, _, family = name.rpartition(" ") if " " in name else (name, "", "")
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"N:{family};{given};;;", f"FN:{name}"]
    for phone in phones:
        digits = re.sub(r"\D", "", phone)
        lines.append(f"TEL;type=CELL;type=VOICE;waid={digits}:{phone}")
    lines.append("END:VCARD")
    return "\r\n".join(lines) + "\r\n"


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _rfc2822(value: datetime | None) -> str | None:
    return None if value is None else format_datetime(value)


def _whatsapp_address(number: str) -> str:
    bare = number.removeprefix("whatsapp:")
    return "whatsapp:" + (bare if bare.startswith("+") else "+" + bare)


def _bare_address(address: str) -> str:
    return address.split(":", 1)[1] if ":" in address else address


def _media_kind(content_type: str) -> str:
    major = content_type.split("/", 1)[0]
    if content_type.startswith(("text/vcard", "text/x-vcard")):
        return "contacts"
    return major if major in {"image", "audio", "video"} else "document"


@dataclass(frozen=True)
class RestError:
    """A synchronous REST error returned instead of processing a create."""

    http_status: int
    code: int
    message: str


@dataclass(frozen=True)
class DeliveryFailure:
    """An asynchronous failure: the create succeeds, then callbacks go queued → `status` with `error_code`."""

    error_code: int = 63016
    status: str = "undelivered"
    channel_status_message: str | None = None


@dataclass
class _Rule(Generic[_T]):
    value: _T
    to: str | None
    remaining: int | None

    def matches(self, to: str | None) -> bool:
        return self.to is None or (to is not None and _bare_address(to) == _bare_address(self.to))


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the emulator received (REST or media), with the decoded form and the response status."""

    method: str
    path: str
    query: MultiDictProxy[str]
    form: MultiDictProxy[str]
    headers: CIMultiDictProxy[str]
    auth: tuple[str, str] | None  # decoded HTTP Basic (login, password)
    response_status: int

    @property
    def media_urls(self) -> list[str]:
        """All repeated `MediaUrl` values, in order."""
        return self.form.getall("MediaUrl", [])


@dataclass(frozen=True)
class WebhookDelivery:
    """One form POST the emulator made (status callback or inbound message) and what came back."""

    url: str
    params: dict[str, str]
    signature: str | None
    response_status: int | None
    response_body: str
    error: str | None = None


@dataclass(frozen=True)
class StoredMedia:
    """A media file the emulator serves at a Twilio-style media URL."""

    message_sid: str
    media_sid: str
    content_type: str
    data: bytes
    filename: str | None
    url: str


@dataclass(frozen=True)
class InboundMedia:
    """A media attachment for an inbound message builder."""

    content_type: str
    data: bytes
    filename: str | None = None


@dataclass
class EmulatedMessage:
    """A Message resource created through the REST API, with its current state and status history."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    body: str
    media_urls: list[str]
    content_sid: str | None
    content_variables: str | None
    status_callback: str | None
    messaging_service_sid: str | None
    form: MultiDictProxy[str]
    date_created: datetime
    date_updated: datetime
    status: str = "queued"
    date_sent: datetime | None = None
    error_code: int | None = None
    error_message: str | None = None
    delivery_failure: DeliveryFailure | None = None
    statuses: list[str] = field(default_factory=list)  # every status applied after the create, in order

    @property
    def uri(self) -> str:
        """The resource path, as in the JSON `uri` field."""
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def apply_status(self, status: str, error_code: int | None) -> None:
        """Record a status; the resource state only moves forward (late callbacks do not regress it)."""
        self.statuses.append(status)
        if _STATUS_RANK.get(status, 0) < _STATUS_RANK.get(self.status, 0):
            return
        now = _utcnow()
        self.status = status
        self.date_updated = now
        if status == "sent" and self.date_sent is None:
            self.date_sent = now
        if status in FAILURE_STATUSES:
            self.error_code = error_code

    def resource(self) -> dict[str, Any]:
        """Return the Message resource JSON exactly as the REST API shapes it."""
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": _rfc2822(self.date_created),
            "date_sent": _rfc2822(self.date_sent),
            "date_updated": _rfc2822(self.date_updated),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": self.error_message,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": str(len(self.media_urls)),
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": f"{base}/Media.json", "feedback": f"{base}/Feedback.json"},
            "to": self.to,
            "uri": self.uri,
        }


class TwilioEmulator:
    """An aiohttp server emulating Twilio's Messages REST API, status callbacks, media URLs and WhatsApp webhooks."""

    def __init__(
        self,
        account_sid: str | None = None,
        auth_token: str = "emulator-auth-token",
        *,
        whatsapp_number: str = DEFAULT_WHATSAPP_SENDER,
        auto_status_callbacks: bool = True,
        status_path: Sequence[str] = DEFAULT_STATUS_PATH,
        status_interval: float = 0.0,
        require_media_auth: bool = False,
    ) -> None:
        self.account_sid = account_sid or new_sid("AC")
        self.auth_token = auth_token
        self.whatsapp_number = _whatsapp_address(whatsapp_number)
        self.auto_status_callbacks = auto_status_callbacks
        self.status_path: tuple[str, ...] = tuple(status_path)
        self.status_interval = status_interval
        self.require_media_auth = require_media_auth
        self.channel_install_sid = new_sid("XE")
        self.validator = RequestValidator(auth_token)

        self.requests: list[RecordedRequest] = []
        self.messages: list[EmulatedMessage] = []
        self.status_callbacks: list[WebhookDelivery] = []
        self.inbound_deliveries: list[WebhookDelivery] = []
        self.media: dict[str, StoredMedia] = {}

        self._messages_by_sid: dict[str, EmulatedMessage] = {}
        self._rest_errors: list[_Rule[RestError]] = []
        self._delivery_failures: list[_Rule[DeliveryFailure]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._base_url: str | None = None

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start serving on 127.0.0.1 at a free port."""
        if self._runner is not None:
            raise RuntimeError("TwilioEmulator already started")
        app = web.Application(middlewares=[self._record_middleware])
        prefix = f"/{API_VERSION}/Accounts/{{account_sid}}/Messages"
        app.router.add_post(f"{prefix}.json", self._handle_create)
        app.router.add_get(f"{prefix}/{{message_sid:[A-Za-z0-9]+}}.json", self._handle_fetch)
        app.router.add_get(
            f"{prefix}/{{message_sid:[A-Za-z0-9]+}}/Media/{{media_sid:[A-Za-z0-9]+}}", self._handle_media
        )
        app.router.add_route("*", "/{tail:.*}", self._handle_not_found)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._base_url = f"http://{host}:{port}"
        self._session = ClientSession(timeout=_WEBHOOK_TIMEOUT)

    async def close(self) -> None:
        """Cancel pending callback tasks, then stop the server; re-raises an unexpected error from a task."""
        tasks = list(self._tasks)
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._base_url = None
        _raise_first_error(results)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`: the value for `client.api.base_url`."""
        if self._base_url is None:
            raise RuntimeError("TwilioEmulator is not started")
        return self._base_url

    @property
    def messages_url(self) -> str:
        """Absolute URL of this account's Messages.json list resource."""
        return f"{self.base_url}/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"

    def point_client(self, client: Client) -> Client:
        """Point a `twilio.rest.Client` at the emulator (sets `api.base_url`, clears edge/region that rewrite hosts)."""
        client.edge = None
        client.region = None
        client.api.base_url = self.base_url
        return client

    @property
    def pending_tasks(self) -> int:
        """Number of background status-callback tasks not yet awaited by `settle()`/`close()`."""
        return sum(1 for task in self._tasks if not task.done())

    async def settle(self, timeout: float | None = 10.0) -> None:
        """Wait until all automatic status callbacks (including ones they start) were delivered."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                tasks = list(self._tasks)
                results = await asyncio.gather(*tasks, return_exceptions=True)
                self._tasks.difference_update(tasks)
                _raise_first_error(results)

    # ----------------------------------------------------------------- inspection

    def get_message(self, sid: str) -> EmulatedMessage:
        """Return the created message with this SID (KeyError if unknown)."""
        return self._messages_by_sid[sid]

    def messages_to(self, to: str) -> list[EmulatedMessage]:
        """Created messages whose `To` matches (with or without the `whatsapp:` prefix)."""
        return [m for m in self.messages if _bare_address(m.to) == _bare_address(to)]

    @property
    def create_requests(self) -> list[RecordedRequest]:
        """Recorded `POST …/Messages.json` requests, including rejected ones."""
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/Messages.json")]

    def callbacks_for(self, sid: str) -> list[WebhookDelivery]:
        """Delivered status callbacks of one message, in delivery order."""
        return [d for d in self.status_callbacks if d.params.get("MessageSid") == sid]

    # ----------------------------------------------------------------- failure injection

    def inject_rest_error(
        self,
        http_status: int,
        code: int,
        message: str | None = None,
        *,
        to: str | None = None,
        times: int | None = None,
    ) -> RestError:
        """Make creates fail synchronously: the next `times` creates (default 1), or creates to `to` (default always)."""
        error = RestError(http_status, code, message or ERROR_MESSAGES.get(code, "Error"))
        self._rest_errors.append(_Rule(error, to, times if times is not None or to is not None else 1))
        return error

    def inject_delivery_failure(
        self,
        error_code: int = 63016,
        *,
        status: str = "undelivered",
        to: str | None = None,
        times: int | None = None,
        channel_status_message: str | None = None,
    ) -> DeliveryFailure:
        """Make creates succeed (201 queued) but end `failed`/`undelivered` with `error_code`; scoped like REST errors."""
        if status not in FAILURE_STATUSES:
            raise ValueError(f"status must be one of {sorted(FAILURE_STATUSES)}")
        failure = DeliveryFailure(error_code, status, channel_status_message)
        self._delivery_failures.append(_Rule(failure, to, times if times is not None or to is not None else 1))
        return failure

    def clear_failures(self) -> None:
        """Remove all injected REST errors and delivery failures."""
        self._rest_errors.clear()
        self._delivery_failures.clear()

    # ----------------------------------------------------------------- status callbacks

    async def send_status(
        self,
        sid: str,
        status: str,
        *,
        error_code: int | None = None,
        url: str | None = None,
        channel_status_message: str | None = None,
    ) -> WebhookDelivery | None:
        """Apply `status` to a message now and POST its signed callback (to `url` or its StatusCallback).

        Call it in any order to simulate out-of-order delivery. For failed/undelivered without `error_code`,
        the message's injected failure code is used. Returns None when there is no callback URL.
        """
        message = self.get_message(sid)
        if error_code is None and status in FAILURE_STATUSES and message.delivery_failure is not None:
            error_code = message.delivery_failure.error_code
            channel_status_message = channel_status_message or message.delivery_failure.channel_status_message
        return await self._apply_status(message, status, error_code, channel_status_message, url)

    async def play_statuses(self, sid: str, statuses: Sequence[str] | None = None) -> list[WebhookDelivery]:
        """Send a sequence of statuses now (default: the path automatic callbacks would follow for this message)."""
        message = self.get_message(sid)
        deliveries: list[WebhookDelivery] = []
        for status in statuses if statuses is not None else self._path_for(message):
            delivery = await self.send_status(sid, status)
            if delivery is not None:
                deliveries.append(delivery)
        return deliveries

    def status_params(
        self,
        message: EmulatedMessage,
        status: str,
        error_code: int | None = None,
        channel_status_message: str | None = None,
    ) -> dict[str, str]:
        """Return the form parameters of a status callback, as real WhatsApp callbacks carry them."""
        whatsapp = message.to.startswith("whatsapp:")
        params: dict[str, str] = {}
        if whatsapp and status in _EVENT_TYPES:
            params["EventType"] = _EVENT_TYPES[status]
        params |= {"SmsSid": message.sid, "SmsStatus": status, "MessageStatus": status}
        if error_code is not None and status in FAILURE_STATUSES:
            params["ErrorCode"] = str(error_code)
            if whatsapp:
                params["ChannelStatusMessage"] = channel_status_message or CHANNEL_STATUS_MESSAGES.get(
                    error_code, "Message delivery failed"
                )
        if whatsapp:
            params["ChannelToAddress"] = _bare_address(message.to)
        params["To"] = message.to
        if whatsapp:
            params["ChannelPrefix"] = "whatsapp"
        params |= {"MessageSid": message.sid, "AccountSid": message.account_sid}
        if message.messaging_service_sid:
            params["MessagingServiceSid"] = message.messaging_service_sid
        if message.from_:
            params["From"] = message.from_
        params["ApiVersion"] = API_VERSION
        if whatsapp:
            params["ChannelInstallSid"] = self.channel_install_sid
        return params

    def _path_for(self, message: EmulatedMessage) -> tuple[str, ...]:
        if message.delivery_failure is not None:
            return ("queued", message.delivery_failure.status)
        return self.status_path

    async def _apply_status(
        self,
        message: EmulatedMessage,
        status: str,
        error_code: int | None,
        channel_status_message: str | None,
        url: str | None,
    ) -> WebhookDelivery | None:
        message.apply_status(status, error_code)
        target = url or message.status_callback
        if target is None:
            return None
        params = self.status_params(message, status, error_code, channel_status_message)
        delivery = await self._post_form(target, params, self.validator.compute_signature(target, params))
        self.status_callbacks.append(delivery)
        return delivery

    async def _run_automatic_statuses(self, message: EmulatedMessage) -> None:
        for index, status in enumerate(self._path_for(message)):
            if index and self.status_interval:
                await asyncio.sleep(self.status_interval)
            failure = message.delivery_failure if status in FAILURE_STATUSES else None
            await self._apply_status(
                message,
                status,
                failure.error_code if failure else None,
                failure.channel_status_message if failure else None,
                None,
            )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.add(asyncio.get_running_loop().create_task(coro))

    # ----------------------------------------------------------------- inbound webhooks

    async def post_inbound(
        self,
        url: str,
        params: ParamsInput,
        *,
        signed_url: str | None = None,
        signature: str | None = None,
        sign: bool = True,
    ) -> tuple[int, str]:
        """POST form params to `url` like Twilio does, signed over `signed_url or url`; returns (status, body).

        `signature` is sent verbatim instead of the computed one; `sign=False` omits X-Twilio-Signature.
        """
        form = MultiDict(params)
        if sign and signature is None:
            signature = self.validator.compute_signature(signed_url or url, form)
        delivery = await self._post_form(url, form, signature if sign else None)
        self.inbound_deliveries.append(delivery)
        if delivery.response_status is None:
            raise ConnectionError(f"inbound webhook POST to {url} failed: {delivery.error}")
        return delivery.response_status, delivery.response_body

    async def _post_form(
        self, url: str, params: MultiDict[str] | Mapping[str, str], signature: str | None
    ) -> WebhookDelivery:
        if self._session is None:
            raise RuntimeError("TwilioEmulator is not started")
        pairs = list(params.items())
        headers = {
            "User-Agent": "TwilioProxy/1.1",
            "Accept": "*/*",
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        }
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        recorded = dict(pairs)
        try:
            async with self._session.post(url, data=pairs, headers=headers, allow_redirects=False) as response:
                body = await response.text()
                return WebhookDelivery(url, recorded, signature, response.status, body)
        except (ClientError, TimeoutError) as exc:
            # Twilio does not retry a failed callback; record it so tests can see it.
            return WebhookDelivery(url, recorded, signature, None, "", repr(exc))

    # ----------------------------------------------------------------- inbound builders

    def inbound_text(
        self,
        from_: str,
        body: str,
        *,
        to: str | None = None,
        profile_name: str = "Ann Lee",
        message_sid: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Build the parameters of an inbound WhatsApp text message (as the real capture in protocols.md B1)."""
        params = self._inbound_base(from_, to, profile_name, message_sid or new_sid("SM"), "text", body, 0)
        return params | dict(extra or {})

    def inbound_media(
        self,
        from_: str,
        media: Sequence[InboundMedia],
        *,
        body: str = "",
        message_type: str | None = None,
        to: str | None = None,
        profile_name: str = "Ann Lee",
        message_sid: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Build an inbound media message: NumMedia, MediaUrlN and MediaContentTypeN pointing at served media."""
        if not media:
            raise ValueError("at least one media item is required")
        sid = message_sid or new_sid("MM")
        kind = message_type or _media_kind(media[0].content_type)
        params = self._inbound_base(from_, to, profile_name, sid, kind, body, len(media))
        for index, item in enumerate(media):
            params[f"MediaContentType{index}"] = item.content_type
            params[f"MediaUrl{index}"] = self.add_media(item.content_type, item.data, item.filename, message_sid=sid)
        return params | dict(extra or {})

    def inbound_image(
        self,
        from_: str,
        data: bytes = SAMPLE_JPEG,
        *,
        content_type: str = "image/jpeg",
        caption: str = "",
        **kwargs: Any,
    ) -> dict[str, str]:
        """Build an inbound image (caption goes to Body); kwargs as for `inbound_media`."""
        return self.inbound_media(from_, [InboundMedia(content_type, data)], body=caption, **kwargs)

    def inbound_audio(
        self, from_: str, data: bytes = SAMPLE_OGG, *, content_type: str = "audio/ogg", **kwargs: Any
    ) -> dict[str, str]:
        """Build an inbound audio/voice note; kwargs as for `inbound_media`."""
        return self.inbound_media(from_, [InboundMedia(content_type, data)], **kwargs)

    def inbound_video(
        self, from_: str, data: bytes = SAMPLE_MP4, *, content_type: str = "video/mp4", caption: str = "", **kwargs: Any
    ) -> dict[str, str]:
        """Build an inbound video (caption goes to Body); kwargs as for `inbound_media`."""
        return self.inbound_media(from_, [InboundMedia(content_type, data)], body=caption, **kwargs)

    def inbound_document(
        self,
        from_: str,
        data: bytes = SAMPLE_PDF,
        *,
        content_type: str = "application/pdf",
        filename: str | None = "document.pdf",
        caption: str = "",
        **kwargs: Any,
    ) -> dict[str, str]:
        """Build an inbound document; the filename is served as Content-Disposition; kwargs as for `inbound_media`."""
        return self.inbound_media(from_, [InboundMedia(content_type, data, filename)], body=caption, **kwargs)

    def inbound_location(
        self,
        from_: str,
        latitude: float,
        longitude: float,
        *,
        address: str | None = None,
        label: str | None = None,
        to: str | None = None,
        profile_name: str = "Ann Lee",
        message_sid: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Build an inbound shared location (Latitude/Longitude, optional Address/Label, empty Body)."""
        params = self._inbound_base(from_, to, profile_name, message_sid or new_sid("SM"), "location", "", 0)
        params |= {"Latitude": repr(float(latitude)), "Longitude": repr(float(longitude))}
        if address is not None:
            params["Address"] = address
        if label is not None:
            params["Label"] = label
        return params | dict(extra or {})

    def inbound_contact(
        self,
        from_: str,
        name: str,
        phones: Sequence[str],
        *,
        to: str | None = None,
        profile_name: str = "Ann Lee",
        message_sid: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Build an inbound shared contact: one `text/vcard` media holding FN and a TEL line per phone."""
        vcard = InboundMedia("text/vcard", build_vcard(name, phones).encode(), f"{name}.vcf")
        return self.inbound_media(
            from_,
            [vcard],
            message_type="contacts",
            to=to,
            profile_name=profile_name,
            message_sid=message_sid,
            extra=extra,
        )

    def inbound_button(
        self,
        from_: str,
        text: str,
        payload: str,
        *,
        button_type: str | None = "REPLY",
        message_type: str = "interactive",
        replied_message_sid: str | None = None,
        replied_sender: str | None = None,
        to: str | None = None,
        profile_name: str = "Ann Lee",
        message_sid: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Build a quick-reply button answer (Body=ButtonText, ButtonPayload, ButtonType, ChannelMetadata)."""
        params = self._inbound_base(from_, to, profile_name, message_sid or new_sid("SM"), message_type, text, 0)
        params |= {"ButtonText": text, "ButtonPayload": payload}
        if button_type is not None:
            params["ButtonType"] = button_type
        if replied_message_sid is not None:
            params["OriginalRepliedMessageSid"] = replied_message_sid
            params["OriginalRepliedMessageSender"] = _whatsapp_address(replied_sender or params["To"])
        context = {
            "ButtonText": text,
            "Forwarded": "false",
            "FrequentlyForwarded": "false",
            "ProfileName": profile_name,
            "WaId": params["WaId"],
        }
        params["ChannelMetadata"] = json.dumps(
            {"type": "whatsapp", "data": {"context": context}}, separators=(",", ":")
        )
        params |= {"Forwarded": "false", "FrequentlyForwarded": "false"}
        return params | dict(extra or {})

    def inbound_reply(
        self,
        from_: str,
        body: str,
        replied_message_sid: str,
        *,
        replied_sender: str | None = None,
        to: str | None = None,
        profile_name: str = "Ann Lee",
        message_sid: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Build a text that quotes an earlier message (OriginalRepliedMessageSid/Sender; sender defaults to `to`)."""
        params = self.inbound_text(from_, body, to=to, profile_name=profile_name, message_sid=message_sid)
        params["OriginalRepliedMessageSid"] = replied_message_sid
        params["OriginalRepliedMessageSender"] = _whatsapp_address(replied_sender or params["To"])
        return params | dict(extra or {})

    def _inbound_base(
        self,
        from_: str,
        to: str | None,
        profile_name: str,
        sid: str,
        message_type: str,
        body: str,
        num_media: int,
    ) -> dict[str, str]:
        sender = _whatsapp_address(from_)
        # Same key order as the real text capture.
        return {
            "SmsMessageSid": sid,
            "NumMedia": str(num_media),
            "ProfileName": profile_name,
            "MessageType": message_type,
            "SmsSid": sid,
            "WaId": _bare_address(sender).lstrip("+"),
            "SmsStatus": "received",
            "Body": body,
            "To": _whatsapp_address(to) if to else self.whatsapp_number,
            "NumSegments": "1",
            "ReferralNumMedia": "0",
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": sender,
            "ApiVersion": API_VERSION,
        }

    # ----------------------------------------------------------------- media

    def add_media(
        self, content_type: str, data: bytes, filename: str | None = None, *, message_sid: str | None = None
    ) -> str:
        """Serve `data` at `{base_url}/2010-04-01/Accounts/{AC}/Messages/{MM}/Media/{ME}` and return that URL."""
        message_sid = message_sid or new_sid("MM")
        media_sid = new_sid("ME")
        url = f"{self.base_url}/{API_VERSION}/Accounts/{self.account_sid}/Messages/{message_sid}/Media/{media_sid}"
        self.media[url] = StoredMedia(message_sid, media_sid, content_type, data, filename, url)
        return url

    # ----------------------------------------------------------------- HTTP handlers

    @web.middleware
    async def _record_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        form: MultiDictProxy[str] = MultiDictProxy(MultiDict())
        if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
            posted = await request.post()
            form = MultiDictProxy(MultiDict((k, v) for k, v in posted.items() if isinstance(v, str)))
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            self._record(request, form, exc.status)
            raise
        self._record(request, form, response.status)
        return response

    def _record(self, request: web.Request, form: MultiDictProxy[str], status: int) -> None:
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=MultiDictProxy(MultiDict(request.query)),
                form=form,
                headers=CIMultiDictProxy(CIMultiDict(request.headers)),
                auth=_basic_auth(request),
                response_status=status,
            )
        )

    def _authorized(self, request: web.Request) -> bool:
        return _basic_auth(request) == (self.account_sid, self.auth_token)

    async def _handle_create(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return _auth_error()
        if request.match_info["account_sid"] != self.account_sid:
            return _not_found(request.path)
        form = await request.post()
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
        to, from_ = fields.get("To"), fields.get("From")

        injected = _take(self._rest_errors, to)
        if injected is not None:
            text = injected.message.replace("{to}", to or "").replace("{from_}", from_ or "")
            return _json_error(injected.http_status, injected.code, text)
        if (error := _validate_create(fields)) is not None:
            return error

        now = _utcnow()
        assert to is not None  # checked by _validate_create
        message = EmulatedMessage(
            sid=new_sid("SM"),
            account_sid=self.account_sid,
            to=to,
            from_=from_,
            body=fields.get("Body", ""),
            media_urls=[url for url in form.getall("MediaUrl", []) if isinstance(url, str)],
            content_sid=fields.get("ContentSid"),
            content_variables=fields.get("ContentVariables"),
            status_callback=fields.get("StatusCallback"),
            messaging_service_sid=fields.get("MessagingServiceSid"),
            form=MultiDictProxy(MultiDict((k, v) for k, v in form.items() if isinstance(v, str))),
            date_created=now,
            date_updated=now,
            delivery_failure=_take(self._delivery_failures, to),
        )
        self.messages.append(message)
        self._messages_by_sid[message.sid] = message

        response = web.json_response(message.resource(), status=201)
        if self.auto_status_callbacks:
            # Flush the 201 before the first callback starts, so the client normally learns the SID first.
            await response.prepare(request)
            await response.write_eof()
            self._spawn(self._run_automatic_statuses(message))
        return response

    async def _handle_fetch(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return _auth_error()
        message = self._messages_by_sid.get(request.match_info["message_sid"])
        if request.match_info["account_sid"] != self.account_sid or message is None:
            return _not_found(request.path)
        return web.json_response(message.resource())

    async def _handle_media(self, request: web.Request) -> web.StreamResponse:
        if self.require_media_auth and not self._authorized(request):
            return _auth_error()
        media = self.media.get(f"{self.base_url}{request.path}")
        if media is None:
            return _not_found(request.path)
        headers = {}
        if media.filename:
            headers["Content-Disposition"] = f'attachment; filename="{media.filename}"'
        return web.Response(body=media.data, content_type=media.content_type, headers=headers)

    async def _handle_not_found(self, request: web.Request) -> web.StreamResponse:
        return _not_found(request.path)


def _validate_create(fields: Mapping[str, str]) -> web.Response | None:
    to, from_ = fields.get("To"), fields.get("From")
    if not to:
        return _json_error(400, 21604, ERROR_MESSAGES[21604])
    if not from_ and not fields.get("MessagingServiceSid"):
        return _json_error(400, 21603, ERROR_MESSAGES[21603])
    if not _PHONE.match(_bare_address(to)):
        return _json_error(400, 21211, ERROR_MESSAGES[21211].format(to=to))
    if from_ and not _PHONE.match(_bare_address(from_)):
        return _json_error(400, 21212, ERROR_MESSAGES[21212].format(from_=from_))
    if not (fields.get("Body") or fields.get("MediaUrl") or fields.get("ContentSid")):
        return _json_error(400, 21619, ERROR_MESSAGES[21619])
    if len(fields.get("Body", "")) > 1600:
        return _json_error(400, 21617, ERROR_MESSAGES[21617])
    if "ContentVariables" in fields:
        try:
            variables = json.loads(fields["ContentVariables"])
        except ValueError:
            variables = None
        if not isinstance(variables, dict):
            return _json_error(400, 21656, ERROR_MESSAGES[21656])
    callback = fields.get("StatusCallback")
    if callback is not None and not callback.startswith(("http://", "https://")):
        return _json_error(400, 21609, ERROR_MESSAGES[21609])
    return None


def _take(rules: list[_Rule[_T]], to: str | None) -> _T | None:
    # Recipient-scoped rules win over "next N creates" rules.
    for scoped in (True, False):
        for rule in rules:
            if (rule.to is not None) == scoped and rule.matches(to):
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        rules.remove(rule)
                return rule.value
    return None


def _basic_auth(request: web.Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        login, colon, password = base64.b64decode(encoded, validate=True).decode("latin1").partition(":")
    except (binascii.Error, ValueError):
        return None
    return (login, password) if colon else None


def _json_error(http_status: int, code: int, message: str, **extra: Any) -> web.Response:
    return web.json_response(error_body(http_status, code, message, **extra), status=http_status)


def _auth_error() -> web.Response:
    response = _json_error(401, 20003, ERROR_MESSAGES[20003], detail="Your AccountSid or AuthToken was incorrect.")
    response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return response


def _not_found(path: str) -> web.Response:
    return _json_error(404, 20404, f"The requested resource {path} was not found")


def _raise_first_error(results: Sequence[object]) -> None:
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result
