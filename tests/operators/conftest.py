"""The running gateway with its operator bot on the Telegram emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.keys import STORE
from tests.emulators.telegram import SentMessage, TelegramEmulator
from tests.emulators.twilio import TwilioEmulator
from tests.helpers import Widget, merged, settle

OPERATOR_BOT = "7000001:operator-bot-token"
OLGA, SAM, BOSS, EVE = 1001, 1002, 1003, 6666
SUPERVISORS = -1001234567890
CUSTOMER_BOT = "7000002:customer-bot-token"
ANN_TG = 5001
ANN_WA = "+14155552671"
BOB_WA = "+14155552672"
SENDER = "whatsapp:+14155238886"


class Desk:
    """Operators working in the bot, customers on the widget, one running gateway."""

    def __init__(self, client: TestClient, tg: TelegramEmulator) -> None:
        self.client = client
        self.tg = tg
        self.app = client.app
        self.store = client.app[STORE]

    async def say(self, operator_id: int, text: str, *, reply_to: int | None = None) -> int:
        """An operator writes to the operator bot (a reply when reply_to is given); returns its message id."""
        update = self.tg.text_update(OPERATOR_BOT, operator_id, text, reply_to=reply_to)
        assert await self.send(update) == 200
        return update["message"]["message_id"]

    async def send(self, update: dict[str, Any]) -> int:
        status = await self.tg.deliver(OPERATOR_BOT, update)
        await settle(self.app)
        return status

    async def press(self, operator_id: int, message_id: int, data: str) -> int:
        return await self.send(self.tg.callback_update(OPERATOR_BOT, operator_id, message_id, data))

    def chat(self, chat_id: int) -> list[SentMessage]:
        """Everything the operator bot sent into a chat, oldest first."""
        return self.tg.sent(chat_id=chat_id, token=OPERATOR_BOT)

    def texts(self, chat_id: int) -> list[str]:
        return [m.text or m.caption or "" for m in self.chat(chat_id)]

    async def visitor(self, text: str | None = None, client_id: str = "c-1") -> Widget:
        widget = await Widget.connect(self.client)
        if text is not None:
            await widget.say(text, client_id)
            await settle(self.app)
        return widget

    async def online(self, *operator_ids: int) -> None:
        for operator_id in operator_ids:
            await self.say(operator_id, "/online")


@pytest.fixture
async def tg() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator() as emulator:
        emulator.add_bot(OPERATOR_BOT, "desk_bot", first_name="Support desk")
        emulator.user(OLGA, "Olga", username="olga")
        emulator.user(SAM, "Sam", username="sam", language_code="ru")
        emulator.user(BOSS, "Boss", username="boss")
        emulator.user(EVE, "Eve", username="eve")
        yield emulator


OpenDesk = Callable[..., Awaitable[Desk]]


@pytest.fixture
def open_desk(tg: TelegramEmulator, serve: Any) -> OpenDesk:
    """Start the gateway with its operator bot on the emulator: Olga, Sam (Russian) and Boss (supervisor)."""

    async def start(**override: Any) -> Desk:
        settings = {
            "operator_bot": {"token": OPERATOR_BOT, "webhook_secret": "desk-secret", "api_base": tg.base_url},
            "operators": [
                {"telegram_id": OLGA, "name": "Olga", "username": "olga"},
                {"telegram_id": SAM, "name": "Sam", "username": "sam"},
                {"telegram_id": BOSS, "name": "Boss", "username": "boss", "role": "supervisor"},
            ],
            "routing": {"max_chats_per_operator": 3},
        }
        return Desk(await serve(**merged(settings, override)), tg)

    return start


@pytest.fixture
async def desk(open_desk: OpenDesk) -> Desk:
    return await open_desk()


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioEmulator]:
    async with TwilioEmulator(
        auth_token="twilio-auth-token-for-tests", whatsapp_number=SENDER, auto_status_callbacks=False
    ) as emulator:
        yield emulator


async def open_everywhere(
    open_desk: OpenDesk, tg: TelegramEmulator, twilio: TwilioEmulator, whatsapp: dict | None = None, **override: Any
) -> Desk:
    """The desk with a Telegram customer bot and a WhatsApp sender, both on their emulators (and overrides)."""
    tg.add_bot(CUSTOMER_BOT, "shop_support_bot", first_name="Shop")
    tg.user(ANN_TG, "Ann", "Lee", username="annlee")
    return await open_desk(
        telegram={
            "api_base": tg.base_url,
            "bots": [{"name": "support", "token": CUSTOMER_BOT, "webhook_secret": "customer-secret"}],
        },
        whatsapp={
            "account_sid": twilio.account_sid,
            "auth_token": twilio.auth_token,
            "sender": SENDER,
            "api_base": twilio.base_url,
        }
        | (whatsapp or {}),
        **override,
    )


@pytest.fixture
async def everywhere(open_desk: OpenDesk, tg: TelegramEmulator, twilio: TwilioEmulator) -> Desk:
    """The desk with a Telegram customer bot and a WhatsApp sender, both on their emulators."""
    return await open_everywhere(open_desk, tg, twilio)


async def boss_answers_in_the_topic(desk: Desk, text: str) -> tuple[Widget, int, dict]:
    """A visitor writes, Olga (online) gets the chat, and Boss answers in its forum topic: the visitor, the
    Telegram id of Boss's message, and the frame the visitor got."""
    await desk.online(OLGA)
    visitor = await desk.visitor("Can I get a refund?")
    stored = await desk.store.messages.collection.find_one({"text": "Can I get a refund?"})
    topic_id = (await desk.store.threads.get(stored["thread_id"])).topic_id
    update = desk.tg.text_update(OPERATOR_BOT, BOSS, text, chat_id=SUPERVISORS, message_thread_id=topic_id)
    assert await desk.send(update) == 200
    return visitor, update["message"]["message_id"], await visitor.expect("message")


async def open_forum(tg: TelegramEmulator, open_desk: OpenDesk, members: tuple[int, ...] = (BOSS, OLGA)) -> Desk:
    """The desk with a supervisors' forum supergroup (SUPERVISORS) that `members` are in."""
    tg.supergroup(SUPERVISORS, "Support supervisors", is_forum=True, members=list(members))
    return await open_desk(operator_bot={"supervisors_chat_id": SUPERVISORS})


async def from_telegram(desk: Desk, update: dict) -> None:
    """A Telegram customer's update, through the customer bot's webhook."""
    assert await desk.tg.deliver(CUSTOMER_BOT, update) == 200
    await settle(desk.app)


async def from_whatsapp(desk: Desk, twilio: TwilioEmulator, params: dict[str, str]) -> None:
    """A WhatsApp customer's message, through Twilio's signed webhook."""
    url = str(desk.client.make_url("/channels/whatsapp/inbound"))
    status, _ = await twilio.post_inbound(url, params)
    assert status == 200
    await settle(desk.app)
