"""Local Telegram Bot API emulator for tests: speaks the real wire format so aiogram runs unmodified against it.

    async with TelegramEmulator() as tg:
        tg.add_bot("123456789:TEST_token-xyz", "gw_test_bot")
        tg.user(42, "Ann", "Lee", username="annlee")
        bot = Bot("123456789:TEST_token-xyz",
                  session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)))
        await tg.deliver("123456789:TEST_token-xyz", tg.text_update("123456789:TEST_token-xyz", 42, "/start"))
        ...
        assert tg.sent(chat_id=42)[0].text == "Welcome!"

Modules: `server` (TelegramEmulator: lifecycle, deliver, failure injection, inspection), `customers`
(users/chats and Update builders), `methods`/`messages` (Bot API methods), `world` (state), `wire`
(request decoding, envelopes), `formatting` (parse_mode → entities), `records` (what tests inspect).
"""

from .errors import ApiError
from .records import (
    CallbackAnswer,
    Deletion,
    Delivery,
    Reaction,
    RecordedRequest,
    SentMessage,
    StoredFile,
    Topic,
    UploadedFile,
    WebhookState,
)
from .server import CONFIGURED, SECRET_HEADER, TelegramEmulator

__all__ = [
    "CONFIGURED",
    "SECRET_HEADER",
    "ApiError",
    "CallbackAnswer",
    "Deletion",
    "Delivery",
    "Reaction",
    "RecordedRequest",
    "SentMessage",
    "StoredFile",
    "TelegramEmulator",
    "Topic",
    "UploadedFile",
    "WebhookState",
]
