"""The WhatsApp channel against the real app and the Twilio emulator: webhooks in, Messages API out."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from bson import ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from channels.base import InboundMessage
from gateway.app import create_app
from gateway.conversations import Draft
from gateway.keys import CHANNELS, CONVERSATIONS, INBOX, MEDIA, STORE
from gateway.model import (
    Button,
    Contact,
    Content,
    IdentityRef,
    Kind,
    Location,
    Media,
    Message,
    MessageStatus,
    Template,
    Thread,
    utcnow,
)
from gateway.storage.mongo import Storage
from tests.emulators import twilio as twilio_emulator
from tests.emulators.twilio import SAMPLE_JPEG, SAMPLE_OGG, SAMPLE_PDF, InboundMedia, TwilioEmulator, new_sid
from tests.helpers import AUTH, eventually, settle
from tests.hostile import NASTY_STRINGS
from tests.hostile import text as hostile_text

ACCOUNT_SID = "AC" + "5f0e" * 8
AUTH_TOKEN = "whatsapp-test-auth-token"
SENDER = "whatsapp:+14155238886"
ACCOUNT = "+14155238886"
ANN = "+14155552671"
ANN_KEY = f"whatsapp:{ACCOUNT}:{ANN}"
INBOUND = "/channels/whatsapp/inbound"
STATUS = "/channels/whatsapp/status"
ORDER_UPDATE = "HX" + "0a" * 16
TEMPLATES = [
    {"name": "order_update", "content_sid": ORDER_UPDATE, "variables": ["1"]},
    {"name": "follow_up", "content_sid": "HX" + "0b" * 16},
]


@dataclass
class Gateway:
    """The running app, where Twilio reaches it, and the emulated Twilio behind it."""

    client: TestClient
    emulator: TwilioEmulator
    public_url: str

    @property
    def app(self) -> web.Application:
        return self.client.app

    @property
    def store(self) -> Storage:
        return self.client.app[STORE]

    async def receive(self, params: dict[str, str], **kwargs: Any) -> tuple[int, str]:
        """Deliver an inbound webhook as Twilio does, signed over the public URL."""
        return await self.emulator.post_inbound(self.public_url + INBOUND, params, **kwargs)

    async def message(self, sid: str) -> Message:
        message = await self.store.messages.by_channel_id("whatsapp", ACCOUNT, sid)
        assert message is not None, f"no message {sid} stored"
        return message

    async def contact(self, number: str = ANN) -> Contact:
        contact = await self.store.contacts.by_identity(f"whatsapp:{ACCOUNT}:{number}")
        assert contact is not None
        return contact

    async def thread(self, number: str = ANN) -> Thread:
        thread = await self.store.threads.open_for((await self.contact(number)).id)
        assert thread is not None
        return thread

    async def conversation(self, number: str = ANN) -> Thread:
        """A customer who has just written, so the 24-hour window is open."""
        status, _ = await self.receive(self.emulator.inbound_text(number, "Hello, I need help"))
        assert status == 200
        return await self.thread(number)

    async def reply(self, text: str, number: str = ANN) -> dict[str, Any]:
        """An operator reply through the REST API; returns the stored message as the API shows it."""
        thread = await self.thread(number)
        response = await self.client.post(
            f"/api/v1/threads/{thread.number}/messages", headers=AUTH, json={"text": text, "author_name": "Maria"}
        )
        assert response.status == 201
        return await response.json()

    async def message_count(self) -> int:
        return await self.store.messages.collection.count_documents({})


StartGateway = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def emulator() -> AsyncIterator[TwilioEmulator]:
    # Tests play status callbacks themselves, in the order and at the moment each test chooses.
    async with TwilioEmulator(
        ACCOUNT_SID, AUTH_TOKEN, whatsapp_number=SENDER, auto_status_callbacks=False, require_media_auth=True
    ) as emulator:
        yield emulator


@pytest.fixture
async def start_gateway(serve: Any, emulator: TwilioEmulator) -> StartGateway:
    """Start the app on a known port whose address is its public URL, so Twilio's callbacks reach it."""

    async def start(whatsapp: dict[str, Any] | None = None, **override: Any) -> Gateway:
        client = await serve(
            whatsapp={
                "account_sid": ACCOUNT_SID,
                "auth_token": AUTH_TOKEN,
                "sender": SENDER,
                "api_base": emulator.base_url,
                "templates": TEMPLATES,
            }
            | (whatsapp or {}),
            **override,
        )
        return Gateway(client, emulator, str(client.make_url("")).rstrip("/"))

    return start


@pytest.fixture
async def gateway(start_gateway: StartGateway) -> Gateway:
    return await start_gateway()


# -- inbound ---------------------------------------------------------------------------------


async def test_text_is_stored_with_the_customer_verified_number_and_name(gateway: Gateway) -> None:
    params = gateway.emulator.inbound_text(ANN, "Where is my order?", profile_name="Ann Lee")
    status, body = await gateway.receive(params)
    assert status == 200 and "<Response/>" in body
    assert gateway.emulator.inbound_deliveries[-1].response_status == 200

    message = await gateway.message(params["MessageSid"])
    assert (message.content.kind, message.content.text, message.identity) == (Kind.TEXT, "Where is my order?", ANN_KEY)
    assert message.content.media == () and message.content.reply_to is None
    contact = await gateway.contact()
    assert contact.phones == (ANN,)
    assert contact.identities[0].display_name == "Ann Lee"
    thread = await gateway.thread()
    assert thread.channel == "whatsapp" and thread.identity == ANN_KEY


async def test_webhook_is_answered_with_empty_twiml(gateway: Gateway) -> None:
    params = gateway.emulator.inbound_text(ANN, "hi")
    signature = gateway.emulator.validator.compute_signature(gateway.public_url + INBOUND, params)
    response = await gateway.client.post(INBOUND, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status == 200
    assert response.content_type == "text/xml"
    assert (await response.text()).endswith("<Response/>")


async def test_image_with_caption(gateway: Gateway) -> None:
    params = gateway.emulator.inbound_image(ANN, caption="Invoice #42")
    assert (await gateway.receive(params))[0] == 200
    message = await gateway.message(params["MessageSid"])
    assert message.content.kind is Kind.IMAGE and message.content.text == "Invoice #42"
    assert message.content.media == (
        Media(source="whatsapp", account=ACCOUNT, ref=params["MediaUrl0"], mime_type="image/jpeg"),
    )


async def test_several_files_in_one_message_are_all_kept(gateway: Gateway) -> None:
    params = gateway.emulator.inbound_media(
        ANN,
        [
            InboundMedia("image/png", b"\x89PNG\r\n\x1a\n"),
            InboundMedia("application/pdf", SAMPLE_PDF, "receipt.pdf"),
            InboundMedia("video/mp4", b"\x00\x00\x00\x18ftypmp42"),
        ],
        body="all three",
    )
    assert (await gateway.receive(params))[0] == 200
    message = await gateway.message(params["MessageSid"])
    assert message.content.kind is Kind.IMAGE and message.content.text == "all three"
    assert [(m.ref, m.mime_type) for m in message.content.media] == [
        (params["MediaUrl0"], "image/png"),
        (params["MediaUrl1"], "application/pdf"),
        (params["MediaUrl2"], "video/mp4"),
    ]
    assert all(m.url is None and m.source == "whatsapp" for m in message.content.media)


@pytest.mark.parametrize(
    ("build", "kind", "text"),
    [
        (lambda e: e.inbound_audio(ANN), Kind.VOICE, ""),
        (lambda e: e.inbound_audio(ANN, b"ID3\x04", content_type="audio/mpeg"), Kind.AUDIO, ""),
        (lambda e: e.inbound_video(ANN, caption="it rattles like this"), Kind.VIDEO, "it rattles like this"),
        (lambda e: e.inbound_document(ANN, caption="the contract"), Kind.FILE, "the contract"),
        (
            lambda e: e.inbound_media(
                ANN, [InboundMedia("image/webp", b"RIFF\x00\x00\x00\x00WEBP")], message_type="sticker"
            ),
            Kind.STICKER,
            "",
        ),
    ],
    ids=["voice-note", "audio", "video", "document", "sticker"],
)
async def test_media_kinds(
    gateway: Gateway, build: Callable[[TwilioEmulator], dict[str, str]], kind: Kind, text: str
) -> None:
    params = build(gateway.emulator)
    assert (await gateway.receive(params))[0] == 200
    message = await gateway.message(params["MessageSid"])
    assert (message.content.kind, message.content.text) == (kind, text)
    assert [m.mime_type for m in message.content.media] == [params["MediaContentType0"]]


async def test_location_with_address_and_label(gateway: Gateway) -> None:
    params = gateway.emulator.inbound_location(
        ANN, 52.5163, 13.3777, address="Pariser Platz, 10117 Berlin", label="Brandenburg Gate"
    )
    assert (await gateway.receive(params))[0] == 200
    message = await gateway.message(params["MessageSid"])
    assert message.content.kind is Kind.LOCATION
    assert message.content.location == Location(
        latitude=52.5163, longitude=13.3777, title="Brandenburg Gate", address="Pariser Platz, 10117 Berlin"
    )


async def test_a_shared_contact_card_is_stored_without_being_fetched_in_the_webhook(gateway: Gateway) -> None:
    params = gateway.emulator.inbound_contact(ANN, "Bob Stone", ["+1 (415) 555-2672", "+44 20 7946 0958"])
    assert (await gateway.receive(params))[0] == 200
    message = await gateway.message(params["MessageSid"])
    assert message.content.kind is Kind.CONTACT and message.content.shared_contact is None
    assert [m.mime_type for m in message.content.media] == ["text/vcard"]
    # Twilio waits 15 s for the webhook's answer: the card is read when it is shown, not now.
    assert not [r for r in gateway.emulator.requests if "/Media/" in r.path]
    # The sharer is still the customer: the card's numbers are not theirs.
    assert (await gateway.contact()).phones == (ANN,)


@pytest.mark.parametrize("spoil", ["gone", "garbage"])
async def test_contact_card_that_cannot_be_read_still_stores_the_message(gateway: Gateway, spoil: str) -> None:
    if spoil == "gone":
        params = gateway.emulator.inbound_contact(ANN, "Bob Stone", ["+14155552672"])
        gateway.emulator.media.clear()
    else:
        params = gateway.emulator.inbound_media(
            ANN, [InboundMedia("text/vcard", b"\x00not a vcard\xff")], message_type="contacts"
        )
    assert (await gateway.receive(params))[0] == 200
    message = await gateway.message(params["MessageSid"])
    assert message.content.kind is Kind.CONTACT and message.content.shared_contact is None
    assert [m.ref for m in message.content.media] == [params["MediaUrl0"]]


async def test_quick_reply_button_keeps_text_and_payload(gateway: Gateway) -> None:
    params = gateway.emulator.inbound_button(ANN, "Yes, reschedule", "reschedule:order-42")
    assert (await gateway.receive(params))[0] == 200
    message = await gateway.message(params["MessageSid"])
    assert (message.content.kind, message.content.text, message.payload) == (
        Kind.TEXT,
        "Yes, reschedule",
        "reschedule:order-42",
    )


async def test_reply_links_to_our_outbound_message(gateway: Gateway) -> None:
    await gateway.conversation()
    sent = await gateway.reply("Your parcel left the warehouse today.")
    sid = gateway.emulator.messages[0].sid
    params = gateway.emulator.inbound_reply(ANN, "Great, thanks!", replied_message_sid=sid)
    assert (await gateway.receive(params))[0] == 200
    reply = await gateway.message(params["MessageSid"])
    assert str(reply.content.reply_to) == sent["id"]


async def test_redelivered_webhook_stores_one_message(gateway: Gateway) -> None:
    params = gateway.emulator.inbound_image(ANN, caption="once")
    assert (await gateway.receive(params))[0] == 200
    assert (await gateway.receive(params))[0] == 200
    await settle(gateway.app)
    assert await gateway.message_count() == 1
    assert (await gateway.thread()).unread == 1


# -- webhook authentication ------------------------------------------------------------------


def _forgeries(gateway: Gateway) -> dict[str, tuple[dict[str, str], dict[str, Any]]]:
    emulator, url = gateway.emulator, gateway.public_url + INBOUND
    params = emulator.inbound_text(ANN, "transfer my account")
    tampered = params | {"Body": "transfer my account to Mallory"}
    return {
        "bad-signature": (params, {"signature": "bm90IGEgdHdpbGlvIHNpZ25hdHVyZQ=="}),
        "tampered-parameter": (tampered, {"signature": emulator.validator.compute_signature(url, params)}),
        "added-parameter": (
            params | {"OriginalRepliedMessageSid": "SM" + "1" * 32},
            {"signature": emulator.validator.compute_signature(url, params)},
        ),
        "missing-header": (params, {"sign": False}),
        "wrong-scheme": (params, {"signed_url": url.replace("http://", "https://")}),
        "other-endpoint": (params, {"signed_url": gateway.public_url + STATUS}),
        "other-token": (params, {"signature": RequestValidator("someone-elses-token").compute_signature(url, params)}),
    }


@pytest.mark.parametrize(
    "forgery",
    [
        "bad-signature",
        "tampered-parameter",
        "added-parameter",
        "missing-header",
        "wrong-scheme",
        "other-endpoint",
        "other-token",
    ],
)
async def test_unsigned_or_forged_inbound_is_refused_and_nothing_stored(gateway: Gateway, forgery: str) -> None:
    params, how = _forgeries(gateway)[forgery]
    status, _ = await gateway.receive(params, **how)
    assert status == 403
    assert await gateway.message_count() == 0
    assert await gateway.store.contacts.collection.count_documents({}) == 0


async def test_signature_is_checked_against_the_public_url_not_the_arrival_url(
    aiohttp_client: Any, make_settings: Any, emulator: TwilioEmulator
) -> None:
    # Behind a TLS proxy the request arrives on an internal address, but Twilio signed the public one.
    settings = make_settings(
        whatsapp={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "sender": SENDER, "api_base": emulator.base_url}
    )
    client = await aiohttp_client(create_app(settings))
    arrival = str(client.make_url(INBOUND))
    params = emulator.inbound_text(ANN, "hello")

    assert (await emulator.post_inbound(arrival, params))[0] == 403
    assert await client.app[STORE].messages.collection.count_documents({}) == 0
    status, _ = await emulator.post_inbound(arrival, params, signed_url="http://gateway.test" + INBOUND)
    assert status == 200
    assert await client.app[STORE].messages.collection.count_documents({}) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"From": None},
        {"From": ANN},  # an SMS address, not WhatsApp
        {"From": "whatsapp:not-a-number"},
        {"MessageSid": None},
        {"NumMedia": "1"},  # without MediaUrl0
        {"NumMedia": "many"},
        {"Latitude": "north", "Longitude": "13.4"},
        {"Latitude": "95", "Longitude": "13.4"},
        {"NumMedia": "²"},  # a digit to str.isdigit(), not to int()
        {"NumMedia": "99999999999999999999999"},
        {"Latitude": "nan", "Longitude": "1e999"},
    ],
    ids=[
        "no-from",
        "sms-from",
        "bad-from",
        "no-sid",
        "missing-media-url",
        "bad-num-media",
        "bad-latitude",
        "latitude-off-earth",
        "superscript-num-media",
        "huge-num-media",
        "nan-location",
    ],
)
async def test_malformed_but_signed_inbound_is_400_and_kept_as_a_dead_letter(
    gateway: Gateway, change: dict[str, str | None]
) -> None:
    params = gateway.emulator.inbound_text(ANN, "hello")
    for key, value in change.items():
        if value is None:
            params.pop(key)
        else:
            params[key] = value
    status, body = await gateway.receive(params)
    assert status == 400 and body
    assert await gateway.message_count() == 0
    [letter] = await gateway.store.dead_letters.latest()
    assert letter.source == f"whatsapp:{ACCOUNT}" and letter.reason.startswith("inbound webhook:")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"--x\r\nContent-Disposition: form-data; name=From\r\n\r\nwhatsapp:+1\r\n--x--"),
        ("application/x-www-form-urlencoded; charset=bogus-charset", b"From=%ED%A0%80&Body=%FF"),
        ("application/json", b"[" * 10_000),
        ("application/x-www-form-urlencoded", b"x" * 100_000),
    ],
)
async def test_a_hostile_body_is_refused_before_anything_is_read_into_it(
    gateway: Gateway, content_type: str, body: bytes
) -> None:
    headers = {"Content-Type": content_type, "X-Twilio-Signature": "Zm9yZ2Vk"}
    for path in (INBOUND, STATUS):
        response = await gateway.client.post(path, data=body, headers=headers)
        assert response.status in (403, 413)
    assert await gateway.message_count() == 0 and await gateway.store.dead_letters.count() == 0


# -- outbound --------------------------------------------------------------------------------


async def test_operator_reply_reaches_twilio_and_the_stored_message_gets_the_sid(gateway: Gateway) -> None:
    await gateway.conversation()
    sent = await gateway.reply("We will ship it tomorrow.")

    [request] = gateway.emulator.create_requests
    assert request.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert request.form["To"] == "whatsapp:" + ANN and request.form["From"] == SENDER
    assert request.form["Body"] == "We will ship it tomorrow."
    assert request.form["StatusCallback"] == gateway.public_url + STATUS
    assert "MediaUrl" not in request.form and "ContentSid" not in request.form
    [created] = gateway.emulator.messages
    stored = await gateway.message(created.sid)
    assert str(stored.id) == sent["id"] and sent["status"] == "sent"
    assert stored.status is MessageStatus.SENT and stored.attempts == 1


async def test_replies_in_a_row_go_out_without_waiting_for_status_callbacks(gateway: Gateway) -> None:
    # Twilio's callbacks may be late or lost; a message Twilio accepted must not hold back the next one.
    await gateway.conversation()
    for text in ("First,", "second,", "third."):
        assert (await gateway.reply(text))["status"] == "sent"
    assert [m.body for m in gateway.emulator.messages] == ["First,", "second,", "third."]


async def test_status_callbacks_move_the_message_to_read(gateway: Gateway) -> None:
    await gateway.conversation()
    await gateway.reply("Done!")
    sid = gateway.emulator.messages[0].sid
    seen = []
    for status in ("queued", "sent", "delivered", "read"):
        delivery = await gateway.emulator.send_status(sid, status)
        assert delivery is not None and delivery.response_status == 200
        seen.append((await gateway.message(sid)).status)
    assert seen == [MessageStatus.SENT, MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ]


async def test_callbacks_out_of_order_never_move_the_status_back(gateway: Gateway) -> None:
    await gateway.conversation()
    await gateway.reply("Done!")
    sid = gateway.emulator.messages[0].sid
    deliveries = [await gateway.emulator.send_status(sid, s) for s in ("read", "delivered", "sent")]
    assert [d.response_status for d in deliveries if d] == [200, 200, 200]
    assert (await gateway.message(sid)).status is MessageStatus.READ


async def test_callback_for_an_unknown_sid_is_acknowledged_and_changes_nothing(gateway: Gateway) -> None:
    await gateway.conversation()
    await gateway.reply("Done!")
    sid = gateway.emulator.messages[0].sid
    before = await gateway.store.messages.collection.find().sort("_id").to_list()
    params = {
        "MessageSid": new_sid("SM"),
        "SmsStatus": "failed",
        "MessageStatus": "failed",
        "ErrorCode": "63016",
        "To": "whatsapp:" + ANN,
        "From": SENDER,
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
    }
    status, _ = await gateway.emulator.post_inbound(gateway.public_url + STATUS, params)
    assert status == 200
    assert await gateway.store.messages.collection.find().sort("_id").to_list() == before
    assert (await gateway.message(sid)).status is MessageStatus.SENT


async def test_a_status_that_overtakes_the_send_is_applied_once_the_sid_is_stored(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    await gateway.conversation()
    sid = "SM" + "7" * 32
    monkeypatch.setattr(twilio_emulator, "new_sid", lambda prefix: sid if prefix == "SM" else new_sid(prefix))
    # Twilio may call back before create_async has handed the sid to us.
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": "delivered",
        "SmsStatus": "delivered",
        "To": "whatsapp:" + ANN,
        "From": SENDER,
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
    }
    status, _ = await gateway.emulator.post_inbound(gateway.public_url + STATUS, params)
    assert status == 200

    await gateway.reply("Done!")
    assert (await gateway.message(sid)).status is MessageStatus.DELIVERED
    assert await gateway.store.messages.reports.count_documents({}) == 0


@pytest.mark.parametrize("paused_before", ["by_channel_id", "park_report"])
async def test_a_status_racing_the_send_is_applied_whichever_finishes_first(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, paused_before: str
) -> None:
    await gateway.conversation()
    sid = "SM" + "8" * 32
    monkeypatch.setattr(twilio_emulator, "new_sid", lambda prefix: sid if prefix == "SM" else new_sid(prefix))
    # The callback finds no message with the sid, then waits at `paused_before` while the send stores the sid
    # and takes the parked reports (none yet); only then does it go on. The real method runs after the wait.
    messages, release = gateway.store.messages, asyncio.Event()
    original = getattr(messages, paused_before)
    reached = asyncio.Event()

    async def paused(*args: Any, **kwargs: Any) -> Any:
        reached.set()
        await release.wait()
        return await original(*args, **kwargs)

    monkeypatch.setattr(messages, paused_before, paused)
    params = {"MessageSid": sid, "MessageStatus": "delivered", "To": "whatsapp:" + ANN, "From": SENDER,
              "AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01"}  # fmt: skip
    callback = asyncio.create_task(gateway.emulator.post_inbound(gateway.public_url + STATUS, params))
    await asyncio.wait_for(reached.wait(), 10)
    monkeypatch.setattr(messages, paused_before, original)
    await gateway.reply("Done!")
    release.set()
    status, _ = await callback
    assert status == 200
    assert (await gateway.message(sid)).status is MessageStatus.DELIVERED
    assert await gateway.store.messages.reports.count_documents({}) == 0


@pytest.mark.parametrize(
    "how", [{"sign": False}, {"signature": "Zm9yZ2Vk"}, {"signed_url": "http://gateway.test" + STATUS}]
)
async def test_forged_status_callback_is_refused(gateway: Gateway, how: dict[str, Any]) -> None:
    await gateway.conversation()
    await gateway.reply("Done!")
    message = gateway.emulator.messages[0]
    params = gateway.emulator.status_params(message, "undelivered", 63016)
    status, _ = await gateway.emulator.post_inbound(gateway.public_url + STATUS, params, **how)
    assert status == 403
    stored = await gateway.message(message.sid)
    assert stored.status is MessageStatus.SENT and stored.error is None


async def test_malformed_status_callback_is_400(gateway: Gateway) -> None:
    status, _ = await gateway.emulator.post_inbound(gateway.public_url + STATUS, {"MessageStatus": "delivered"})
    assert status == 400


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (63016, "outside WhatsApp's 24-hour window: send an approved template: order_update, follow_up"),
        (63003, "this number is not on WhatsApp"),
        (63018, "WhatsApp rate limit reached"),
        (30008, "Twilio error 30008: Message delivery failed"),
    ],
)
async def test_delivery_failure_reported_later_fails_the_message_with_a_reason(
    gateway: Gateway, code: int, reason: str
) -> None:
    await gateway.conversation()
    gateway.emulator.inject_delivery_failure(code)
    sent = await gateway.reply("Here is your update.")
    assert sent["status"] == "sent"  # Twilio accepted it; WhatsApp refuses it afterwards
    sid = gateway.emulator.messages[0].sid
    await gateway.emulator.play_statuses(sid)  # queued, then undelivered with the code
    stored = await gateway.message(sid)
    assert (stored.status, stored.error_code, stored.error) == (MessageStatus.FAILED, str(code), reason)


async def test_an_error_code_that_is_not_a_number_is_reported_as_it_came(gateway: Gateway) -> None:
    await gateway.conversation()
    await gateway.reply("Here is your update.")
    message = gateway.emulator.messages[0]
    params = gateway.emulator.status_params(message, "undelivered", error_code=30008) | {"ErrorCode": "²"}
    status, _ = await gateway.emulator.post_inbound(gateway.public_url + STATUS, params)
    assert status == 200
    stored = await gateway.message(message.sid)
    assert (stored.status, stored.error) == (MessageStatus.FAILED, "Twilio error ²: Message delivery failed")


async def test_a_media_type_that_is_not_one_is_dropped(gateway: Gateway) -> None:
    params = gateway.emulator.inbound_image(ANN) | {"MediaContentType0": "image/jpeg\r\nX-Injected: 1"}
    await gateway.receive(params)
    stored = await gateway.message(params["MessageSid"])
    assert stored.content.media[0].mime_type is None


async def test_media_of_a_customer_is_sent_as_a_signed_gateway_link_that_serves_the_bytes(gateway: Gateway) -> None:
    params = gateway.emulator.inbound_image(ANN, caption="this one?")
    await gateway.receive(params)
    photo = (await gateway.message(params["MessageSid"])).content.media[0]
    thread = await gateway.thread()

    sent = await gateway.app[CONVERSATIONS].send(thread, Draft(Content(Kind.IMAGE, "Is this the one?", media=(photo,))))
    assert sent.status is MessageStatus.SENT
    [request] = gateway.emulator.create_requests
    [link] = request.media_urls
    assert link.startswith(gateway.public_url + "/media/")
    assert request.form["Body"] == "Is this the one?"

    # Twilio fetches the link; the gateway fetches the file from Twilio with the account's credentials.
    response = await gateway.client.get(link.removeprefix(gateway.public_url))
    assert response.status == 200 and response.content_type == "image/jpeg"
    assert await response.read() == SAMPLE_JPEG


async def test_media_with_a_public_url_is_passed_to_twilio_as_is(gateway: Gateway) -> None:
    thread = await gateway.conversation()
    brochure = Media(
        source="api", ref="brochure", mime_type="application/pdf", url="https://cdn.shop.example/brochure.pdf"
    )
    await gateway.app[CONVERSATIONS].send(thread, Draft(Content(Kind.FILE, media=(brochure,))))
    [request] = gateway.emulator.create_requests
    assert request.media_urls == ["https://cdn.shop.example/brochure.pdf"] and "Body" not in request.form


async def test_several_files_in_one_reply_are_refused_rather_than_silently_dropped(gateway: Gateway) -> None:
    thread = await gateway.conversation()
    files = tuple(Media(source="api", ref=f"f{n}", url=f"https://cdn.shop.example/{n}.jpg") for n in range(2))
    failed = await gateway.app[CONVERSATIONS].send(thread, Draft(Content(Kind.IMAGE, media=files)))
    assert (failed.status, failed.error_code) == (MessageStatus.FAILED, "unsupported")
    assert "one file per message" in (failed.error or "")
    assert gateway.emulator.create_requests == []


async def test_location_and_buttons_go_out_as_text(gateway: Gateway) -> None:
    thread = await gateway.conversation()
    conversations = gateway.app[CONVERSATIONS]
    await conversations.send(
        thread,
        Draft(
            Content(
                Kind.LOCATION, "Our shop:", location=Location(52.5163, 13.3777, title="Shop", address="Pariser Platz")
            )
        ),
    )
    await conversations.send(
        thread, Draft(Content(text="Shall we call you?", buttons=(Button("Yes", "call:yes"), Button("No", "call:no"))))
    )
    bodies = [r.form["Body"] for r in gateway.emulator.create_requests]
    assert bodies == [
        "Our shop:\n📍 Shop, Pariser Platz https://maps.google.com/?q=52.5163,13.3777",
        "Shall we call you?\n1. Yes\n2. No",
    ]


async def test_file_over_the_size_limit_is_not_served(gateway: Gateway) -> None:
    params = gateway.emulator.inbound_video(ANN, b"\x00" * (16 * 1024 * 1024 + 1))
    await gateway.receive(params)
    video = await gateway.message(params["MessageSid"])
    link = gateway.app[MEDIA].url(video.id, 0)
    response = await gateway.client.get(link.removeprefix(gateway.public_url))
    assert response.status == 502
    assert "larger than 16 MB" in await response.text()


async def test_a_link_to_a_file_the_message_does_not_have_is_404(gateway: Gateway) -> None:
    params = gateway.emulator.inbound_image(ANN)
    await gateway.receive(params)
    image = await gateway.message(params["MessageSid"])
    for index in (1, -1):  # -1 would be the last file, if the link were read as Python reads it
        response = await gateway.client.get(gateway.app[MEDIA].url(image.id, index).removeprefix(gateway.public_url))
        assert response.status == 404


async def test_file_gone_from_twilio_is_a_clear_502(gateway: Gateway) -> None:
    params = gateway.emulator.inbound_image(ANN)
    await gateway.receive(params)
    gateway.emulator.media.clear()
    image = await gateway.message(params["MessageSid"])
    response = await gateway.client.get(gateway.app[MEDIA].url(image.id, 0).removeprefix(gateway.public_url))
    assert response.status == 502
    assert await response.text() == "Twilio answered HTTP 404 for the file"


async def test_voice_note_is_served_to_whoever_holds_the_link(gateway: Gateway) -> None:
    params = gateway.emulator.inbound_audio(ANN)
    await gateway.receive(params)
    voice = await gateway.message(params["MessageSid"])
    response = await gateway.client.get(gateway.app[MEDIA].url(voice.id, 0).removeprefix(gateway.public_url))
    assert response.status == 200 and await response.read() == SAMPLE_OGG


# -- the 24-hour window ----------------------------------------------------------------------


async def _last_wrote(gateway: Gateway, ago: timedelta | None) -> None:
    update = (
        {"$unset": {"identities.$.last_inbound_at": ""}}
        if ago is None
        else {"$set": {"identities.$.last_inbound_at": utcnow() - ago}}
    )
    result = await gateway.store.contacts.collection.update_one({"identities.key": ANN_KEY}, update)
    assert result.modified_count == 1


@pytest.mark.parametrize(
    ("ago", "when"),
    [
        (timedelta(hours=25), "last wrote 25 hours ago"),
        (timedelta(days=9), "last wrote 9 days ago"),
        (None, "has not written on WhatsApp yet"),
    ],
)
async def test_free_form_reply_outside_the_window_is_refused_before_reaching_twilio(
    gateway: Gateway, ago: timedelta | None, when: str
) -> None:
    await gateway.conversation()
    await _last_wrote(gateway, ago)
    requests_before = len(gateway.emulator.requests)

    refused = await gateway.reply("Are you still there?")
    assert (refused["status"], refused["error_code"]) == ("failed", "window_closed")
    assert refused["error"] == (
        f"outside WhatsApp's 24-hour window (the customer {when}): send an approved template: order_update, follow_up"
    )
    assert len(gateway.emulator.requests) == requests_before == 0

    thread = await gateway.thread()
    template = Template(content_sid=ORDER_UPDATE, variables={"1": "#42"}, name="order_update")
    sent = await gateway.app[CONVERSATIONS].send(thread, Draft(Content(template=template)))
    assert sent.status is MessageStatus.SENT
    [request] = gateway.emulator.create_requests
    assert request.form["ContentSid"] == ORDER_UPDATE
    assert json.loads(request.form["ContentVariables"]) == {"1": "#42"}
    assert "Body" not in request.form
    assert (await gateway.message(gateway.emulator.messages[0].sid)).id == sent.id


async def test_window_reason_says_when_no_template_is_configured(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(whatsapp={"templates": []})
    await gateway.conversation()
    await _last_wrote(gateway, timedelta(days=2))
    refused = await gateway.reply("Hello again")
    assert refused["error"] == (
        "outside WhatsApp's 24-hour window (the customer last wrote 2 days ago): "
        "only an approved template may be sent, and none is configured "
        "([[whatsapp.templates]])"
    )


async def test_reply_just_inside_the_window_goes_out(gateway: Gateway) -> None:
    await gateway.conversation()
    await _last_wrote(gateway, timedelta(hours=23, minutes=50))
    assert (await gateway.reply("Still here!"))["status"] == "sent"
    assert len(gateway.emulator.messages) == 1


# -- failures of the Messages API ------------------------------------------------------------


async def test_rate_limited_send_is_retried_and_sent_exactly_once(gateway: Gateway) -> None:
    await gateway.conversation()
    gateway.emulator.inject_rest_error(429, 20429)
    first = await gateway.reply("Thanks for waiting.")
    assert (first["status"], first["error_code"]) == ("queued", "rate_limited")

    async def sent() -> Message | None:
        message = await gateway.store.messages.get(ObjectId(first["id"]))
        return message if message and message.status is MessageStatus.SENT else None

    message = await eventually(sent, "the retried message is sent")
    assert [r.response_status for r in gateway.emulator.create_requests] == [429, 201]
    [created] = gateway.emulator.messages
    assert created.body == "Thanks for waiting." and message.channel_message_id == created.sid
    assert message.attempts == 2 and message.error is None


async def test_a_queued_retry_survives_a_gateway_restart(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(delivery={"retry_base_seconds": 3600})  # no retry before the restart
    await gateway.conversation()
    gateway.emulator.inject_rest_error(500, 20500)
    queued = await gateway.reply("Are you still there?")
    assert (queued["status"], queued["error_code"]) == ("queued", "unavailable")
    await gateway.client.close()  # the gateway stops with the message waiting for its retry

    again = await start_gateway(delivery={"retry_base_seconds": 3600, "poll_seconds": 0.01})
    message_id = ObjectId(queued["id"])
    # As if the hour of backoff had passed while the gateway was down.
    await again.store.messages.collection.update_one({"_id": message_id}, {"$set": {"next_attempt_at": utcnow()}})

    async def sent() -> Message | None:
        message = await again.store.messages.get(message_id)
        return message if message and message.status is MessageStatus.SENT else None

    message = await eventually(sent, "the new gateway sends the queued message")
    assert message.attempts == 2
    assert [r.response_status for r in again.emulator.create_requests] == [500, 201]
    assert again.emulator.messages[0].body == "Are you still there?"


async def test_twilio_down_ends_failed_after_max_attempts_with_the_reason(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(delivery={"max_attempts": 3, "retry_base_seconds": 0.01, "poll_seconds": 0.01})
    await gateway.conversation()
    gateway.emulator.inject_rest_error(500, 20500, to="whatsapp:" + ANN)
    queued = await gateway.reply("Can you hear me?")

    async def failed() -> Message | None:
        message = await gateway.store.messages.get(ObjectId(queued["id"]))
        return message if message and message.status is MessageStatus.FAILED else None

    message = await eventually(failed, "the message gives up")
    assert message.attempts == 3 and message.error_code == "unavailable"
    assert message.error == (
        "Twilio is unavailable (HTTP 500): An internal server error has occurred (gave up after 3 attempts)"
    )
    assert [r.response_status for r in gateway.emulator.create_requests] == [500, 500, 500]
    assert gateway.emulator.messages == []


async def test_twilio_unreachable_is_retried_then_reported(
    start_gateway: StartGateway, unused_tcp_port_factory: Callable[[], int]
) -> None:
    nowhere = f"http://127.0.0.1:{unused_tcp_port_factory()}"
    gateway = await start_gateway(
        whatsapp={"api_base": nowhere}, delivery={"max_attempts": 2, "retry_base_seconds": 0.01, "poll_seconds": 0.01}
    )
    await gateway.conversation()
    first = await gateway.reply("Hello?")
    assert (first["status"], first["error_code"]) == ("queued", "unavailable")
    assert first["error"].startswith("could not reach Twilio: ")

    async def failed() -> Message | None:
        message = await gateway.store.messages.get(ObjectId(first["id"]))
        return message if message and message.status is MessageStatus.FAILED else None

    message = await eventually(failed, "the message gives up")
    assert message.attempts == 2 and (message.error or "").endswith("(gave up after 2 attempts)")


async def test_twilio_edge_and_region_in_the_environment_do_not_redirect_requests(
    start_gateway: StartGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    gateway = await start_gateway()
    await gateway.conversation()
    assert (await gateway.reply("Hello from the right host"))["status"] == "sent"
    assert [m.body for m in gateway.emulator.messages] == ["Hello from the right host"]


@pytest.mark.parametrize(
    ("http_status", "code", "error_code", "reason", "unreachable"),
    [
        (
            400,
            21211,
            "bad_request",
            f"Twilio refused the message: The 'To' number whatsapp:{ANN} is not a valid phone number. (error 21211)",
            True,
        ),
        (
            400,
            21656,
            "bad_request",
            "Twilio refused the message: The ContentVariables Parameter is invalid. (error 21656)",
            False,
        ),
        (
            401,
            20003,
            "unavailable",
            "Twilio rejected the account credentials: check whatsapp.account_sid and whatsapp.auth_token",
            False,
        ),
        (
            400,
            63016,
            "window_closed",
            "outside WhatsApp's 24-hour window: send an approved template: order_update, follow_up",
            False,
        ),
    ],
)
async def test_refused_send_fails_at_once_with_twilios_reason(
    gateway: Gateway, http_status: int, code: int, error_code: str, reason: str, unreachable: bool
) -> None:
    await gateway.conversation()
    gateway.emulator.inject_rest_error(http_status, code)
    failed = await gateway.reply("Hello")
    assert (failed["status"], failed["error_code"], failed["error"]) == ("failed", error_code, reason)
    assert len(gateway.emulator.create_requests) == 1
    identity = (await gateway.contact()).identity(ANN_KEY)
    assert identity is not None and identity.reachable is not unreachable


async def test_wrong_credentials_are_reported_by_twilio_itself(
    start_gateway: StartGateway, emulator: TwilioEmulator
) -> None:
    gateway = await start_gateway(whatsapp={"auth_token": "not-the-real-auth-token"})
    # Twilio signs with the real token, so we would refuse its webhooks too: store the customer directly.
    await gateway.app[INBOX].on_inbound(
        InboundMessage(
            sender=IdentityRef("whatsapp", ACCOUNT, ANN), message_id="SM-direct", content=Content(Kind.TEXT, "hi")
        )
    )
    failed = await gateway.reply("Hello")
    assert failed["status"] == "failed" and failed["error"].startswith("Twilio rejected the account credentials")
    assert [r.response_status for r in emulator.create_requests] == [401]


# -- wiring ----------------------------------------------------------------------------------


async def test_channel_is_ready_once_started(gateway: Gateway) -> None:
    body = await (await gateway.client.get("/readyz")).json()
    assert body["channels"]["whatsapp"] is True


async def test_without_a_whatsapp_section_there_is_no_channel_and_no_webhook(
    aiohttp_client: Any, make_settings: Any
) -> None:
    client = await aiohttp_client(create_app(make_settings()))
    assert "whatsapp" not in client.app[CHANNELS]
    assert (await client.post(INBOUND, data={"Body": "hi"})).status == 404


FIELDS = ["MessageSid", "From", "To", "Body", "NumMedia", "MediaUrl0", "MediaContentType0", "Latitude", "Longitude",
          "ProfileName", "WaId", "ButtonText", "ButtonPayload", "OriginalRepliedMessageSid", "MessageStatus",
          "ErrorCode", "MessageType"]  # fmt: skip
signable = hostile_text.filter(lambda v: not any("\ud800" <= c <= "\udfff" for c in v))


@settings(max_examples=80)
@given(data=st.data())
async def test_no_signed_webhook_however_hostile_gets_a_5xx_or_a_traceback(
    gateway: Gateway, data: st.DataObject, caplog: pytest.LogCaptureFixture
) -> None:
    params = gateway.emulator.inbound_text(ANN, "hello")
    for field in data.draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=4, unique=True), label="fields"):
        value = data.draw(st.none() | signable, label=field)
        if value is None:
            params.pop(field, None)
        else:
            params[field] = value
    path = data.draw(st.sampled_from([INBOUND, STATUS]), label="path")
    before = await gateway.message_count()
    status, _ = await gateway.emulator.post_inbound(gateway.public_url + path, params)
    assert status in (200, 400)
    if status == 400:
        assert await gateway.message_count() == before  # refused: nothing stored but the dead letter
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_every_field_with_every_nasty_value_is_answered_without_a_5xx(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    for field in FIELDS:
        for value in [v for v in NASTY_STRINGS if not any("\ud800" <= c <= "\udfff" for c in v)]:
            params = gateway.emulator.inbound_text(ANN, "hello") | {field: value}
            for path in (INBOUND, STATUS):
                status, _ = await gateway.emulator.post_inbound(gateway.public_url + path, params)
                assert status in (200, 400), (field, value, path, status)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
