"""The Telegram channel against the real app and the Telegram Bot API emulator: webhooks in, Bot API out."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiogram.types import Update
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from bson import ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st
from pymongo import AsyncMongoClient

from channels.base import HostUnavailable, OutboundMessage, SendError
from channels.telegram.polling import handle_batch
from gateway.app import create_app
from gateway.config import ConfigError
from gateway.conversations import Draft
from gateway.keys import CHANNELS, CONVERSATIONS, INBOX, STORE
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
    SharedContact,
    Thread,
)
from gateway.storage.mongo import Storage
from tests.emulators.telegram import SECRET_HEADER, TelegramEmulator
from tests.helpers import AUTH, eventually
from tests.hostile import json_values, mutated, text

TOKEN = "123456789:TEST_token-xyz"
SALES_TOKEN = "555000111:SALES_token-abc"
SECRET = "support-webhook-secret"
SALES_SECRET = "sales-webhook-secret"
SUPPORT = {"name": "support", "token": TOKEN, "webhook_secret": SECRET}
SALES = {"name": "sales", "token": SALES_TOKEN, "webhook_secret": SALES_SECRET}
ANN = 42424242
BOB = 51515151
GROUP = -1001854699958
NEWS = -1009876543210
WEBHOOK = "/channels/telegram/support"
MB = 1024 * 1024


@dataclass
class Gateway:
    """The running app, where Telegram reaches it, and the emulated Bot API behind it."""

    client: TestClient
    tg: TelegramEmulator
    public_url: str

    @property
    def app(self) -> web.Application:
        return self.client.app

    @property
    def store(self) -> Storage:
        return self.client.app[STORE]

    async def deliver(self, update: dict[str, Any], token: str = TOKEN, **kwargs: Any) -> int:
        return await self.tg.deliver(token, update, **kwargs)

    async def receive(self, update: dict[str, Any], token: str = TOKEN) -> Message:
        """Deliver an update through the webhook and return the message it stored."""
        assert await self.deliver(update, token) == 200
        payload = next(v for k, v in update.items() if k != "update_id")
        ref = f"{payload['chat']['id']}:{payload['message_id']}"
        if "edit_date" in payload:
            ref += f":edit:{payload['edit_date']}"
        return await self.message(ref, "sales" if token == SALES_TOKEN else "support")

    async def message(self, ref: str, account: str = "support") -> Message:
        message = await self.store.messages.by_channel_id("telegram", account, ref)
        assert message is not None, f"no message {ref} stored"
        return message

    async def contact(self, user: int = ANN, account: str = "support") -> Contact:
        contact = await self.store.contacts.by_identity(f"telegram:{account}:{user}")
        assert contact is not None
        return contact

    async def thread(self, user: int = ANN, account: str = "support") -> Thread:
        thread = await self.store.threads.open_for((await self.contact(user, account)).id)
        assert thread is not None
        return thread

    async def conversation(self, user: int = ANN, token: str = TOKEN) -> Thread:
        """A customer who has written once, so a thread exists to answer in."""
        await self.receive(self.tg.text_update(token, user, "Hello, I need help"), token)
        return await self.thread(user, "sales" if token == SALES_TOKEN else "support")

    async def reply(self, text: str, user: int = ANN, account: str = "support") -> dict[str, Any]:
        """An operator reply through the REST API; returns the stored message as the API shows it."""
        thread = await self.thread(user, account)
        response = await self.client.post(
            f"/api/v1/threads/{thread.number}/messages", headers=AUTH, json={"text": text, "author_name": "Maria"}
        )
        assert response.status == 201, await response.text()
        return await response.json()

    async def send(self, thread: Thread, draft: Draft) -> Message:
        return await self.app[CONVERSATIONS].send(thread, draft)

    async def count(self) -> int:
        return await self.store.messages.collection.count_documents({})

    async def post(self, body: Any, *, path: str = WEBHOOK, secret: str | None = SECRET) -> int:
        """POST straight to the webhook (what a forger or a broken proxy would send)."""
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[SECRET_HEADER] = secret
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        response = await self.client.post(path, data=data, headers=headers)
        return response.status


StartGateway = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def tg() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator() as emulator:
        emulator.add_bot(TOKEN, "gw_support_bot")
        emulator.add_bot(SALES_TOKEN, "gw_sales_bot")
        emulator.user(ANN, "Ann", "Lee", username="annlee")
        emulator.user(BOB, "Bob", "Smith", language_code="de")
        emulator.supergroup(GROUP, "Customers", is_forum=False, members=[ANN, BOB])
        emulator.channel(NEWS, "Shop News", username="shopnews")
        yield emulator


@pytest.fixture
async def start_gateway(serve: Any, tg: TelegramEmulator) -> StartGateway:
    """Start the app on a known port whose address is its public URL, so the emulator's webhooks reach it."""

    async def start(bots: list[dict[str, str]] | None = None, **telegram: Any) -> Gateway:
        client = await serve(
            telegram={"api_base": tg.base_url, "mode": "webhook", "bots": bots or [SUPPORT]} | telegram
        )
        return Gateway(client, tg, str(client.make_url("")).rstrip("/"))

    return start


@pytest.fixture
async def gateway(start_gateway: StartGateway) -> Gateway:
    return await start_gateway()


@pytest.fixture
async def two_bots(start_gateway: StartGateway) -> Gateway:
    return await start_gateway([SUPPORT, SALES])


# -- start-up ----------------------------------------------------------------------------------


async def test_start_checks_each_token_once_and_registers_the_webhook_with_its_secret(two_bots: Gateway) -> None:
    tg = two_bots.tg
    for token, name, secret in ((TOKEN, "support", SECRET), (SALES_TOKEN, "sales", SALES_SECRET)):
        webhook = tg.webhook(token)
        assert webhook is not None
        assert webhook.url == f"{two_bots.public_url}/channels/telegram/{name}"
        assert webhook.secret_token == secret
        assert set(webhook.allowed_updates or ()) >= {"message", "edited_message", "callback_query"}
        assert len(tg.calls("getMe", token=token)) == 1
    ready = await two_bots.client.get("/readyz")
    assert (await ready.json())["channels"]["telegram"] is True


async def test_wrong_token_stops_start_up_naming_the_bot(
    make_settings: Any, tg: TelegramEmulator, unused_tcp_port_factory: Callable[[], int]
) -> None:
    wrong = {"name": "sales", "token": "999999:REVOKED_token", "webhook_secret": SALES_SECRET}
    port = unused_tcp_port_factory()
    settings = make_settings(
        server={"public_url": f"http://127.0.0.1:{port}"}, telegram={"api_base": tg.base_url, "bots": [SUPPORT, wrong]}
    )
    server = TestServer(create_app(settings), port=port)
    try:
        with pytest.raises(ConfigError) as caught:
            await server.start_server()
    finally:
        await server.close()
    message = str(caught.value)
    assert "'sales'" in message and "telegram.bots[1].token" in message
    assert "REVOKED" not in message
    assert tg.webhook(TOKEN) is None  # nothing registered for a gateway that did not start


# -- inbound: every kind -----------------------------------------------------------------------


async def test_text_is_stored_with_entities_as_plain_text_and_the_profile(gateway: Gateway) -> None:
    update = gateway.tg.text_update(TOKEN, ANN, "/start see https://shop.example/order/17 @annlee")
    message = await gateway.receive(update)

    assert (message.content.kind, message.content.text) == (
        Kind.TEXT,
        "/start see https://shop.example/order/17 @annlee",
    )
    assert message.channel_message_id == f"{ANN}:{update['message']['message_id']}"
    assert message.identity == f"telegram:support:{ANN}" and message.account == "support"
    contact = await gateway.contact()
    identity = contact.identities[0]
    assert (identity.display_name, identity.username) == ("Ann Lee", "annlee")
    assert contact.language == "en"
    thread = await gateway.thread()
    assert thread.channel == "telegram" and thread.status.value == "queued"


async def test_photo_keeps_the_largest_size_and_the_caption(gateway: Gateway) -> None:
    update = gateway.tg.photo_update(TOKEN, ANN, caption="Invoice #42")
    message = await gateway.receive(update)

    largest = gateway.tg.largest_photo(update)
    assert len(update["message"]["photo"]) > 1
    assert (message.content.kind, message.content.text) == (Kind.IMAGE, "Invoice #42")
    assert message.content.media == (
        Media(
            source="telegram", account="support", ref=largest.file_id, mime_type="image/jpeg", size=largest.file_size
        ),
    )


@pytest.mark.parametrize(
    ("build", "kind", "field"),
    [
        (
            lambda tg: tg.document_update(TOKEN, ANN, b"%PDF-1.4 receipt", file_name="receipt.pdf"),
            Kind.FILE,
            "document",
        ),
        (lambda tg: tg.voice_update(TOKEN, ANN, duration=7), Kind.VOICE, "voice"),
        (lambda tg: tg.audio_update(TOKEN, ANN, file_name="song.mp3"), Kind.AUDIO, "audio"),
        (lambda tg: tg.video_update(TOKEN, ANN, caption="unboxing"), Kind.VIDEO, "video"),
        (lambda tg: tg.video_note_update(TOKEN, ANN), Kind.VIDEO, "video_note"),
    ],
)
async def test_files_keep_the_telegram_file_reference(
    gateway: Gateway, build: Callable[[TelegramEmulator], Any], kind: Kind, field: str
) -> None:
    update = build(gateway.tg)
    message = await gateway.receive(update)

    sent = update["message"][field]
    assert message.content.kind is kind
    assert message.content.text == update["message"].get("caption", "")
    [media] = message.content.media
    assert (media.source, media.account, media.ref, media.size) == (
        "telegram",
        "support",
        sent["file_id"],
        sent["file_size"],
    )
    assert media.mime_type == sent.get("mime_type", "video/mp4")
    assert media.name == sent.get("file_name")
    assert media.duration == sent.get("duration")


async def test_sticker_is_a_sticker_with_its_emoji(gateway: Gateway) -> None:
    update = gateway.tg.sticker_update(TOKEN, ANN, "🔥")
    message = await gateway.receive(update)
    assert (message.content.kind, message.content.text) == (Kind.STICKER, "🔥")
    assert message.content.media[0].ref == update["message"]["sticker"]["file_id"]


async def test_location_and_venue(gateway: Gateway) -> None:
    location = await gateway.receive(gateway.tg.location_update(TOKEN, ANN, 52.520008, 13.404954))
    venue = await gateway.receive(
        gateway.tg.venue_update(TOKEN, ANN, 48.8584, 2.2945, "Eiffel Tower", "Champ de Mars, Paris")
    )
    assert location.content.kind is Kind.LOCATION and location.content.location == Location(52.520008, 13.404954)
    assert venue.content.kind is Kind.LOCATION
    assert venue.content.location == Location(48.8584, 2.2945, title="Eiffel Tower", address="Champ de Mars, Paris")


@pytest.mark.parametrize("sent", ["14155552671", "+14155552671"])
async def test_own_contact_share_gives_the_card_a_phone_in_e164(gateway: Gateway, sent: str) -> None:
    message = await gateway.receive(gateway.tg.contact_update(TOKEN, ANN, sent))

    assert message.content.kind is Kind.CONTACT
    assert message.content.shared_contact == SharedContact(name="Ann Lee", phones=("+14155552671",), user_id=str(ANN))
    assert (await gateway.contact()).phones == ("+14155552671",)


async def test_someone_elses_contact_is_kept_as_a_card_only(gateway: Gateway) -> None:
    update = gateway.tg.contact_update(
        TOKEN, ANN, "442071838750", first_name="Bob", last_name="Smith", contact_user_id=BOB
    )
    message = await gateway.receive(update)

    assert message.content.shared_contact == SharedContact(
        name="Bob Smith", phones=("+442071838750",), user_id=str(BOB)
    )
    assert (await gateway.contact()).phones == ()


async def test_edit_changes_the_stored_text_and_keeps_the_old_one(gateway: Gateway) -> None:
    original = await gateway.receive(gateway.tg.text_update(TOKEN, ANN, "my order is #71"))
    message_id = int(original.channel_message_id.split(":")[1])
    edit = gateway.tg.edited_update(TOKEN, ANN, message_id, text="my order is #17")

    assert await gateway.deliver(edit) == 200
    assert await gateway.deliver(edit) == 200  # re-delivered: still one edit

    edited = await gateway.message(original.channel_message_id)
    assert edited.id == original.id
    assert edited.content.text == "my order is #17" and edited.edits == ("my order is #71",)
    assert edited.edited_at is not None
    assert await gateway.count() == 1


async def test_reply_links_to_the_replied_message(gateway: Gateway) -> None:
    first = await gateway.receive(gateway.tg.text_update(TOKEN, ANN, "order #17"))
    first_id = int(first.channel_message_id.split(":")[1])
    reply = await gateway.receive(gateway.tg.text_update(TOKEN, ANN, "any news on this?", reply_to=first_id))
    assert reply.content.reply_to == str(first.id)


async def test_customer_reply_to_an_operator_message_links_to_it(gateway: Gateway) -> None:
    await gateway.conversation()
    answer = await gateway.reply("Your parcel left the warehouse.")
    sent = gateway.tg.sent(chat_id=ANN)[-1]
    assert answer["channel_message_id"] == f"{ANN}:{sent.message_id}"

    reply = await gateway.receive(gateway.tg.text_update(TOKEN, ANN, "thanks!", reply_to=sent.message_id))
    assert str(reply.content.reply_to) == answer["id"]


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ({"origin_user_id": BOB}, "Bob Smith"),
        ({"origin_chat_id": NEWS}, "@shopnews"),
        ({"hidden_sender_name": "Carol K"}, "Carol K"),
    ],
)
async def test_forwarded_message_keeps_its_origin(gateway: Gateway, origin: dict[str, Any], expected: str) -> None:
    message = await gateway.receive(gateway.tg.forwarded_update(TOKEN, ANN, "look at this", **origin))
    assert (message.content.kind, message.content.text, message.forwarded_from) == (Kind.TEXT, "look at this", expected)


@pytest.mark.parametrize(
    ("content", "name"),
    [
        ({"dice": {"emoji": "🎲", "value": 4}}, "dice"),
        ({"hologram": {"id": "h1", "depth": 3}}, "hologram"),  # a kind newer than aiogram
    ],
)
async def test_unknown_kind_is_stored_as_unsupported_with_its_type_name(
    gateway: Gateway, content: dict[str, Any], name: str
) -> None:
    message = await gateway.receive(gateway.tg.message_update(TOKEN, ANN, content))
    assert (message.content.kind, message.content.text) == (Kind.UNSUPPORTED, f"[unsupported: {name}]")


async def test_unknown_update_type_is_acknowledged_and_changes_nothing(gateway: Gateway) -> None:
    # An update type newer than aiogram: Telegram must not keep re-delivering it.
    with pytest.warns(RuntimeWarning, match="unknown update type"):  # aiogram's own notice
        assert await gateway.post({"update_id": 815000999, "hologram_call": {"id": "h1"}}) == 200
    assert await gateway.count() == 0


async def test_group_messages_and_channel_posts_are_ignored_by_default(gateway: Gateway) -> None:
    tg = gateway.tg
    assert await gateway.deliver(tg.text_update(TOKEN, ANN, "hi all", chat_id=GROUP)) == 200
    # Telegram never sends channel posts (not in allowed_updates); one that arrives anyway is ignored too.
    assert await gateway.deliver(tg.channel_post_update(TOKEN, NEWS, "sale!")) == 0
    assert await gateway.post(tg.channel_post_update(TOKEN, NEWS, "sale!")) == 200
    assert await gateway.count() == 0
    assert await gateway.store.contacts.collection.count_documents({}) == 0


async def test_group_messages_are_stored_under_the_sender_when_accepted(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(accept_groups=True)
    update = gateway.tg.text_update(TOKEN, BOB, "question from the group", chat_id=GROUP)
    assert await gateway.deliver(update) == 200
    message = await gateway.message(f"{GROUP}:{update['message']['message_id']}")
    assert message.identity == f"telegram:support:{BOB}"


# -- the webhook's own checks --------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["wrong-secret", None])
async def test_wrong_or_missing_secret_is_401_and_nothing_stored(gateway: Gateway, secret: str | None) -> None:
    update = gateway.tg.text_update(TOKEN, ANN, "hello")
    assert await gateway.deliver(update, secret=secret) == 401
    assert await gateway.post(update, secret=secret) == 401
    assert await gateway.count() == 0


async def test_secret_of_another_bot_is_refused(two_bots: Gateway) -> None:
    assert await two_bots.post(two_bots.tg.text_update(TOKEN, ANN, "hello"), secret=SALES_SECRET) == 401
    assert await two_bots.count() == 0


async def test_unknown_bot_is_404(gateway: Gateway) -> None:
    update = gateway.tg.text_update(TOKEN, ANN, "hello")
    assert await gateway.post(update, path="/channels/telegram/nobody") == 404
    assert await gateway.count() == 0


@pytest.mark.parametrize(
    "body",
    [b"not json at all", b"[1, 2]", b'{"hello": "world"}', b'{"update_id": "x"}', b"[" * 100_000, b"\xff\xfe{"],
)
async def test_body_that_is_not_an_update_is_kept_as_a_dead_letter_and_acknowledged(
    gateway: Gateway, body: bytes
) -> None:
    # Acknowledged, so Telegram does not deliver it again and again; kept, so nothing vanishes unseen.
    assert await gateway.post(body) == 200
    assert await gateway.count() == 0
    [letter] = await gateway.store.dead_letters.latest()
    assert letter.source == "telegram:support" and letter.reason.startswith("not a Telegram Update")
    assert letter.payload == body.decode("utf-8", "replace")[:4096]
    metrics = await (await gateway.client.get("/metrics")).text()
    assert 'gateway_dead_letters_total{source="telegram"} 1.0' in metrics


async def test_strings_that_cannot_be_stored_are_replaced_and_the_message_kept(gateway: Gateway) -> None:
    update = gateway.tg.text_update(TOKEN, ANN, "placeholder")
    body = json.dumps(update).replace("placeholder", "broken \\ud800 text \\u0000 end")
    assert await gateway.post(body) == 200
    stored = await gateway.message(f"{ANN}:{update['message']['message_id']}")
    assert stored.content.text == "broken \ufffd text \ufffd end"


async def test_absurd_numbers_in_an_update_never_break_the_webhook(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    update = gateway.tg.text_update(TOKEN, ANN, "edited")
    update["edited_message"] = update.pop("message") | {"edit_date": 10**12}
    assert await gateway.post(update) == 200
    photo = gateway.tg.text_update(TOKEN, ANN, "big file")
    photo["message"]["document"] = {"file_id": "f", "file_unique_id": "u", "file_size": 10**30}
    assert await gateway.post(photo) == 200
    stranger = gateway.tg.text_update(TOKEN, ANN, "who am I")
    stranger["message"]["from"]["id"] = 2**64
    assert await gateway.post(stranger) == 200

    # An edit time no calendar holds: the message's own date stands in. Numbers beyond 64 bits: not Telegram's.
    edited = update["edited_message"]
    stored = await gateway.message(f"{ANN}:{edited['message_id']}:edit:{10**12}")
    assert stored.sent_at == datetime.fromtimestamp(edited["date"], UTC)
    letters = await gateway.store.dead_letters.latest()
    assert [letter.reason for letter in letters] == ["not a Telegram Update: a number beyond 64 bits"] * 2
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_redelivered_update_stores_one_message(gateway: Gateway) -> None:
    update = gateway.tg.text_update(TOKEN, ANN, "only once please")
    assert await gateway.deliver(update) == 200
    assert await gateway.deliver(update) == 200
    assert await gateway.count() == 1


async def test_update_that_cannot_be_stored_is_500_so_telegram_delivers_it_again(gateway: Gateway) -> None:
    store = gateway.app[STORE]
    await store.client.close()  # the database connection is gone
    update = gateway.tg.text_update(TOKEN, ANN, "are you there?")
    assert await gateway.deliver(update) == 503

    client = AsyncMongoClient(store.uri, tz_aware=True)
    store.client = client
    store.bind(client[store.settings.database])
    assert await gateway.count() == 0
    assert await gateway.deliver(update) == 200
    assert (await gateway.message(f"{ANN}:{update['message']['message_id']}")).content.text == "are you there?"


# -- outbound ------------------------------------------------------------------------------------


async def test_operator_reply_reaches_the_chat_and_gets_the_telegram_message_id(gateway: Gateway) -> None:
    await gateway.conversation()
    answer = await gateway.reply("Hello Ann, how can I help?")

    [sent] = gateway.tg.sent(chat_id=ANN, token=TOKEN)
    assert (sent.method, sent.text) == ("sendMessage", "Hello Ann, how can I help?")
    assert answer["status"] == "sent"
    assert answer["channel_message_id"] == f"{ANN}:{sent.message_id}"


async def test_flood_control_is_waited_out_and_the_message_arrives_once(gateway: Gateway) -> None:
    await gateway.conversation()
    gateway.tg.fail(ANN, 429, retry_after=1, method="sendMessage")

    answer = await gateway.reply("after the wait")

    assert answer["status"] == "sent" and answer["error"] is None
    assert [s.text for s in gateway.tg.sent(chat_id=ANN)] == ["after the wait"]
    assert [c.status for c in gateway.tg.calls("sendMessage", chat_id=ANN)] == [429, 200]


async def test_messages_queued_behind_flood_control_keep_their_order(gateway: Gateway) -> None:
    tg = gateway.tg
    await gateway.conversation()
    tg.fail(ANN, 429, retry_after=1, method="sendMessage")

    first = asyncio.create_task(gateway.reply("one"))
    await eventually(lambda: _async(tg.calls("sendMessage", chat_id=ANN)), "the first send met flood control")
    await gateway.reply("two")
    await gateway.reply("three")
    await first

    async def all_sent() -> list[str]:
        texts = [s.text or "" for s in tg.sent(chat_id=ANN)]
        return texts if len(texts) == 3 else []

    assert await eventually(all_sent, "all three sent") == ["one", "two", "three"]


async def test_a_send_waiting_out_flood_control_is_not_overtaken_in_its_chat(gateway: Gateway) -> None:
    tg = gateway.tg
    channel = gateway.app[CHANNELS]["telegram"]
    ann = IdentityRef("telegram", "support", str(ANN))
    tg.fail(ANN, 429, retry_after=1, method="sendMessage")

    first = asyncio.create_task(channel.send(OutboundMessage("m-1", 1, ann, Content(text="one"))))
    await eventually(lambda: _async(tg.calls("sendMessage", chat_id=ANN)), "the first send met flood control")
    second = asyncio.create_task(channel.send(OutboundMessage("m-2", 1, ann, Content(text="two"))))
    refs = await asyncio.gather(first, second)

    sent = tg.sent(chat_id=ANN)
    assert [s.text for s in sent] == ["one", "two"]
    assert [r.channel_message_id for r in refs] == [f"{ANN}:{s.message_id}" for s in sent]


async def test_long_flood_wait_goes_back_to_the_outbox_with_retry_after(gateway: Gateway) -> None:
    await gateway.conversation()
    gateway.tg.fail(ANN, 429, retry_after=3600, method="sendMessage")

    answer = await gateway.reply("much later")

    assert answer["status"] == "queued" and answer["error_code"] == "rate_limited"
    assert "3600 s" in answer["error"]
    assert gateway.tg.sent(chat_id=ANN) == []


async def test_blocked_bot_fails_the_message_and_marks_the_identity_unreachable(gateway: Gateway) -> None:
    await gateway.conversation()
    gateway.tg.block(ANN)

    answer = await gateway.reply("are you still there?")

    assert answer["status"] == "failed"
    assert (answer["error"], answer["error_code"]) == ("the user blocked the bot", "blocked")
    identity = (await gateway.contact()).identities[0]
    assert identity.reachable is False and identity.unreachable_reason == "the user blocked the bot"
    assert len(gateway.tg.calls("sendMessage", chat_id=ANN)) == 1  # not retried

    gateway.tg.unblock(ANN)
    await gateway.receive(gateway.tg.text_update(TOKEN, ANN, "sorry, I am back"))
    assert (await gateway.contact()).identities[0].reachable is True


async def test_bad_request_is_a_permanent_failure_with_telegrams_description(gateway: Gateway) -> None:
    await gateway.conversation()
    gateway.tg.fail(ANN, 400, "Bad Request: chat not found", method="sendMessage")

    answer = await gateway.reply("hello?")

    assert answer["status"] == "failed"
    assert (answer["error"], answer["error_code"]) == ("Bad Request: chat not found", "bad_request")
    stored = await gateway.store.messages.get(ObjectId(answer["id"]))
    assert stored is not None and stored.next_attempt_at is None  # never retried


async def test_server_error_is_retried_by_the_outbox(gateway: Gateway) -> None:
    await gateway.conversation()
    gateway.tg.fail_method("sendMessage", 500, "Internal Server Error: restart", chat_id=ANN)

    answer = await gateway.reply("eventually")

    assert answer["status"] == "queued" and answer["error_code"] == "unavailable"

    async def sent() -> Message | None:
        message = await gateway.store.messages.get(ObjectId(answer["id"]))
        return message if message and message.status is MessageStatus.SENT else None

    stored = await eventually(sent, "the retry went out")
    assert [s.text for s in gateway.tg.sent(chat_id=ANN)] == ["eventually"]
    assert stored.channel_message_id == f"{ANN}:{gateway.tg.sent(chat_id=ANN)[0].message_id}"


async def test_operator_reply_to_a_customer_message_is_a_telegram_reply(gateway: Gateway) -> None:
    question = await gateway.receive(gateway.tg.text_update(TOKEN, ANN, "where is order #17?"))
    thread = await gateway.thread()

    await gateway.send(thread, Draft(Content(text="It arrives tomorrow.", reply_to=str(question.id))))

    [sent] = gateway.tg.sent(chat_id=ANN)
    assert sent.reply_to_message_id == int(question.channel_message_id.split(":")[1])


async def test_long_text_is_split_in_order(gateway: Gateway) -> None:
    thread = await gateway.conversation()
    text = "\n".join(f"line {n:04d} " + "x" * 90 for n in range(60))  # ~6000 characters

    stored = await gateway.send(thread, Draft(Content(text=text)))

    parts = gateway.tg.sent(chat_id=ANN)
    assert len(parts) == 2 and all(len(p.text or "") <= 4096 for p in parts)
    assert "\n".join(p.text or "" for p in parts) == text
    assert stored.channel_message_id == f"{ANN}:{parts[0].message_id}"


async def test_limits_are_counted_as_telegram_counts_in_utf16_code_units(gateway: Gateway) -> None:
    thread = await gateway.conversation()
    text = "🎉 " * 1400  # 4,200 characters, 5,600 UTF-16 code units

    stored = await gateway.send(thread, Draft(Content(text=text)))

    assert stored.status is MessageStatus.SENT
    parts = [p.text or "" for p in gateway.tg.sent(chat_id=ANN)]
    assert len(parts) == 2 and " ".join(parts) == text.strip()


async def test_a_retry_after_a_partial_send_does_not_repeat_the_parts_that_went_out(gateway: Gateway) -> None:
    tg = gateway.tg
    document = await gateway.receive(tg.document_update(TOKEN, ANN, file_name="manual.pdf"))
    thread = await gateway.thread()
    explanation = " ".join(["Please read chapter 3."] * 60)  # too long for a caption: it follows as a message
    tg.fail_method("sendMessage", 500, "Internal Server Error", chat_id=ANN)

    first_try = await gateway.send(thread, Draft(Content(Kind.FILE, explanation, media=document.content.media)))
    assert first_try.status is MessageStatus.QUEUED and first_try.error_code == "unavailable"

    async def sent() -> Message | None:
        message = await gateway.store.messages.get(first_try.id)
        return message if message and message.status is MessageStatus.SENT else None

    stored = await eventually(sent, "the retry went out")
    parts = tg.sent(chat_id=ANN)
    assert [(p.method, p.caption, p.text) for p in parts] == [
        ("sendDocument", None, None),
        ("sendMessage", None, explanation),
    ]
    assert stored.channel_message_id == f"{ANN}:{parts[0].message_id}"


async def test_buttons_go_out_inline_and_a_press_comes_back_with_its_payload(gateway: Gateway) -> None:
    thread = await gateway.conversation()
    await gateway.send(
        thread, Draft(Content(text="Was this helpful?", buttons=(Button("Yes", "vote:yes"), Button("No", "vote:no"))))
    )
    [sent] = gateway.tg.sent(chat_id=ANN)
    assert sent.reply_markup == {
        "inline_keyboard": [
            [{"text": "Yes", "callback_data": "vote:yes"}],
            [{"text": "No", "callback_data": "vote:no"}],
        ]
    }

    press = gateway.tg.callback_update(TOKEN, ANN, sent.message_id, "vote:no")
    assert await gateway.deliver(press) == 200
    assert await gateway.deliver(press) == 200

    message = await gateway.message(f"{ANN}:cb:{press['callback_query']['id']}")
    assert (message.content.kind, message.content.text, message.payload) == (Kind.TEXT, "No", "vote:no")
    assert [a.callback_query_id for a in gateway.tg.callback_answers] == [press["callback_query"]["id"]]
    assert await gateway.count() == 3  # hello, the question with buttons, one press


async def test_location_and_venue_go_out(gateway: Gateway) -> None:
    thread = await gateway.conversation()
    await gateway.send(thread, Draft(Content(Kind.LOCATION, location=Location(52.52, 13.405))))
    await gateway.send(
        thread, Draft(Content(Kind.LOCATION, location=Location(48.8584, 2.2945, "Our shop", "1 Main St")))
    )

    location, venue = gateway.tg.sent(chat_id=ANN)
    assert location.method == "sendLocation" and location.message["location"]["latitude"] == 52.52
    assert venue.method == "sendVenue" and venue.message["venue"]["title"] == "Our shop"


@pytest.mark.parametrize(
    ("kind", "build", "method", "field"),
    [
        (Kind.IMAGE, lambda tg: tg.photo_update(TOKEN, ANN), "sendPhoto", "photo"),
        (Kind.FILE, lambda tg: tg.document_update(TOKEN, ANN, file_name="terms.pdf"), "sendDocument", "document"),
        (Kind.VOICE, lambda tg: tg.voice_update(TOKEN, ANN), "sendVoice", "voice"),
        (Kind.VIDEO, lambda tg: tg.video_update(TOKEN, ANN), "sendVideo", "video"),
        (Kind.AUDIO, lambda tg: tg.audio_update(TOKEN, ANN), "sendAudio", "audio"),
    ],
)
async def test_a_file_this_bot_holds_is_sent_by_file_id(
    gateway: Gateway, kind: Kind, build: Callable[[TelegramEmulator], Any], method: str, field: str
) -> None:
    received = await gateway.receive(build(gateway.tg))
    thread = await gateway.thread()

    stored = await gateway.send(thread, Draft(Content(kind, "as requested", media=received.content.media)))

    assert stored.status is MessageStatus.SENT
    [sent] = gateway.tg.sent(chat_id=ANN, method=method)
    assert sent.params[field] == received.content.media[0].ref and sent.files == {}
    assert sent.caption == "as requested"


async def test_a_file_from_another_bot_is_downloaded_and_uploaded(two_bots: Gateway) -> None:
    tg = two_bots.tg
    photo = tg.photo_update(TOKEN, ANN)
    received = await two_bots.receive(photo)
    document = await two_bots.receive(tg.document_update(TOKEN, ANN, b"%PDF-1.4 terms", file_name="terms.pdf"))
    bob = await two_bots.conversation(BOB, SALES_TOKEN)

    await two_bots.send(bob, Draft(Content(Kind.IMAGE, media=received.content.media)))
    await two_bots.send(bob, Draft(Content(Kind.FILE, "our terms", media=document.content.media)))

    sent_photo, sent_document = tg.sent(chat_id=BOB, token=SALES_TOKEN)
    assert sent_photo.method == "sendPhoto" and sent_photo.file is not None
    assert sent_photo.file.data == tg.largest_photo(photo).data
    assert sent_document.method == "sendDocument" and sent_document.file is not None
    assert (sent_document.file.data, sent_document.file.filename) == (b"%PDF-1.4 terms", "terms.pdf")
    assert sent_document.caption == "our terms"
    assert len(tg.calls("getFile", token=TOKEN)) == 2


async def test_fetch_media_downloads_through_the_bot_that_received_it(gateway: Gateway) -> None:
    received = await gateway.receive(gateway.tg.voice_update(TOKEN, ANN, b"OggS voice bytes"))
    assert await gateway.app[INBOX].fetch_media(received.content.media[0]) == b"OggS voice bytes"


async def test_fetch_media_over_20_mb_is_refused_with_a_reason(gateway: Gateway) -> None:
    big = gateway.tg.document_update(TOKEN, ANN, b"%PDF", file_name="scan.pdf", file_size=int(23.4 * MB))
    received = await gateway.receive(big)
    media = received.content.media[0]
    assert media.size == int(23.4 * MB)

    with pytest.raises(SendError) as known_size:
        await gateway.app[INBOX].fetch_media(media)
    # The size can be unknown to us: then Telegram's "file is too big" tells.
    with pytest.raises(SendError) as unknown_size:
        await gateway.app[INBOX].fetch_media(Media(source="telegram", account="support", ref=media.ref))

    assert known_size.value.code == "too_large" and known_size.value.permanent
    assert known_size.value.reason == "the file is 23.4 MB; Telegram bots can only download files up to 20 MB"
    assert unknown_size.value.code == "too_large"
    assert "20 MB" in unknown_size.value.reason


async def test_sending_a_file_too_big_to_fetch_fails_with_the_reason(two_bots: Gateway) -> None:
    tg = two_bots.tg
    big = await two_bots.receive(tg.document_update(TOKEN, ANN, b"%PDF", file_size=25 * MB))
    bob = await two_bots.conversation(BOB, SALES_TOKEN)

    stored = await two_bots.send(bob, Draft(Content(Kind.FILE, media=big.content.media)))

    assert stored.status is MessageStatus.FAILED and stored.error_code == "too_large"
    assert stored.error == "the file is 25.0 MB; Telegram bots can only download files up to 20 MB"
    assert tg.sent(chat_id=BOB, method="sendDocument") == []


# -- modes and bots ------------------------------------------------------------------------------


async def test_polling_mode_receives_and_stores_updates(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(mode="polling")
    tg = gateway.tg
    assert tg.webhook(TOKEN) is None
    update = tg.text_update(TOKEN, ANN, "hello by polling")

    assert await gateway.deliver(update) == 0  # queued for getUpdates

    async def stored() -> Message | None:
        return await gateway.store.messages.by_channel_id(
            "telegram", "support", f"{ANN}:{update['message']['message_id']}"
        )

    message = await eventually(stored, "the polled update was stored")
    assert message.content.text == "hello by polling"
    await eventually(lambda: _async(not tg.pending_updates(TOKEN)), "the update was confirmed")


def _updates(tg: TelegramEmulator, *senders: int) -> list[Update]:
    return [Update.model_validate(tg.text_update(TOKEN, user, f"{user}:{n}")) for n, user in enumerate(senders)]


async def test_polled_chats_are_handled_side_by_side_each_in_order(gateway: Gateway) -> None:
    updates = _updates(gateway.tg, ANN, BOB, ANN, BOB)
    done: list[str] = []

    async def handle(update: Update) -> None:
        if update.message.text == f"{ANN}:0":
            await asyncio.sleep(0.05)  # Ann's first update is slow: Bob's need not wait for it, Ann's second does
        done.append(update.message.text)

    offset, failed = await handle_batch(updates, handle, None, who="support")
    assert done == [f"{BOB}:1", f"{BOB}:3", f"{ANN}:0", f"{ANN}:2"]
    assert (offset, failed) == (updates[-1].update_id + 1, False)


async def test_a_failed_poll_confirms_only_what_came_before_it(gateway: Gateway) -> None:
    updates = _updates(gateway.tg, ANN, BOB, ANN, BOB)
    done: list[str] = []

    async def handle(update: Update) -> None:
        if update.message.text == f"{BOB}:1":
            raise HostUnavailable("storage: down")
        done.append(update.message.text)

    offset, failed = await handle_batch(updates, handle, 7, who="support")
    assert sorted(done) == [f"{ANN}:0", f"{ANN}:2"]  # Bob's second waits behind his first
    assert (offset, failed) == (updates[0].update_id + 1, True)
    offset, failed = await handle_batch(updates[:1], lambda u: _fail(), 7, who="support")
    assert (offset, failed) == (7, True)


async def _fail() -> None:
    raise HostUnavailable("storage: down")


async def test_two_bots_keep_their_customers_apart(two_bots: Gateway) -> None:
    tg = two_bots.tg
    ann = await two_bots.conversation(ANN, TOKEN)
    bob = await two_bots.conversation(BOB, SALES_TOKEN)
    assert ann.identity == f"telegram:support:{ANN}" and bob.identity == f"telegram:sales:{BOB}"

    await two_bots.reply("for Bob", BOB, "sales")
    await two_bots.reply("for Ann", ANN, "support")

    assert [(s.token, s.text) for s in tg.sent(chat_id=BOB)] == [(SALES_TOKEN, "for Bob")]
    assert [(s.token, s.text) for s in tg.sent(chat_id=ANN)] == [(TOKEN, "for Ann")]


async def _async(value: Any) -> Any:
    return value


@settings(max_examples=60)
@given(data=st.data())
async def test_no_update_however_hostile_gets_a_5xx_or_a_traceback(
    gateway: Gateway, data: st.DataObject, caplog: pytest.LogCaptureFixture
) -> None:
    valid = gateway.tg.text_update(TOKEN, ANN, "hello")
    body = data.draw(mutated(valid) | st.dictionaries(text, json_values) | json_values, label="update")
    before = await gateway.count() + await gateway.store.dead_letters.count()
    status = await gateway.post(json.dumps(body))
    assert status == 200  # understood, ignored, or kept as a dead letter: never refused, never a 5xx
    assert await gateway.count() + await gateway.store.dead_letters.count() <= before + 1
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
