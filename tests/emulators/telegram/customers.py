"""Test-side helpers: register users and chats, and build the Updates Telegram would send to a bot.

Every builder stores the message it creates (so bot replies, reply_to and callbacks find it) and
returns a fresh Update dict with the bot's next update_id. Deliver it with `emulator.deliver()`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, Final, Literal

from .errors import ApiError
from .formatting import detect_entities
from .messages import legacy_forward_fields
from .methods import create_topic
from .world import DEFAULT_ICON_COLOR, BotState, ChatState, Json, World, media_object

_SELF: Final = "self"
# A minimal JPEG (SOI … EOI) large enough that every PhotoSize gets distinct, non-empty bytes.
_FAKE_JPEG: Final = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(range(256)) * 8 + b"\xff\xd9"
)


class UpdateBuilders:
    """Users, chats and Update builders; mixed into TelegramEmulator."""

    _world: World

    # -- registry --------------------------------------------------------------------------------

    def user(
        self,
        user_id: int,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "en",
        *,
        is_premium: bool = False,
        hides_forwards: bool = False,
    ) -> Json:
        """Register (or rename) a Telegram user and their private chat (chat id == user id); returns the User."""
        user: Json = {"id": user_id, "is_bot": False, "first_name": first_name}
        chat: Json = {"id": user_id, "first_name": first_name}
        for key, value in (("last_name", last_name), ("username", username)):
            if value:
                user[key] = chat[key] = value
        if language_code:
            user["language_code"] = language_code
        if is_premium:
            user["is_premium"] = True
        chat["type"] = "private"
        self._world.users[user_id] = user
        self._world.hidden_forwards.discard(user_id)
        if hides_forwards:
            self._world.hidden_forwards.add(user_id)
        self._register_chat(chat)
        return dict(user)

    def supergroup(
        self,
        chat_id: int,
        title: str,
        is_forum: bool = True,
        *,
        members: Iterable[int] = (),
        username: str | None = None,
    ) -> Json:
        """Register a supergroup (a forum by default) with the given member user ids; returns the Chat."""
        chat: Json = {"id": chat_id, "title": title}
        if username:
            chat["username"] = username
        if is_forum:
            chat["is_forum"] = True
        chat["type"] = "supergroup"
        return self._register_chat(chat, members)

    def group(self, chat_id: int, title: str, *, members: Iterable[int] = ()) -> Json:
        """Register a basic group; returns the Chat."""
        return self._register_chat({"id": chat_id, "title": title, "type": "group"}, members)

    def channel(self, chat_id: int, title: str, *, username: str | None = None) -> Json:
        """Register a channel; returns the Chat."""
        chat: Json = {"id": chat_id, "title": title}
        if username:
            chat["username"] = username
        chat["type"] = "channel"
        return self._register_chat(chat)

    def create_topic(
        self,
        chat_id: int,
        name: str,
        creator: int | str,
        *,
        icon_color: int = DEFAULT_ICON_COLOR,
        icon_custom_emoji_id: str | None = None,
    ) -> int:
        """Open a forum topic as a user id or a bot token would; returns its message_thread_id."""
        chat = self._world.chat(chat_id)
        if not chat.is_forum:
            raise ValueError(f"chat {chat_id} is not a forum")
        sender = self._bot_state(creator).sender() if isinstance(creator, str) else self._world.user(creator)
        topic = create_topic(
            self._world, chat, name, icon_color=icon_color, icon_custom_emoji_id=icon_custom_emoji_id, sender=sender
        )
        return topic.message_thread_id

    # -- message updates -------------------------------------------------------------------------

    def message_update(
        self,
        token: str,
        user_id: int,
        content: Json,
        *,
        chat_id: int | None = None,
        message_thread_id: int | None = None,
        reply_to: int | None = None,
        media_group_id: str | None = None,
        date: int | None = None,
    ) -> Json:
        """A `message` update from a user with arbitrary content (e.g. {"dice": {...}}); the base of all builders.

        chat_id defaults to the user's private chat; message_thread_id targets a forum topic;
        reply_to is the message_id (same chat) the user replies to.
        """
        bot = self._bot_state(token)
        chat = self._world.chat(user_id if chat_id is None else chat_id)
        if chat.type == "channel":
            raise ValueError("use channel_post_update() for channels")
        target = None
        if reply_to is not None:
            target = self._world.find(bot.id, chat.id, reply_to)
            if target is None:
                raise KeyError(f"message {reply_to} not found in chat {chat.id}")
        try:
            thread_id, is_topic, starter = self._world.resolve_thread(bot.id, chat, message_thread_id, target)
        except ApiError as error:
            raise ValueError(f"{error.description} (thread {message_thread_id} in chat {chat.id})") from None
        message = self._world.compose(
            chat,
            copy.deepcopy(content),
            sender=self._world.user(user_id),
            thread_id=thread_id,
            is_topic=is_topic,
            reply_to=target or starter,
            date=date,
        )
        if media_group_id is not None:
            message["media_group_id"] = media_group_id
        if chat.type != "private":
            chat.members.add(user_id)
        self._world.store(bot.id, message)
        return self._wrap(bot, "message", message)

    def text_update(
        self, token: str, user_id: int, text: str, *, entities: list[Json] | None = None, **common: Any
    ) -> Json:
        """A text message; entities default to what Telegram detects (/commands, urls, @mentions, …)."""
        content: Json = {"text": text}
        found = detect_entities(text) if entities is None else entities
        if found:
            content["entities"] = found
        return self.message_update(token, user_id, content, **common)

    def photo_update(
        self,
        token: str,
        user_id: int,
        data: bytes | None = None,
        *,
        caption: str | None = None,
        size: tuple[int, int] | None = None,
        file_size: int | None = None,
        **common: Any,
    ) -> Json:
        """A photo: PhotoSize array smallest first; getFile/download of the last size returns `data`."""
        bot = self._bot_state(token)
        sizes = self._world.photo_set(bot.id, _FAKE_JPEG if data is None else data, size=size, declared_size=file_size)
        return self.message_update(token, user_id, {"photo": sizes, **_caption(caption)}, **common)

    def document_update(
        self,
        token: str,
        user_id: int,
        data: bytes = b"%PDF-1.4\n% emulated document\n%%EOF\n",
        *,
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
        file_size: int | None = None,
        **common: Any,
    ) -> Json:
        """A document (file_size fakes a huge file without allocating it, e.g. to trigger `file is too big`)."""
        media = self._media(token, "document", data, file_size, file_name=file_name, mime_type=mime_type)
        return self.message_update(token, user_id, {"document": media, **_caption(caption)}, **common)

    def voice_update(
        self,
        token: str,
        user_id: int,
        data: bytes = b"OggS\x00\x02emulated-opus-voice",
        *,
        duration: int = 3,
        mime_type: str = "audio/ogg",
        caption: str | None = None,
        file_size: int | None = None,
        **common: Any,
    ) -> Json:
        """A voice note (OGG/Opus)."""
        media = self._media(token, "voice", data, file_size, duration=duration, mime_type=mime_type)
        return self.message_update(token, user_id, {"voice": media, **_caption(caption)}, **common)

    def audio_update(
        self,
        token: str,
        user_id: int,
        data: bytes = b"ID3\x04\x00emulated-mp3",
        *,
        duration: int = 180,
        performer: str | None = None,
        title: str | None = None,
        file_name: str = "audio.mp3",
        mime_type: str = "audio/mpeg",
        caption: str | None = None,
        file_size: int | None = None,
        **common: Any,
    ) -> Json:
        """A music file."""
        media = self._media(
            token,
            "audio",
            data,
            file_size,
            duration=duration,
            performer=performer,
            title=title,
            file_name=file_name,
            mime_type=mime_type,
        )
        return self.message_update(token, user_id, {"audio": media, **_caption(caption)}, **common)

    def video_update(
        self,
        token: str,
        user_id: int,
        data: bytes = b"\x00\x00\x00\x18ftypmp42emulated-video",
        *,
        width: int = 1280,
        height: int = 720,
        duration: int = 10,
        file_name: str = "video.mp4",
        mime_type: str = "video/mp4",
        caption: str | None = None,
        file_size: int | None = None,
        **common: Any,
    ) -> Json:
        """A video."""
        media = self._media(
            token,
            "video",
            data,
            file_size,
            width=width,
            height=height,
            duration=duration,
            file_name=file_name,
            mime_type=mime_type,
        )
        return self.message_update(token, user_id, {"video": media, **_caption(caption)}, **common)

    def video_note_update(
        self,
        token: str,
        user_id: int,
        data: bytes = b"\x00\x00\x00\x18ftypmp42emulated-round-video",
        *,
        length: int = 240,
        duration: int = 5,
        file_size: int | None = None,
        **common: Any,
    ) -> Json:
        """A round video note."""
        media = self._media(token, "video_note", data, file_size, length=length, duration=duration)
        return self.message_update(token, user_id, {"video_note": media}, **common)

    def sticker_update(
        self,
        token: str,
        user_id: int,
        emoji: str = "😀",
        *,
        data: bytes = b"RIFF\x00\x00\x00\x00WEBPVP8 emulated-sticker",
        set_name: str | None = "EmulatedPack",
        is_animated: bool = False,
        is_video: bool = False,
        **common: Any,
    ) -> Json:
        """A sticker with its emoji."""
        media = self._media(
            token,
            "sticker",
            data,
            None,
            type="regular",
            width=512,
            height=512,
            is_animated=is_animated,
            is_video=is_video,
            emoji=emoji,
            set_name=set_name,
        )
        return self.message_update(token, user_id, {"sticker": media}, **common)

    def location_update(
        self,
        token: str,
        user_id: int,
        latitude: float,
        longitude: float,
        *,
        horizontal_accuracy: float | None = None,
        live_period: int | None = None,
        heading: int | None = None,
        **common: Any,
    ) -> Json:
        """A (live) location."""
        location = _location(
            latitude, longitude, horizontal_accuracy=horizontal_accuracy, live_period=live_period, heading=heading
        )
        return self.message_update(token, user_id, {"location": location}, **common)

    def venue_update(
        self,
        token: str,
        user_id: int,
        latitude: float,
        longitude: float,
        title: str,
        address: str,
        *,
        foursquare_id: str | None = None,
        google_place_id: str | None = None,
        **common: Any,
    ) -> Json:
        """A venue; like Telegram it also sets `location`."""
        location = _location(latitude, longitude)
        venue: Json = {"location": location, "title": title, "address": address}
        if foursquare_id:
            venue["foursquare_id"] = foursquare_id
        if google_place_id:
            venue["google_place_id"] = google_place_id
        return self.message_update(token, user_id, {"venue": venue, "location": dict(location)}, **common)

    def contact_update(
        self,
        token: str,
        user_id: int,
        phone_number: str,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        contact_user_id: int | Literal["self"] | None = _SELF,
        vcard: str | None = None,
        **common: Any,
    ) -> Json:
        """A shared contact; by default the user's own (user_id == sender, names from the profile).

        phone_number is passed through verbatim: clients differ on a leading '+'.
        """
        sender = self._world.user(user_id)
        own = contact_user_id == _SELF
        contact: Json = {
            "phone_number": phone_number,
            "first_name": first_name or (sender["first_name"] if own else "Contact"),
        }
        last = last_name if last_name is not None or not own else sender.get("last_name")
        if last:
            contact["last_name"] = last
        if own or contact_user_id is not None:
            contact["user_id"] = user_id if own else contact_user_id
        if vcard:
            contact["vcard"] = vcard
        return self.message_update(token, user_id, {"contact": contact}, **common)

    def forwarded_update(
        self,
        token: str,
        user_id: int,
        text: str | None = None,
        *,
        content: Json | None = None,
        origin_user_id: int | None = None,
        hidden_sender_name: str | None = None,
        origin_chat_id: int | None = None,
        origin_message_id: int = 1,
        forward_date: int | None = None,
        **common: Any,
    ) -> Json:
        """A message the user forwarded: `forward_origin` plus the legacy forward_from/forward_date fields.

        The origin is a registered user (hidden_user if they hide forwards), a hidden name,
        or a registered channel/group.
        """
        date = self._world.now() - 3600 if forward_date is None else forward_date
        origin: Json
        if origin_user_id is not None:
            origin_user = self._world.user(origin_user_id)
            if origin_user_id in self._world.hidden_forwards:
                name = " ".join(filter(None, (origin_user["first_name"], origin_user.get("last_name"))))
                origin = {"type": "hidden_user", "sender_user_name": name, "date": date}
            else:
                origin = {"type": "user", "sender_user": origin_user, "date": date}
        elif hidden_sender_name is not None:
            origin = {"type": "hidden_user", "sender_user_name": hidden_sender_name, "date": date}
        elif origin_chat_id is not None:
            origin_chat = dict(self._world.chat(origin_chat_id).chat)
            if origin_chat["type"] == "channel":
                origin = {"type": "channel", "chat": origin_chat, "message_id": origin_message_id, "date": date}
            else:
                origin = {"type": "chat", "sender_chat": origin_chat, "date": date}
        else:
            raise ValueError("give origin_user_id, hidden_sender_name or origin_chat_id")
        if (text is None) == (content is None):
            raise ValueError("give exactly one of text or content")
        body = dict(content) if content is not None else {"text": text}
        if text is not None and (found := detect_entities(text)):
            body["entities"] = found
        forward = {"forward_origin": origin, **legacy_forward_fields(origin)}
        return self.message_update(token, user_id, {**forward, **body}, **common)

    def channel_post_update(
        self, token: str, chat_id: int, text: str | None = None, *, content: Json | None = None
    ) -> Json:
        """A `channel_post` (no `from`; `sender_chat` is the channel)."""
        bot = self._bot_state(token)
        chat = self._world.chat(chat_id)
        if chat.type != "channel":
            raise ValueError(f"chat {chat_id} is not a channel")
        body = copy.deepcopy(content) if content is not None else {"text": text or ""}
        message = self._world.compose(chat, body, sender=None)
        self._world.store(bot.id, message)
        return self._wrap(bot, "channel_post", message)

    def edited_update(
        self,
        token: str,
        chat_id: int,
        message_id: int,
        *,
        text: str | None = None,
        caption: str | None = None,
        entities: list[Json] | None = None,
        edit_date: int | None = None,
    ) -> Json:
        """`edited_message` (or `edited_channel_post`): same message_id and date, new content and `edit_date`."""
        bot = self._bot_state(token)
        original = self._world.find(bot.id, chat_id, message_id)
        if original is None:
            raise KeyError(f"message {message_id} not found in chat {chat_id}")
        edited = dict(original)
        if text is not None:
            edited["text"] = text
            edited.pop("entities", None)
            found = detect_entities(text) if entities is None else entities
            if found:
                edited["entities"] = found
        if caption is not None:
            edited["caption"] = caption
            edited.pop("caption_entities", None)
        edited["edit_date"] = max(self._world.now(), int(original["date"]) + 1) if edit_date is None else edit_date
        self._world.store(bot.id, edited)
        kind = "edited_channel_post" if edited["chat"]["type"] == "channel" else "edited_message"
        return self._wrap(bot, kind, edited)

    def callback_update(
        self,
        token: str,
        user_id: int,
        message_id: int,
        data: str | None = None,
        *,
        chat_id: int | None = None,
        button_text: str | None = None,
    ) -> Json:
        """A `callback_query`: the user presses the inline button (by callback_data or text) of a stored bot message."""
        bot = self._bot_state(token)
        chat_id = user_id if chat_id is None else chat_id
        message = self._world.find(bot.id, chat_id, message_id)
        if message is None:
            raise KeyError(f"message {message_id} not found in chat {chat_id}")
        buttons = [b for row in (message.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]
        pressed = next(
            (
                b
                for b in buttons
                if "callback_data" in b
                and (data is None or b["callback_data"] == data)
                and (button_text is None or b["text"] == button_text)
            ),
            None,
        )
        if pressed is None:
            raise ValueError(f"message {message_id} has no callback button matching data={data!r} text={button_text!r}")
        query_id = self._world.new_callback_id()
        bot.callback_queries[query_id] = False
        query: Json = {
            "id": query_id,
            "from": self._world.user(user_id),
            "message": copy.deepcopy(message),
            "chat_instance": str(-4512345678901234567 + chat_id),
            "data": pressed["callback_data"],
        }
        return self._wrap(bot, "callback_query", query)

    def my_chat_member_update(
        self, token: str, user_id: int, new_status: str = "kicked", old_status: str = "member"
    ) -> Json:
        """`my_chat_member` in a private chat: "kicked" is what Telegram sends when the user blocks the bot."""
        bot = self._bot_state(token)
        chat = self._world.chat(user_id)

        def member(status: str) -> Json:
            entry: Json = {"user": bot.sender(), "status": status}
            if status == "kicked":
                entry["until_date"] = 0
            return entry

        update = {
            "chat": dict(chat.chat),
            "from": self._world.user(user_id),
            "date": self._world.now(),
            "old_chat_member": member(old_status),
            "new_chat_member": member(new_status),
        }
        return self._wrap(bot, "my_chat_member", update)

    # -- helpers ---------------------------------------------------------------------------------

    def _bot_state(self, token: str) -> BotState:
        try:
            return self._world.bots[token]
        except KeyError:
            raise KeyError("unknown bot token; call emulator.add_bot() first") from None

    def _register_chat(self, chat: Json, members: Iterable[int] = ()) -> Json:
        existing = self._world.chats.get(chat["id"])
        if existing is None:
            existing = self._world.chats[chat["id"]] = ChatState(chat)
        else:
            existing.chat = chat
        existing.members.update(members)
        return dict(chat)

    def _media(self, token: str, kind: str, data: bytes, file_size: int | None, **fields: Any) -> Json:
        bot = self._bot_state(token)
        stored = self._world.add_file(
            bot.id,
            kind,
            data,
            file_name=fields.get("file_name"),
            mime_type=fields.get("mime_type"),
            declared_size=file_size,
        )
        media = media_object(stored, **fields)
        self._world.media_objects[stored.file_id] = media
        return media

    def _wrap(self, bot: BotState, kind: str, payload: Json) -> Json:
        return {"update_id": bot.take_update_id(), kind: copy.deepcopy(payload)}


def _caption(caption: str | None) -> Json:
    if not caption:
        return {}
    found = detect_entities(caption)
    return {"caption": caption, "caption_entities": found} if found else {"caption": caption}


def _location(latitude: float, longitude: float, **optional: Any) -> Json:
    location: Json = {"latitude": latitude, "longitude": longitude}
    location.update({key: value for key, value in optional.items() if value is not None})
    return location
