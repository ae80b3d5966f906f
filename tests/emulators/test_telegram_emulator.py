"""The Telegram emulator is faithful: a real aiogram Bot (and raw HTTP) works against it unmodified."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ContentType
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.methods import SendMessage
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
    MessageId,
    ReactionTypeEmoji,
    ReplyParameters,
    Update,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from tests.emulators.telegram import SECRET_HEADER, TelegramEmulator

TOKEN = "123456789:TEST_token-xyz"
OPERATOR_TOKEN = "987654321:OPERATOR_token"
ANN = 42424242
BOB = 51515151
FORUM = -1001854699958
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (640).to_bytes(4, "big") + (480).to_bytes(4, "big") + bytes(range(200))
KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[
        [
            InlineKeyboardButton(text="Yes", callback_data="vote:yes"),
            InlineKeyboardButton(text="No", callback_data="vote:no"),
        ]
    ]
)


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator() as emu:
        emu.add_bot(TOKEN, "gw_test_bot")
        emu.add_bot(OPERATOR_TOKEN, "gw_operator_bot", first_name="Operators")
        emu.user(ANN, "Ann", "Lee", username="annlee")
        emu.user(BOB, "Bob", language_code="de")
        emu.supergroup(FORUM, "Support", members=[BOB])
        yield emu


@pytest.fixture
async def make_bot(emulator: TelegramEmulator) -> AsyncIterator[Callable[[str], Bot]]:
    bots: list[Bot] = []

    def make(token: str = TOKEN) -> Bot:
        bots.append(Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(emulator.base_url))))
        return bots[-1]

    yield make
    for made in bots:
        await made.session.close()


@pytest.fixture
def bot(make_bot: Callable[[str], Bot]) -> Bot:
    return make_bot(TOKEN)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def raw_call(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    async with http.post(url, **kwargs) as response:
        return response.status, json.loads(await response.read())


# -- transport and envelope ------------------------------------------------------------------------


async def test_get_me_returns_the_registered_bot(bot: Bot) -> None:
    me = await bot.get_me()

    assert (me.id, me.is_bot, me.username, me.first_name) == (123456789, True, "gw_test_bot", "Gateway")


async def test_unknown_token_and_method_use_the_real_error_bodies(
    emulator: TelegramEmulator, http: aiohttp.ClientSession
) -> None:
    status, body = await raw_call(http, f"{emulator.base_url}/bot1:nope/getMe")
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})

    status, body = await raw_call(http, f"{emulator.base_url}/bot{TOKEN}/sendTelepathy")
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"})


async def test_method_names_are_case_insensitive_and_every_body_format_is_read(
    emulator: TelegramEmulator, http: aiohttp.ClientSession
) -> None:
    base = f"{emulator.base_url}/bot{TOKEN}"

    by_query = await raw_call(http, f"{base}/SENDMESSAGE?chat_id={ANN}&text=query")
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    by_json = await raw_call(http, f"{base}/sendmessage", json={"chat_id": ANN, "text": "json", "reply_markup": markup})
    by_form = await raw_call(http, f"{base}/sendMessage", data={"chat_id": str(ANN), "text": "form"})

    assert [body["result"]["text"] for _, body in (by_query, by_json, by_form)] == ["query", "json", "form"]
    assert by_json[1]["result"]["reply_markup"] == markup
    assert [r.method for r in emulator.requests] == ["sendMessage"] * 3
    assert list(by_query[1]) == ["ok", "result"]


async def test_set_webhook_envelope_carries_description_after_result(
    emulator: TelegramEmulator, http: aiohttp.ClientSession
) -> None:
    url = f"{emulator.base_url}/bot{TOKEN}/setWebhook"
    async with http.post(url, data={"url": "https://example.org/hook"}) as response:
        text = await response.text()

    assert text == '{"ok":true,"result":true,"description":"Webhook was set"}'
    _, again = await raw_call(http, url, data={"url": "https://example.org/hook"})
    assert again["description"] == "Webhook is already set"
    assert (await raw_call(http, url, data={"url": ""}))[1]["description"] == "Webhook was deleted"


# -- sending ---------------------------------------------------------------------------------------


async def test_send_message_round_trips_reply_and_inline_keyboard(emulator: TelegramEmulator, bot: Bot) -> None:
    emulator.text_update(TOKEN, ANN, "/start hello")

    sent = await bot.send_message(ANN, "Hi", reply_parameters=ReplyParameters(message_id=1), reply_markup=KEYBOARD)

    assert isinstance(sent, Message)
    assert sent.from_user is not None and sent.from_user.id == 123456789
    assert sent.chat.id == ANN and sent.chat.type == "private"
    assert sent.reply_to_message is not None and sent.reply_to_message.text == "/start hello"
    assert sent.reply_markup is not None
    assert sent.reply_markup.model_dump(exclude_none=True) == KEYBOARD.model_dump(exclude_none=True)
    record = emulator.calls("sendMessage")[-1]
    # aiogram sends nested objects as JSON strings; the record holds them decoded.
    assert record.params["reply_parameters"] == {"message_id": 1}
    assert emulator.sent(chat_id=ANN)[-1].reply_markup == KEYBOARD.model_dump(exclude_none=True)


async def test_message_ids_increase_per_chat_and_replies_need_an_existing_message(
    emulator: TelegramEmulator, bot: Bot
) -> None:
    first = await bot.send_message(ANN, "one")
    second = await bot.send_message(ANN, "two")
    other_chat = await bot.send_message(BOB, "one")

    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(ANN, "x", reply_parameters=ReplyParameters(message_id=999))
    lenient = await bot.send_message(
        ANN, "y", reply_parameters=ReplyParameters(message_id=999, allow_sending_without_reply=True)
    )

    assert (first.message_id, second.message_id, other_chat.message_id) == (1, 2, 1)
    assert lenient.message_id == 3 and lenient.reply_to_message is None


async def test_html_parse_mode_becomes_entities_and_bad_markup_is_rejected(bot: Bot) -> None:
    sent = await bot.send_message(ANN, '<b>Ticket</b> <a href="https://x.org">#17</a> &lt;ok&gt;', parse_mode="HTML")

    assert sent.text == "Ticket #17 <ok>"
    assert [(e.type, e.offset, e.length) for e in sent.entities or []] == [("bold", 0, 6), ("text_link", 7, 3)]
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(ANN, "1 < 2 <b>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match=r"Character '\.' is reserved"):
        await bot.send_message(ANN, "Done.", parse_mode="MarkdownV2")


async def test_text_and_caption_limits(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(ANN, "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(ANN, BufferedInputFile(PNG, "p.png"), caption="x" * 1025)
    assert (await bot.send_message(ANN, "x" * 4096)).text == "x" * 4096
    # Counted in UTF-16 code units, as Telegram does: an emoji outside the BMP counts two.
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(ANN, "😀" * 2049)
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(ANN, BufferedInputFile(PNG, "p.png"), caption="😀" * 513)
    assert (await bot.send_message(ANN, "😀" * 2048)).text == "😀" * 2048


async def test_send_photo_upload_uses_attach_and_downloads_back(emulator: TelegramEmulator, bot: Bot) -> None:
    sent = await bot.send_photo(ANN, BufferedInputFile(PNG, filename="shot.png"), caption="Invoice")

    assert sent.photo is not None and len(sent.photo) > 1
    assert [p.width for p in sent.photo] == sorted(p.width for p in sent.photo)
    assert (sent.photo[-1].width, sent.photo[-1].height) == (640, 480)
    assert sent.caption == "Invoice"
    record = emulator.calls("sendPhoto")[-1]
    assert record.params["photo"].startswith("attach://")
    assert record.files["photo"].data == PNG and record.files["photo"].filename == "shot.png"
    file = await bot.get_file(sent.photo[-1].file_id)
    assert file.file_size == len(PNG) and file.file_path
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None and downloaded.getvalue() == PNG


async def test_send_document_voice_and_location_with_replies(emulator: TelegramEmulator, bot: Bot) -> None:
    emulator.text_update(TOKEN, ANN, "please send the report")
    reply = ReplyParameters(message_id=1)

    document = await bot.send_document(ANN, BufferedInputFile(b"%PDF-1.4 report", "report.pdf"), reply_parameters=reply)
    voice = await bot.send_voice(ANN, BufferedInputFile(b"OggS voice", "v.ogg"), duration=2, reply_parameters=reply)
    location = await bot.send_location(ANN, 52.52, 13.405, reply_parameters=reply)

    assert document.document is not None
    assert (document.document.file_name, document.document.mime_type) == ("report.pdf", "application/pdf")
    assert voice.voice is not None and voice.voice.duration == 2
    assert location.location is not None
    assert (location.location.latitude, location.location.longitude) == (52.52, 13.405)
    assert {m.reply_to_message.message_id for m in (document, voice, location) if m.reply_to_message} == {1}
    assert [s.method for s in emulator.sent(chat_id=ANN)] == ["sendDocument", "sendVoice", "sendLocation"]
    assert emulator.sent(method="sendDocument")[0].file is not None


async def test_file_id_reuse_url_and_file_errors(emulator: TelegramEmulator, make_bot: Callable[[str], Bot]) -> None:
    bot, operator_bot = make_bot(TOKEN), make_bot(OPERATOR_TOKEN)
    first = await bot.send_document(ANN, BufferedInputFile(b"abc", "a.txt"))
    assert first.document is not None

    again = await bot.send_document(BOB, first.document.file_id)
    emulator.remote_files["https://cdn.example/pic.jpg"] = b"remote-bytes"
    by_url = await bot.send_photo(ANN, "https://cdn.example/pic.jpg")
    big = emulator.document_update(TOKEN, ANN, file_size=25 * 1024 * 1024)

    assert again.document is not None and again.document.file_unique_id == first.document.file_unique_id
    assert by_url.photo is not None
    assert emulator.file(by_url.photo[-1].file_id).data == b"remote-bytes"  # type: ignore[union-attr]
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot.get_file(big["message"]["document"]["file_id"])
    with pytest.raises(TelegramBadRequest, match="wrong file_id or the file is temporarily unavailable"):
        await bot.get_file("nonexistent")
    # file_ids belong to one bot, as on Telegram: the operator bot cannot reuse the customer bot's.
    with pytest.raises(TelegramBadRequest, match="wrong file identifier/HTTP URL specified"):
        await operator_bot.send_document(BOB, first.document.file_id)
    with pytest.raises(TelegramBadRequest, match="can't use file of type Document as Photo"):
        await bot.send_photo(ANN, first.document.file_id)


async def test_other_send_methods_return_valid_messages(emulator: TelegramEmulator, bot: Bot) -> None:
    audio = await bot.send_audio(ANN, BufferedInputFile(b"ID3", "song.mp3"), performer="P", title="T")
    video = await bot.send_video(ANN, BufferedInputFile(b"mp4", "clip.mp4"), width=640, height=360, duration=3)
    note = await bot.send_video_note(ANN, BufferedInputFile(b"mp4", "note.mp4"), length=240)
    sticker = await bot.send_sticker(ANN, BufferedInputFile(b"RIFFWEBP", "s.webp"), emoji="👍")
    venue = await bot.send_venue(ANN, 1.5, 2.5, "Office", "Main st. 1")
    contact = await bot.send_contact(ANN, "+15551234567", "Support")
    action = await bot.send_chat_action(ANN, "typing")

    assert [m.content_type for m in (audio, video, note, sticker, venue, contact)] == [
        ContentType.AUDIO,
        ContentType.VIDEO,
        ContentType.VIDEO_NOTE,
        ContentType.STICKER,
        ContentType.VENUE,
        ContentType.CONTACT,
    ]
    assert audio.audio is not None and audio.audio.performer == "P"
    assert sticker.sticker is not None and sticker.sticker.emoji == "👍"
    assert action is True
    with pytest.raises(TelegramBadRequest, match="wrong parameter action"):
        await bot.send_chat_action(ANN, "dancing")  # type: ignore[arg-type]


async def test_unknown_chat_is_a_bad_request(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(777, "hello?")


async def test_copy_and_forward(emulator: TelegramEmulator, bot: Bot) -> None:
    emulator.photo_update(TOKEN, ANN, PNG, caption="original")

    copied = await bot.copy_message(BOB, ANN, 1, caption="relayed")
    forwarded = await bot.forward_message(BOB, ANN, 1)

    assert isinstance(copied, MessageId)
    copy_message = emulator.message(TOKEN, BOB, copied.message_id)
    assert copy_message is not None and copy_message["caption"] == "relayed" and "forward_origin" not in copy_message
    assert forwarded.forward_origin is not None and forwarded.forward_origin.type == "user"
    # The legacy fields the real server still emits next to forward_origin.
    assert forwarded.forward_from is not None and forwarded.forward_from.id == ANN and forwarded.forward_date
    assert [s.method for s in emulator.sent(chat_id=BOB)] == ["copyMessage", "forwardMessage"]
    with pytest.raises(TelegramBadRequest, match="message to copy not found"):
        await bot.copy_message(BOB, ANN, 99)


async def test_edit_delete_and_not_modified(emulator: TelegramEmulator, bot: Bot) -> None:
    sent = await bot.send_message(ANN, "Approve?", reply_markup=KEYBOARD)

    edited = await bot.edit_message_text("Approved", chat_id=ANN, message_id=sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("Approved", chat_id=ANN, message_id=sent.message_id)
    await bot.delete_message(ANN, sent.message_id)

    assert isinstance(edited, Message) and edited.text == "Approved" and edited.edit_date is not None
    # Editing without reply_markup drops the inline keyboard, as on Telegram.
    assert edited.reply_markup is None
    assert emulator.edits(chat_id=ANN)[0].text == "Approved"
    assert emulator.message(TOKEN, ANN, sent.message_id) is None
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(ANN, sent.message_id)


async def test_callback_press_and_answer(emulator: TelegramEmulator, bot: Bot) -> None:
    sent = await bot.send_message(ANN, "Approve?", reply_markup=KEYBOARD)

    update = Update.model_validate(emulator.callback_update(TOKEN, ANN, sent.message_id, "vote:no"))
    assert update.callback_query is not None
    await bot.answer_callback_query(update.callback_query.id, text="Thanks")

    assert update.callback_query.data == "vote:no"
    assert isinstance(update.callback_query.message, Message)
    assert update.callback_query.message.reply_markup is not None
    assert update.callback_query.message.reply_markup.inline_keyboard[0][1].callback_data == "vote:no"
    assert [(a.callback_query_id, a.text) for a in emulator.callback_answers] == [(update.callback_query.id, "Thanks")]
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(update.callback_query.id)


async def test_commands_round_trip(emulator: TelegramEmulator, bot: Bot) -> None:
    commands = [BotCommand(command="start", description="Start"), BotCommand(command="help", description="Help")]

    await bot.set_my_commands(commands)

    assert [(c.command, c.description) for c in await bot.get_my_commands()] == [("start", "Start"), ("help", "Help")]
    assert emulator.commands(TOKEN) == [
        {"command": "start", "description": "Start"},
        {"command": "help", "description": "Help"},
    ]
    await bot.delete_my_commands()
    assert await bot.get_my_commands() == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad Command", description="x")])


async def test_forum_topics(emulator: TelegramEmulator, make_bot: Callable[[str], Bot]) -> None:
    operator_bot = make_bot(OPERATOR_TOKEN)

    topic = await operator_bot.create_forum_topic(FORUM, "Ticket #17 Ann")
    in_topic = await operator_bot.send_message(FORUM, "New ticket", message_thread_id=topic.message_thread_id)
    operator_reply = Update.model_validate(
        emulator.text_update(OPERATOR_TOKEN, BOB, "On it", chat_id=FORUM, message_thread_id=topic.message_thread_id)
    )
    await operator_bot.close_forum_topic(FORUM, topic.message_thread_id)
    await operator_bot.reopen_forum_topic(FORUM, topic.message_thread_id)
    await operator_bot.edit_forum_topic(FORUM, topic.message_thread_id, name="Ticket #17 Ann (VIP)")

    assert in_topic.message_thread_id == topic.message_thread_id and in_topic.is_topic_message
    assert in_topic.reply_to_message is not None and in_topic.reply_to_message.forum_topic_created is not None
    assert operator_reply.message is not None and operator_reply.message.is_topic_message
    assert operator_reply.message.message_thread_id == topic.message_thread_id
    assert emulator.topics(FORUM)[topic.message_thread_id].name == "Ticket #17 Ann (VIP)"
    with pytest.raises(TelegramBadRequest, match="TOPIC_NOT_MODIFIED"):
        await operator_bot.reopen_forum_topic(FORUM, topic.message_thread_id)
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await operator_bot.send_message(FORUM, "x", message_thread_id=9999)
    with pytest.raises(TelegramBadRequest, match="the chat is not a forum"):
        await operator_bot.create_forum_topic(ANN, "nope")


async def test_get_chat_returns_full_info(bot: Bot) -> None:
    chat = await bot.get_chat(FORUM)

    assert (chat.id, chat.type, chat.title, chat.is_forum) == (FORUM, "supergroup", "Support", True)


# -- failure injection -----------------------------------------------------------------------------


async def test_429_raises_retry_after_and_creates_no_message(emulator: TelegramEmulator, bot: Bot) -> None:
    emulator.fail(ANN, 429, retry_after=35)

    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(ANN, "hi")
    retried = await bot.send_message(ANN, "hi")

    assert caught.value.retry_after == 35
    assert emulator.calls("sendMessage")[0].error == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 35",
        "parameters": {"retry_after": 35},
    }
    assert retried.message_id == 1
    assert [s.text for s in emulator.sent(chat_id=ANN)] == ["hi"]


async def test_block_and_unblock(emulator: TelegramEmulator, bot: Bot) -> None:
    emulator.block(ANN)

    with pytest.raises(TelegramForbiddenError) as caught:
        await bot.send_message(ANN, "hello")
    with pytest.raises(TelegramForbiddenError):
        await bot.send_photo(ANN, BufferedInputFile(PNG, "p.png"))
    emulator.unblock(ANN)

    assert "bot was blocked by the user" in caught.value.message
    assert (await bot.send_message(ANN, "back")).message_id == 1
    assert [r.status for r in emulator.requests] == [403, 403, 200]


async def test_fail_method_for_any_chat(emulator: TelegramEmulator, bot: Bot) -> None:
    emulator.fail_method("sendDocument", 400, "Bad Request: wrong type of the web page content", times=2)

    for _ in range(2):
        with pytest.raises(TelegramBadRequest, match="wrong type of the web page content"):
            await bot.send_document(BOB, "https://example.org/f.pdf")

    assert (await bot.send_document(BOB, "https://example.org/f.pdf")).document is not None
    assert await bot.send_message(ANN, "unaffected")


# -- updates: webhook and long polling ------------------------------------------------------------


async def test_webhook_delivery_posts_json_with_secret(
    emulator: TelegramEmulator, bot: Bot, aiohttp_server: Any
) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get(SECRET_HEADER), await request.json()))
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    await bot.set_webhook(str(server.make_url("/hook")), secret_token="s3cr3t", allowed_updates=["message"])
    update = emulator.text_update(TOKEN, ANN, "hello")

    assert await emulator.deliver(TOKEN, update) == 200
    assert await emulator.deliver(TOKEN, update, secret="wrong") == 200
    assert await emulator.deliver(TOKEN, emulator.my_chat_member_update(TOKEN, ANN)) == 0

    assert received == [("s3cr3t", update), ("wrong", update)]
    webhook = emulator.webhook(TOKEN)
    assert webhook is not None and (webhook.secret_token, webhook.allowed_updates) == ("s3cr3t", ["message"])
    info = await bot.get_webhook_info()
    assert info.url.endswith("/hook") and info.allowed_updates == ["message"]
    assert emulator.deliveries[-1].filtered


async def test_aiogram_webhook_handler_rejects_wrong_secret_and_its_reply_is_executed(
    emulator: TelegramEmulator, bot: Bot, aiohttp_server: Any
) -> None:
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> SendMessage:
        return message.answer(f"echo: {message.text}")

    app = web.Application()
    handler = SimpleRequestHandler(dispatcher=dp, bot=bot, secret_token="s3cr3t", handle_in_background=False)
    handler.register(app, path="/tg")
    server = await aiohttp_server(app)
    await bot.set_webhook(str(server.make_url("/tg")), secret_token="s3cr3t")

    rejected = await emulator.deliver(TOKEN, emulator.text_update(TOKEN, ANN, "spoofed"), secret=None)
    accepted = await emulator.deliver(TOKEN, emulator.text_update(TOKEN, ANN, "hi"))

    assert (rejected, accepted) == (401, 200)
    assert [s.text for s in emulator.sent(chat_id=ANN)] == ["echo: hi"]
    assert emulator.calls("sendMessage")[0].via_webhook_reply
    info = await bot.get_webhook_info()
    assert info.last_error_message == "Wrong response from the webhook: 401 Unauthorized"


async def test_get_updates_long_poll_and_offset_confirmation(emulator: TelegramEmulator, bot: Bot) -> None:
    first = emulator.text_update(TOKEN, ANN, "one")
    await emulator.deliver(TOKEN, first)

    queued = await bot.get_updates(timeout=0)
    waiting = asyncio.create_task(bot.get_updates(offset=queued[-1].update_id + 1, timeout=30))
    while not any(r.method == "getUpdates" for r in emulator.requests[1:]):  # noqa: ASYNC110 - yield until it polls
        await asyncio.sleep(0)
    second = emulator.text_update(TOKEN, ANN, "two")
    await emulator.deliver(TOKEN, second)
    woken = await waiting

    assert [u.message.text for u in queued if u.message] == ["one"]
    assert [u.update_id for u in woken] == [second["update_id"]] == [first["update_id"] + 1]
    assert emulator.pending_updates(TOKEN) == [second]
    assert await bot.get_updates(offset=second["update_id"] + 1, timeout=0) == []
    assert emulator.pending_updates(TOKEN) == []


async def test_get_updates_conflicts(emulator: TelegramEmulator, bot: Bot) -> None:
    first_poll = asyncio.create_task(bot.get_updates(timeout=30))
    while not emulator.calls("getUpdates"):  # noqa: ASYNC110 - yield until the first poll is in
        await asyncio.sleep(0)
    second_poll = asyncio.create_task(bot.get_updates(timeout=0))

    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await first_poll
    assert await second_poll == []
    await bot.set_webhook("https://example.org/hook")
    with pytest.raises(TelegramConflictError, match="can't use getUpdates method while webhook is active"):
        await bot.get_updates()


# -- update builders -------------------------------------------------------------------------------


def content_type(update: dict[str, Any]) -> str:
    parsed = Update.model_validate(update)
    message = parsed.message or parsed.edited_message or parsed.channel_post
    assert message is not None
    return message.content_type


async def test_every_builder_produces_a_valid_update(emulator: TelegramEmulator) -> None:
    emulator.channel(-1002000000000, "News", username="news")
    emulator.group(-4000000001, "Old group", members=[ANN])
    thread = emulator.create_topic(FORUM, "Ticket #1", OPERATOR_TOKEN)
    t = TOKEN

    cases = {
        ContentType.TEXT: emulator.text_update(t, ANN, "Hi @support see https://x.org"),
        ContentType.PHOTO: emulator.photo_update(t, ANN, PNG, caption="pic"),
        ContentType.DOCUMENT: emulator.document_update(t, ANN, b"%PDF", file_name="a.pdf"),
        ContentType.VOICE: emulator.voice_update(t, ANN),
        ContentType.AUDIO: emulator.audio_update(t, ANN, title="Song"),
        ContentType.VIDEO: emulator.video_update(t, ANN),
        ContentType.VIDEO_NOTE: emulator.video_note_update(t, ANN),
        ContentType.STICKER: emulator.sticker_update(t, ANN, "🔥"),
        ContentType.LOCATION: emulator.location_update(t, ANN, 52.5, 13.4, live_period=60),
        ContentType.VENUE: emulator.venue_update(t, ANN, 52.5, 13.4, "Cafe", "Main st"),
        ContentType.CONTACT: emulator.contact_update(t, ANN, "15551234567"),
        ContentType.DICE: emulator.message_update(t, ANN, {"dice": {"emoji": "🎲", "value": 4}}),
        ContentType.UNKNOWN: emulator.message_update(t, ANN, {"brand_new_kind": {"x": 1}}),
    }
    group = emulator.text_update(t, ANN, "in group", chat_id=-4000000001)
    topic = emulator.text_update(OPERATOR_TOKEN, BOB, "in topic", chat_id=FORUM, message_thread_id=thread)
    post = emulator.channel_post_update(t, -1002000000000, "news")
    edited = emulator.edited_update(t, ANN, 1, text="Hi, edited")

    assert {kind: content_type(update) for kind, update in cases.items()} == {kind: kind for kind in cases}
    ids = [u["update_id"] for u in (*cases.values(), group, post, edited)]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    text = Update.model_validate(cases[ContentType.TEXT]).message
    assert text is not None and [e.type for e in text.entities or []] == ["mention", "url"]
    assert Update.model_validate(group).message.chat.type == "group"  # type: ignore[union-attr]
    parsed_topic = Update.model_validate(topic).message
    assert parsed_topic is not None and parsed_topic.is_topic_message and parsed_topic.message_thread_id == thread
    assert parsed_topic.reply_to_message is not None and parsed_topic.reply_to_message.forum_topic_created is not None
    parsed_post = Update.model_validate(post).channel_post
    assert parsed_post is not None and parsed_post.sender_chat is not None and parsed_post.from_user is None
    assert content_type(edited) == ContentType.TEXT
    parsed_edit = Update.model_validate(edited).edited_message
    assert parsed_edit is not None and parsed_edit.message_id == 1 and parsed_edit.edit_date is not None
    contact = Update.model_validate(cases[ContentType.CONTACT]).message.contact  # type: ignore[union-attr]
    assert contact is not None and (contact.phone_number, contact.user_id) == ("15551234567", ANN)


async def test_customer_media_can_be_downloaded_by_the_bot(emulator: TelegramEmulator, bot: Bot) -> None:
    update = Update.model_validate(emulator.photo_update(TOKEN, ANN, PNG))
    assert update.message is not None and update.message.photo is not None

    largest = await bot.download(update.message.photo[-1].file_id)
    smallest = await bot.download(update.message.photo[0].file_id)

    assert largest is not None and largest.getvalue() == PNG
    # Only the largest size is the original; smaller ones are re-encoded previews.
    assert smallest is not None and smallest.getvalue() != PNG


async def test_reply_forward_and_callback_builders(emulator: TelegramEmulator, bot: Bot) -> None:
    emulator.user(60606060, "Carol", hides_forwards=True)
    sent = await bot.send_message(ANN, "How can we help?", reply_markup=KEYBOARD)

    reply = Update.model_validate(emulator.text_update(TOKEN, ANN, "My order", reply_to=sent.message_id)).message
    forwarded = Update.model_validate(emulator.forwarded_update(TOKEN, ANN, "fw", origin_user_id=BOB)).message
    hidden = Update.model_validate(emulator.forwarded_update(TOKEN, ANN, "fw", origin_user_id=60606060)).message
    press_update = emulator.callback_update(TOKEN, ANN, sent.message_id, button_text="Yes")
    press = Update.model_validate(press_update).callback_query

    assert reply is not None and reply.reply_to_message is not None
    assert reply.reply_to_message.message_id == sent.message_id
    assert reply.reply_to_message.from_user is not None and reply.reply_to_message.from_user.is_bot
    assert forwarded is not None and forwarded.forward_origin.type == "user"  # type: ignore[union-attr]
    assert forwarded.forward_from is not None and forwarded.forward_from.id == BOB and forwarded.forward_date
    assert hidden is not None and hidden.forward_origin.type == "hidden_user"  # type: ignore[union-attr]
    assert press is not None and press.data == "vote:yes" and press.from_user.id == ANN
    with pytest.raises(ValueError, match="no callback button"):
        emulator.callback_update(TOKEN, ANN, sent.message_id, "vote:maybe")


async def test_aiogram_polling_dispatcher_receives_and_answers(emulator: TelegramEmulator, bot: Bot) -> None:
    dp = Dispatcher()
    answered = asyncio.Event()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(f"got {message.text}")
        answered.set()

    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, close_bot_session=False))
    await emulator.deliver(TOKEN, emulator.text_update(TOKEN, ANN, "ping"))
    await answered.wait()
    await dp.stop_polling()
    await polling

    assert [s.text for s in emulator.sent(chat_id=ANN)] == ["got ping"]
    assert emulator.calls("getUpdates", token=TOKEN)


async def test_media_group_and_raw_multipart_upload(
    emulator: TelegramEmulator, bot: Bot, http: aiohttp.ClientSession
) -> None:
    album = await bot.send_media_group(
        ANN,
        [
            InputMediaPhoto(media=BufferedInputFile(PNG, "a.png"), caption="first"),
            InputMediaPhoto(media=BufferedInputFile(PNG, "b.png")),
        ],
    )
    form = aiohttp.FormData()
    form.add_field("chat_id", str(ANN))
    form.add_field("document", b"direct-part", filename="notes.txt", content_type="text/plain")
    status, body = await raw_call(http, f"{emulator.base_url}/bot{TOKEN}/sendDocument", data=form)

    assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id is not None
    assert album[0].caption == "first"
    assert status == 200 and body["result"]["document"]["file_name"] == "notes.txt"
    assert emulator.calls("sendDocument")[0].files["document"].data == b"direct-part"


async def test_queued_updates_reach_a_later_webhook_and_failures_can_target_one_method(
    emulator: TelegramEmulator, bot: Bot, aiohttp_server: Any
) -> None:
    seen: list[int] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append((await request.json())["update_id"])
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    queued = emulator.text_update(TOKEN, ANN, "sent before the webhook existed")
    assert await emulator.deliver(TOKEN, queued) == 0
    await bot.set_webhook(str(server.make_url("/hook")))
    emulator.fail(ANN, 400, "Bad Request: message thread not found", method="sendPhoto")

    assert await emulator.deliver_pending(TOKEN) == [200]
    assert seen == [queued["update_id"]] and emulator.pending_updates(TOKEN) == []
    assert (await bot.send_message(ANN, "text is unaffected")).text == "text is unaffected"
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_photo(ANN, BufferedInputFile(PNG, "p.png"))


async def test_set_message_reaction_takes_one_standard_emoji_on_an_existing_message(
    emulator: TelegramEmulator, bot: Bot
) -> None:
    update = emulator.text_update(TOKEN, ANN, "thanks!")
    mine = update["message"]["message_id"]
    assert await bot.set_message_reaction(ANN, mine, [ReactionTypeEmoji(emoji="👀")]) is True
    assert emulator.reaction(ANN, mine) == ("👀",)
    assert await bot.set_message_reaction(ANN, mine, []) is True
    assert emulator.reaction(ANN, mine) == ()

    with pytest.raises(TelegramBadRequest, match="REACTION_INVALID"):
        await bot.set_message_reaction(ANN, mine, [ReactionTypeEmoji(emoji="✅")])
    with pytest.raises(TelegramBadRequest, match="REACTIONS_TOO_MANY"):
        await bot.set_message_reaction(ANN, mine, [ReactionTypeEmoji(emoji="👍"), ReactionTypeEmoji(emoji="👀")])
    with pytest.raises(TelegramBadRequest, match="MESSAGE_ID_INVALID"):
        await bot.set_message_reaction(ANN, mine + 1000, [ReactionTypeEmoji(emoji="👍")])
