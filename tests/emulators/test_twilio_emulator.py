"""Tests of the Twilio emulator, driven through the real twilio SDK (async client) and RequestValidator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from multidict import MultiDictProxy
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.emulators.twilio import (
    DEFAULT_WHATSAPP_SENDER,
    InboundMedia,
    TwilioEmulator,
)

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "5e1f" * 8
CUSTOMER = "whatsapp:+15551234567"
PUBLIC_BASE = "https://gw.example.com"
AUTH_HEADER = {"Authorization": aiohttp.encode_basic_auth(ACCOUNT_SID, AUTH_TOKEN)}


@dataclass(frozen=True)
class Received:
    """One POST the sink received and whether its X-Twilio-Signature validated."""

    path_qs: str
    form: MultiDictProxy[str]
    signature: str | None
    valid: bool


class WebhookSink:
    """A small aiohttp server standing in for the gateway: records form POSTs and validates their signatures."""

    def __init__(self, auth_token: str, public_base: str | None = None) -> None:
        self.validator = RequestValidator(auth_token)
        self.public_base = public_base
        self.received: list[Received] = []
        self.arrived = asyncio.Event()
        self.gate: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path_qs: str) -> str:
        return self.base_url + path_qs

    async def _handle(self, request: web.Request) -> web.Response:
        self.arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        form = MultiDictProxy((await request.post()).copy())
        signature = request.headers.get("X-Twilio-Signature")
        signed_url = (self.public_base + request.path_qs) if self.public_base else str(request.url)
        valid = self.validator.validate(signed_url, form, signature or "")
        self.received.append(Received(request.path_qs, form, signature, valid))  # type: ignore[arg-type]
        return web.Response(text="<Response/>", content_type="text/xml")

    def statuses(self) -> list[str]:
        return [r.form["MessageStatus"] for r in self.received]


@pytest.fixture
async def emulator() -> AsyncIterator[TwilioEmulator]:
    async with TwilioEmulator(ACCOUNT_SID, AUTH_TOKEN) as emu:
        yield emu


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    server = WebhookSink(AUTH_TOKEN)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def public_sink() -> AsyncIterator[WebhookSink]:
    server = WebhookSink(AUTH_TOKEN, public_base=PUBLIC_BASE)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def client(emulator: TwilioEmulator) -> AsyncIterator[Client]:
    async with AsyncTwilioHttpClient() as http:
        yield emulator.point_client(Client(ACCOUNT_SID, AUTH_TOKEN, http_client=http))


# ------------------------------------------------------------------ REST


async def test_create_returns_queued_instance_and_records_request(
    emulator: TwilioEmulator, client: Client, sink: WebhookSink
) -> None:
    callback = sink.url("/twilio/status")
    message = await client.messages.create_async(
        from_=DEFAULT_WHATSAPP_SENDER,
        to=CUSTOMER,
        body="Hello",
        media_url=["https://gw.example.com/m/1.jpg", "https://gw.example.com/m/2.pdf"],
        status_callback=callback,
    )

    assert message.status == "queued"
    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert message.num_media == "2" and message.num_segments == "1"
    assert message.error_code is None and message.date_created is not None
    assert message.to == CUSTOMER and message.from_ == DEFAULT_WHATSAPP_SENDER
    [request] = emulator.create_requests
    assert request.response_status == 201
    assert request.form["To"] == CUSTOMER
    assert request.form["From"] == DEFAULT_WHATSAPP_SENDER
    assert request.form["Body"] == "Hello"
    assert request.media_urls == ["https://gw.example.com/m/1.jpg", "https://gw.example.com/m/2.pdf"]
    assert request.form["StatusCallback"] == callback
    assert request.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert request.headers["User-Agent"].startswith("twilio-python/")
    [stored] = emulator.messages
    assert stored.sid == message.sid and stored.media_urls == request.media_urls


async def test_template_create_records_content_sid_and_variables(emulator: TwilioEmulator, client: Client) -> None:
    variables = json.dumps({"1": "12/1", "2": "3pm"})
    message = await client.messages.create_async(
        from_=DEFAULT_WHATSAPP_SENDER,
        to=CUSTOMER,
        content_sid="HXb5b62575e6e4ff6129ad7c8efe1f983e",
        content_variables=variables,
    )

    assert message.status == "queued"
    [request] = emulator.create_requests
    assert request.form["ContentSid"] == "HXb5b62575e6e4ff6129ad7c8efe1f983e"
    assert json.loads(request.form["ContentVariables"]) == {"1": "12/1", "2": "3pm"}
    assert "Body" not in request.form
    assert emulator.get_message(message.sid).content_variables == variables


async def test_fetch_returns_current_state(emulator: TwilioEmulator, client: Client) -> None:
    created = await client.messages.create_async(from_=DEFAULT_WHATSAPP_SENDER, to=CUSTOMER, body="Hi")
    await emulator.settle()

    fetched = await client.messages(created.sid).fetch_async()

    assert fetched.status == "read"
    assert fetched.date_sent is not None
    assert emulator.get_message(created.sid).statuses == ["queued", "sent", "delivered", "read"]


async def test_fetch_unknown_message_is_20404(client: Client) -> None:
    with pytest.raises(TwilioRestException) as caught:
        await client.messages("SM" + "0" * 32).fetch_async()
    assert (caught.value.status, caught.value.code) == (404, 20404)


async def test_bad_credentials_raise_20003(emulator: TwilioEmulator) -> None:
    async with AsyncTwilioHttpClient() as http:
        bad = emulator.point_client(Client(ACCOUNT_SID, "wrong-token", http_client=http))
        with pytest.raises(TwilioRestException) as caught:
            await bad.messages.create_async(from_=DEFAULT_WHATSAPP_SENDER, to=CUSTOMER, body="Hi")

    assert (caught.value.status, caught.value.code) == (401, 20003)
    assert emulator.messages == []
    async with (
        aiohttp.ClientSession() as session,
        session.post(emulator.messages_url, data={"To": CUSTOMER}) as response,
    ):
        body = await response.json()
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert body == {
        "code": 20003,
        "detail": "Your AccountSid or AuthToken was incorrect.",
        "message": "Authentication Error - invalid username",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


async def test_wrong_account_in_path_is_20404(emulator: TwilioEmulator) -> None:
    other = "AC" + "f" * 32
    async with AsyncTwilioHttpClient() as http:
        misrouted = emulator.point_client(Client(ACCOUNT_SID, AUTH_TOKEN, account_sid=other, http_client=http))
        with pytest.raises(TwilioRestException) as caught:
            await misrouted.messages.create_async(from_=DEFAULT_WHATSAPP_SENDER, to=CUSTOMER, body="Hi")

    assert (caught.value.status, caught.value.code) == (404, 20404)
    assert f"/Accounts/{other}/Messages.json was not found" in caught.value.msg


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"to": CUSTOMER, "body": "Hi"}, 21603),
        ({"to": "whatsapp:+12", "from_": DEFAULT_WHATSAPP_SENDER, "body": "Hi"}, 21211),
        ({"to": CUSTOMER, "from_": DEFAULT_WHATSAPP_SENDER}, 21619),
        (
            {"to": CUSTOMER, "from_": DEFAULT_WHATSAPP_SENDER, "content_sid": "HX1", "content_variables": "{'1': 2}"},
            21656,
        ),
    ],
)
async def test_validation_errors(emulator: TwilioEmulator, client: Client, kwargs: dict[str, str], code: int) -> None:
    with pytest.raises(TwilioRestException) as caught:
        await client.messages.create_async(**kwargs)

    assert (caught.value.status, caught.value.code) == (400, code)
    assert emulator.messages == []


async def test_missing_to_is_21604(emulator: TwilioEmulator) -> None:
    async with (
        aiohttp.ClientSession(headers=AUTH_HEADER) as session,
        session.post(emulator.messages_url, data={"From": DEFAULT_WHATSAPP_SENDER}) as response,
    ):
        body = await response.json()

    assert response.status == 400
    assert body["code"] == 21604 and body["message"] == "A 'To' phone number is required."


async def test_injected_20429_fails_next_create_only(emulator: TwilioEmulator, client: Client) -> None:
    emulator.inject_rest_error(429, 20429)

    with pytest.raises(TwilioRestException) as caught:
        await client.messages.create_async(from_=DEFAULT_WHATSAPP_SENDER, to=CUSTOMER, body="Hi")
    retried = await client.messages.create_async(from_=DEFAULT_WHATSAPP_SENDER, to=CUSTOMER, body="Hi")

    assert (caught.value.status, caught.value.code) == (429, 20429)
    assert "Too Many Requests" in caught.value.msg
    assert [m.sid for m in emulator.messages] == [retried.sid]
    assert [r.response_status for r in emulator.create_requests] == [429, 201]


async def test_recipient_scoped_rest_error_persists(emulator: TwilioEmulator, client: Client) -> None:
    emulator.inject_rest_error(400, 21211, to="+15550000001")

    for _ in range(2):
        with pytest.raises(TwilioRestException) as caught:
            await client.messages.create_async(from_=DEFAULT_WHATSAPP_SENDER, to="whatsapp:+15550000001", body="x")
        assert (caught.value.code, caught.value.status) == (21211, 400)
        assert "whatsapp:+15550000001" in caught.value.msg
    ok = await client.messages.create_async(from_=DEFAULT_WHATSAPP_SENDER, to=CUSTOMER, body="x")

    assert [m.sid for m in emulator.messages] == [ok.sid]


async def test_point_client_ignores_edge_and_region(emulator: TwilioEmulator) -> None:
    async with AsyncTwilioHttpClient() as http:
        client = Client(ACCOUNT_SID, AUTH_TOKEN, edge="sydney", region="au1", http_client=http)
        message = await emulator.point_client(client).messages.create_async(
            from_=DEFAULT_WHATSAPP_SENDER, to=CUSTOMER, body="Hi"
        )

    assert message.sid == emulator.messages[0].sid


# ------------------------------------------------------------------ status callbacks


async def test_status_callbacks_arrive_in_order_and_validate(
    emulator: TwilioEmulator, client: Client, sink: WebhookSink
) -> None:
    callback = sink.url("/twilio/status?tenant=a%20b&x=1")
    message = await client.messages.create_async(
        from_=DEFAULT_WHATSAPP_SENDER, to=CUSTOMER, body="Hi", status_callback=callback
    )
    await emulator.settle()

    assert sink.statuses() == ["queued", "sent", "delivered", "read"]
    assert all(r.valid for r in sink.received)
    for received in sink.received:
        assert RequestValidator(AUTH_TOKEN).validate(callback, received.form, received.signature or "")
    sent = sink.received[1].form
    assert sent["MessageSid"] == sent["SmsSid"] == message.sid
    assert sent["SmsStatus"] == "sent" and sent["AccountSid"] == ACCOUNT_SID
    assert (sent["To"], sent["From"], sent["ChannelToAddress"]) == (CUSTOMER, DEFAULT_WHATSAPP_SENDER, "+15551234567")
    assert sent["ChannelPrefix"] == "whatsapp" and sent["ApiVersion"] == "2010-04-01"
    assert sent["ChannelInstallSid"].startswith("XE") and "EventType" not in sent
    assert [r.form.get("EventType") for r in sink.received[2:]] == ["DELIVERED", "READ"]
    assert [d.response_status for d in emulator.callbacks_for(message.sid)] == [200, 200, 200, 200]


async def test_manual_statuses_arrive_out_of_order(emulator: TwilioEmulator, client: Client, sink: WebhookSink) -> None:
    emulator.auto_status_callbacks = False
    message = await client.messages.create_async(
        from_=DEFAULT_WHATSAPP_SENDER, to=CUSTOMER, body="Hi", status_callback=sink.url("/status")
    )
    await emulator.settle()
    assert sink.received == []

    for status in ("read", "delivered", "sent"):
        delivery = await emulator.send_status(message.sid, status)
        assert delivery is not None and delivery.response_status == 200

    assert sink.statuses() == ["read", "delivered", "sent"]
    assert all(r.valid for r in sink.received)
    assert emulator.get_message(message.sid).status == "read"
    assert emulator.get_message(message.sid).statuses == ["read", "delivered", "sent"]


async def test_play_statuses_runs_default_path_on_demand(
    emulator: TwilioEmulator, client: Client, sink: WebhookSink
) -> None:
    emulator.auto_status_callbacks = False
    message = await client.messages.create_async(
        from_=DEFAULT_WHATSAPP_SENDER, to=CUSTOMER, body="Hi", status_callback=sink.url("/status")
    )

    deliveries = await emulator.play_statuses(message.sid)

    assert [d.params["MessageStatus"] for d in deliveries] == ["queued", "sent", "delivered", "read"]
    assert sink.statuses() == ["queued", "sent", "delivered", "read"]


async def test_async_63016_ends_undelivered_with_error_code(
    emulator: TwilioEmulator, client: Client, sink: WebhookSink
) -> None:
    emulator.inject_delivery_failure(63016)
    message = await client.messages.create_async(
        from_=DEFAULT_WHATSAPP_SENDER, to=CUSTOMER, body="late reply", status_callback=sink.url("/status")
    )
    assert message.status == "queued" and message.error_code is None
    await emulator.settle()

    assert sink.statuses() == ["queued", "undelivered"]
    last = sink.received[-1]
    assert last.valid
    assert (last.form["ErrorCode"], last.form["EventType"]) == ("63016", "UNDELIVERED")
    assert "outside the allowed window" in last.form["ChannelStatusMessage"]
    fetched = await client.messages(message.sid).fetch_async()
    assert (fetched.status, fetched.error_code) == ("undelivered", 63016)


async def test_recipient_scoped_async_failure(emulator: TwilioEmulator, client: Client, sink: WebhookSink) -> None:
    emulator.inject_delivery_failure(63003, status="failed", to="whatsapp:+15550000002")
    bad = await client.messages.create_async(
        from_=DEFAULT_WHATSAPP_SENDER, to="whatsapp:+15550000002", body="x", status_callback=sink.url("/s")
    )
    good = await client.messages.create_async(
        from_=DEFAULT_WHATSAPP_SENDER, to=CUSTOMER, body="x", status_callback=sink.url("/s")
    )
    await emulator.settle()

    assert [d.params["MessageStatus"] for d in emulator.callbacks_for(bad.sid)] == ["queued", "failed"]
    assert emulator.callbacks_for(bad.sid)[-1].params["ErrorCode"] == "63003"
    assert emulator.get_message(good.sid).status == "read"


async def test_close_cancels_pending_callbacks(sink: WebhookSink) -> None:
    sink.gate = asyncio.Event()
    emulator = TwilioEmulator(ACCOUNT_SID, AUTH_TOKEN)
    await emulator.start()
    async with AsyncTwilioHttpClient() as http:
        client = emulator.point_client(Client(ACCOUNT_SID, AUTH_TOKEN, http_client=http))
        await client.messages.create_async(
            from_=DEFAULT_WHATSAPP_SENDER, to=CUSTOMER, body="x", status_callback=sink.url("/s")
        )
    await sink.arrived.wait()
    assert emulator.pending_tasks == 1

    await emulator.close()
    sink.gate.set()

    assert emulator.pending_tasks == 0
    assert emulator.status_callbacks == []


# ------------------------------------------------------------------ inbound webhooks

InboundBuilder = Callable[[TwilioEmulator], dict[str, str]]

BUILDERS: dict[str, InboundBuilder] = {
    "text": lambda e: e.inbound_text(CUSTOMER, "Hello from WhatsApp"),
    "image": lambda e: e.inbound_image(CUSTOMER, caption="Invoice #42"),
    "two_images": lambda e: e.inbound_media(
        CUSTOMER, [InboundMedia("image/jpeg", b"\xff\xd8a"), InboundMedia("image/png", b"\x89PNGb")]
    ),
    "audio": lambda e: e.inbound_audio(CUSTOMER),
    "video": lambda e: e.inbound_video(CUSTOMER, caption="clip"),
    "document": lambda e: e.inbound_document(CUSTOMER, filename="contract.pdf"),
    "location": lambda e: e.inbound_location(
        CUSTOMER, 25.018766403198, -77.395950317383, address="Main St", label="Office"
    ),
    "contact": lambda e: e.inbound_contact(CUSTOMER, "Bob Stone", ["+1 555 000 1111", "+44 20 7946 0000"]),
    "button": lambda e: e.inbound_button(
        CUSTOMER, "Konfirmasi", "{verifyEmail:asd@asd.com}", replied_message_sid="MM" + "5c" * 16
    ),
    "reply": lambda e: e.inbound_reply(CUSTOMER, "yes, that one", "SM" + "ab" * 16),
}


@pytest.mark.parametrize("kind", list(BUILDERS))
async def test_signed_inbound_validates_against_public_url(
    emulator: TwilioEmulator, public_sink: WebhookSink, kind: str
) -> None:
    params = BUILDERS[kind](emulator)

    status, body = await emulator.post_inbound(
        public_sink.url("/twilio/whatsapp"), params, signed_url=PUBLIC_BASE + "/twilio/whatsapp"
    )

    assert (status, body) == (200, "<Response/>")
    [received] = public_sink.received
    assert received.valid
    assert dict(received.form) == params
    assert RequestValidator(AUTH_TOKEN).validate(
        PUBLIC_BASE + "/twilio/whatsapp", received.form, received.signature or ""
    )


async def test_tampered_unsigned_or_wrong_url_inbound_fails(emulator: TwilioEmulator, public_sink: WebhookSink) -> None:
    url, public = public_sink.url("/wa"), PUBLIC_BASE + "/wa"
    params = emulator.inbound_text(CUSTOMER, "original")
    signature = emulator.validator.compute_signature(public, params)

    await emulator.post_inbound(url, params | {"Body": "tampered"}, signature=signature)
    await emulator.post_inbound(url, params, sign=False)
    await emulator.post_inbound(url, params)  # signed over the local URL, validated over the public one
    await emulator.post_inbound(url, params, signature=signature)

    assert [r.valid for r in public_sink.received] == [False, False, False, True]
    assert public_sink.received[1].signature is None


async def test_text_builder_matches_real_capture_shape(emulator: TwilioEmulator) -> None:
    first = emulator.inbound_text("+15551234567", "Hello", profile_name="Ann Lee")
    second = emulator.inbound_text(CUSTOMER, "Hello again")
    redelivered = emulator.inbound_text(CUSTOMER, "Hello", message_sid=first["MessageSid"])

    assert set(first) == {
        "SmsMessageSid", "NumMedia", "ProfileName", "MessageType", "SmsSid", "WaId", "SmsStatus", "Body", "To",
        "NumSegments", "ReferralNumMedia", "MessageSid", "AccountSid", "From", "ApiVersion",
    }  # fmt: skip
    assert first["From"] == CUSTOMER and first["WaId"] == "15551234567"
    assert first["To"] == DEFAULT_WHATSAPP_SENDER and first["AccountSid"] == ACCOUNT_SID
    assert (first["MessageType"], first["SmsStatus"], first["NumMedia"]) == ("text", "received", "0")
    assert first["MessageSid"] == first["SmsSid"] == first["SmsMessageSid"]
    assert first["MessageSid"].startswith("SM") and len(first["MessageSid"]) == 34
    assert second["MessageSid"] != first["MessageSid"]
    assert redelivered["MessageSid"] == first["MessageSid"]


async def test_rich_builders_carry_their_fields(emulator: TwilioEmulator) -> None:
    location = BUILDERS["location"](emulator)
    button = BUILDERS["button"](emulator)
    reply = BUILDERS["reply"](emulator)
    media = BUILDERS["two_images"](emulator)

    assert (location["MessageType"], location["Body"]) == ("location", "")
    assert (location["Latitude"], location["Longitude"]) == ("25.018766403198", "-77.395950317383")
    assert (location["Address"], location["Label"]) == ("Main St", "Office")
    assert (button["ButtonText"], button["Body"], button["ButtonType"]) == ("Konfirmasi", "Konfirmasi", "REPLY")
    assert button["ButtonPayload"] == "{verifyEmail:asd@asd.com}"
    assert button["OriginalRepliedMessageSender"] == DEFAULT_WHATSAPP_SENDER
    assert json.loads(button["ChannelMetadata"])["data"]["context"]["WaId"] == "15551234567"
    assert reply["OriginalRepliedMessageSid"] == "SM" + "ab" * 16
    assert media["MessageSid"].startswith("MM") and media["NumMedia"] == "2"
    assert (media["MediaContentType0"], media["MediaContentType1"]) == ("image/jpeg", "image/png")
    assert media["MediaUrl0"].startswith(f"{emulator.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM")


# ------------------------------------------------------------------ media


async def test_media_downloads_with_content_type(emulator: TwilioEmulator) -> None:
    contact = emulator.inbound_contact(CUSTOMER, "Bob Stone", ["+1 555 000 1111", "+44 20 7946 0000"])
    image = emulator.inbound_image(CUSTOMER, b"\xff\xd8jpeg-bytes")

    async with aiohttp.ClientSession() as session:
        async with session.get(contact["MediaUrl0"]) as response:
            vcard_type, vcard = response.content_type, await response.text()
        async with session.get(image["MediaUrl0"]) as response:
            image_type, image_bytes = response.content_type, await response.read()

    assert (contact["MessageType"], contact["MediaContentType0"], contact["Body"]) == ("contacts", "text/vcard", "")
    assert vcard_type == "text/vcard"
    lines = vcard.splitlines()
    assert lines[:2] == ["BEGIN:VCARD", "VERSION:3.0"] and lines[-1] == "END:VCARD"
    assert "FN:Bob Stone" in lines
    assert [line for line in lines if line.startswith("TEL")] == [
        "TEL;type=CELL;type=VOICE;waid=15550001111:+1 555 000 1111",
        "TEL;type=CELL;type=VOICE;waid=442079460000:+44 20 7946 0000",
    ]
    assert (image_type, image_bytes) == ("image/jpeg", b"\xff\xd8jpeg-bytes")


async def test_media_auth_can_be_enforced(emulator: TwilioEmulator) -> None:
    emulator.require_media_auth = True
    url = emulator.add_media("application/pdf", b"%PDF-1.4", filename="a.pdf")

    async with aiohttp.ClientSession() as session:
        async with session.get(url) as anonymous:
            anonymous_status = anonymous.status
        async with session.get(url, headers=AUTH_HEADER) as authed:
            authed_status, disposition, data = authed.status, authed.headers["Content-Disposition"], await authed.read()
        async with session.get(url + "x", headers=AUTH_HEADER) as missing:
            missing_status = missing.status

    assert (anonymous_status, authed_status, missing_status) == (401, 200, 404)
    assert data == b"%PDF-1.4" and 'filename="a.pdf"' in disposition
