"""Message methods: send*, copy/forward, edit and delete, with the checks and objects of the real server."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlparse

from . import errors as e
from .call import Call
from .errors import ApiError
from .formatting import format_text, utf16_len
from .records import Deletion, Reaction, SentMessage, StoredFile, UploadedFile
from .world import FILE_KINDS, ChatState, Json, World, guess_mime, image_size, media_object

TEXT_LIMIT: Final = 4096
CAPTION_LIMIT: Final = 1024
# The emoji any chat accepts as a reaction (a chat may allow fewer; custom emoji and paid stars are not emulated).
REACTION_EMOJI: Final = frozenset({
    "👍", "👎", "❤", "🔥", "🥰", "👏", "😁", "🤔", "🤯", "😱", "🤬", "😢", "🎉", "🤩", "🤮", "💩", "🙏", "👌", "🕊", "🤡", "🥱",
    "🥴", "😍", "🐳", "❤\u200d🔥", "🌚", "🌭", "💯", "🤣", "⚡", "🍌", "🏆", "💔", "🤨", "😐", "🍓", "🍾", "💋", "🖕", "😈",
    "😴", "😭", "🤓", "👻", "👨\u200d💻", "👀", "🎃", "🙈", "😇", "😨", "🤝", "✍", "🤗", "🫡", "🎅", "🎄", "☃", "💅", "🤪",
    "🗿", "🆒", "💘", "🙉", "🦄", "😘", "💊", "🙊", "😎", "👾", "🤷\u200d♂", "🤷", "🤷\u200d♀", "😡",
})  # fmt: skip
CONTENT_KEYS: Final = (
    "text",
    "entities",
    "link_preview_options",
    "animation",
    "audio",
    "document",
    "photo",
    "sticker",
    "video",
    "video_note",
    "voice",
    "caption",
    "caption_entities",
    "show_caption_above_media",
    "has_media_spoiler",
    "contact",
    "dice",
    "location",
    "venue",
    "poll",
)
MEDIA_KEYS: Final = ("animation", "audio", "document", "photo", "sticker", "video", "video_note", "voice")
CHAT_ACTIONS: Final = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
        "cancel",
        "record_audio",
        "upload_audio",
        "pick_up_location",
    }
)
TDLIB_FILE_TYPES: Final = MappingProxyType(
    {
        "photo": "Photo",
        "document": "Document",
        "voice": "VoiceNote",
        "audio": "Audio",
        "video": "Video",
        "video_note": "VideoNote",
        "animation": "Animation",
        "sticker": "Sticker",
        "thumbnail": "Thumbnail",
    }
)


@dataclass(frozen=True)
class _FileRef:
    """What a file parameter referred to: exactly one of upload, url, stored."""

    upload: UploadedFile | None = None
    url: str | None = None
    stored: StoredFile | None = None


class MessageMethods:
    """Methods that create, change or remove messages; BotApi inherits them."""

    _world: World

    # -- sending ---------------------------------------------------------------------------------

    def send_message(self, call: Call) -> Json:
        text, entities = self._text(call, "text", "entities", TEXT_LIMIT, e.TEXT_TOO_LONG)
        if not text.strip():
            raise ApiError.bad_request(e.TEXT_EMPTY)
        content: Json = {"text": text}
        if entities:
            content["entities"] = entities
        if call.get("link_preview_options"):
            content["link_preview_options"] = call.get("link_preview_options")
        return self._send(call, content)

    def send_photo(self, call: Call) -> Json:
        return self._send_media(call, "photo")

    def send_document(self, call: Call) -> Json:
        return self._send_media(call, "document")

    def send_voice(self, call: Call) -> Json:
        return self._send_media(call, "voice")

    def send_audio(self, call: Call) -> Json:
        return self._send_media(call, "audio")

    def send_video(self, call: Call) -> Json:
        return self._send_media(call, "video")

    def send_video_note(self, call: Call) -> Json:
        return self._send_media(call, "video_note")

    def send_animation(self, call: Call) -> Json:
        return self._send_media(call, "animation")

    def send_sticker(self, call: Call) -> Json:
        return self._send_media(call, "sticker")

    def send_location(self, call: Call) -> Json:
        return self._send(call, {"location": self._location(call)})

    def send_venue(self, call: Call) -> Json:
        location = self._location(call)
        venue: Json = {"location": location, "title": call.require("title"), "address": call.require("address")}
        for key in ("foursquare_id", "foursquare_type", "google_place_id", "google_place_type"):
            if call.get(key):
                venue[key] = call.get(key)
        return self._send(call, {"venue": venue, "location": location})

    def send_contact(self, call: Call) -> Json:
        contact: Json = {"phone_number": call.require("phone_number"), "first_name": call.require("first_name")}
        for key in ("last_name", "vcard"):
            if call.get(key):
                contact[key] = call.get(key)
        return self._send(call, {"contact": contact})

    def send_chat_action(self, call: Call) -> bool:
        chat = self._chat(call)
        action = call.get("action")
        if action not in CHAT_ACTIONS:
            raise ApiError.bad_request(e.CHAT_ACTION_INVALID)
        self._world.resolve_thread(call.bot.id, chat, call.get("message_thread_id"), None)
        return True

    def send_media_group(self, call: Call) -> list[Json]:
        media = call.require("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise ApiError.bad_request("Bad Request: wrong number of media specified")
        self._chat(call)
        contents = []
        for item in media:
            kind = item.get("type") if isinstance(item, dict) else None
            if kind not in {"photo", "video", "document", "audio"}:
                raise ApiError.bad_request("Bad Request: unsupported media type in media group")
            content = self._media_content(call, kind, item)
            caption, entities = format_text(
                str(item.get("caption") or ""), item.get("parse_mode"), item.get("caption_entities")
            )
            if utf16_len(caption) > CAPTION_LIMIT:
                raise ApiError.bad_request(e.CAPTION_TOO_LONG)
            if caption:
                content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
            contents.append(content)
        group_id = str(13000000000000000 + self._world.now() * 1000 + len(self._world.sent))
        messages = []
        for index, content in enumerate(contents):
            content["media_group_id"] = group_id
            # Only the first message of an album carries the reply; the rest are plain.
            messages.append(self._send(call, content, with_reply=index == 0))
        return messages

    def copy_message(self, call: Call) -> Json:
        source = self._source(call, e.MESSAGE_TO_COPY_NOT_FOUND)
        content = {key: copy.deepcopy(source[key]) for key in CONTENT_KEYS if key in source}
        if not content:
            raise ApiError.bad_request(e.MESSAGE_CANT_BE_COPIED)
        if "caption" in call.params and any(key in content for key in MEDIA_KEYS):
            content.pop("caption", None)
            content.pop("caption_entities", None)
            caption, entities = self._text(call, "caption", "caption_entities", CAPTION_LIMIT, e.CAPTION_TOO_LONG)
            if caption:
                content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
        message = self._send(call, content)
        return {"message_id": message["message_id"]}

    def forward_message(self, call: Call) -> Json:
        source = self._source(call, e.MESSAGE_TO_FORWARD_NOT_FOUND)
        content = {key: copy.deepcopy(source[key]) for key in CONTENT_KEYS if key in source}
        if not content:
            raise ApiError.bad_request("Bad Request: the message can't be forwarded")
        origin = self._world.origin_of(source)
        forward: Json = {"forward_origin": origin, **legacy_forward_fields(origin)}
        return self._send(call, {**forward, **content}, with_reply=False, with_markup=False)

    # -- editing and deleting ----------------------------------------------------------------------

    def edit_message_text(self, call: Call) -> Json | bool:
        if call.get("inline_message_id"):
            return True
        message = self._editable(call)
        if "text" not in message:
            raise ApiError.bad_request(e.NO_TEXT_TO_EDIT)
        text, entities = self._text(call, "text", "entities", TEXT_LIMIT, e.TEXT_TOO_LONG)
        if not text.strip():
            raise ApiError.bad_request(e.TEXT_EMPTY)
        return self._apply_edit(call, message, {"text": text, "entities": entities})

    def edit_message_caption(self, call: Call) -> Json | bool:
        if call.get("inline_message_id"):
            return True
        message = self._editable(call)
        if not any(key in message for key in MEDIA_KEYS):
            raise ApiError.bad_request(e.NO_CAPTION_TO_EDIT)
        caption, entities = self._text(call, "caption", "caption_entities", CAPTION_LIMIT, e.CAPTION_TOO_LONG)
        return self._apply_edit(call, message, {"caption": caption, "caption_entities": entities})

    def edit_message_reply_markup(self, call: Call) -> Json | bool:
        if call.get("inline_message_id"):
            return True
        return self._apply_edit(call, self._editable(call), {})

    def delete_message(self, call: Call) -> bool:
        chat = self._chat(call)
        message_id = int(call.require("message_id"))
        if self._world.remove(call.bot.id, chat.id, message_id) is None:
            raise ApiError.bad_request(e.MESSAGE_TO_DELETE_NOT_FOUND)
        self._world.deletions.append(Deletion(call.bot.token, chat.id, message_id))
        return True

    def delete_messages(self, call: Call) -> bool:
        chat = self._chat(call)
        ids = call.require("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise ApiError.bad_request("Bad Request: message identifiers are not specified")
        deleted = [int(i) for i in ids if self._world.remove(call.bot.id, chat.id, int(i)) is not None]
        if not deleted:
            raise ApiError.bad_request(e.MESSAGE_TO_DELETE_NOT_FOUND)
        self._world.deletions.extend(Deletion(call.bot.token, chat.id, i) for i in deleted)
        return True

    def set_message_reaction(self, call: Call) -> bool:
        chat = self._chat(call)
        message_id = int(call.get("message_id", 0) or 0)
        if self._world.find(call.bot.id, chat.id, message_id) is None:
            raise ApiError.bad_request(e.MESSAGE_ID_INVALID)
        reaction = call.params.get("reaction") or []
        if not isinstance(reaction, list):
            raise ApiError.bad_request("Bad Request: can't parse reaction types JSON object")
        # A bot may set one reaction per message (Bot API: "Bots can set up to one reaction per message").
        if len(reaction) > 1:
            raise ApiError.bad_request(e.REACTIONS_TOO_MANY)
        emojis = []
        for item in reaction:
            if not isinstance(item, dict) or item.get("type") != "emoji" or item.get("emoji") not in REACTION_EMOJI:
                raise ApiError.bad_request(e.REACTION_INVALID)
            emojis.append(item["emoji"])
        self._world.reactions.append(Reaction(call.bot.token, chat.id, message_id, tuple(emojis)))
        return True

    # -- helpers ---------------------------------------------------------------------------------

    def _chat(self, call: Call, param: str = "chat_id") -> ChatState:
        value = call.params.get(param)
        if value is None or value == "":
            raise ApiError.bad_request(e.CHAT_ID_EMPTY if param == "chat_id" else e.required(param))
        chat = self._world.resolve_chat(value)
        if chat is None:
            raise ApiError.bad_request(e.CHAT_NOT_FOUND)
        return chat

    def _text(self, call: Call, field: str, entities_field: str, limit: int, too_long: str) -> tuple[str, list[Json]]:
        raw = call.params.get(field)
        if raw is None or raw == "":
            if field == "text":
                raise ApiError.bad_request(e.TEXT_EMPTY)
            return "", []
        text, entities = format_text(str(raw), call.get("parse_mode"), call.get(entities_field))
        # The Bot API counts "characters after entity parsing" in UTF-16 code units.
        if utf16_len(text) > limit:
            raise ApiError.bad_request(too_long)
        return text, entities

    def _markup(self, call: Call) -> Json | None:
        markup = call.params.get("reply_markup")
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise ApiError.bad_request("Bad Request: can't parse reply keyboard markup JSON object")
        keyboard = markup.get("inline_keyboard")
        if keyboard is None:
            # Reply keyboards, removals and force replies act on the client; Message.reply_markup is inline-only.
            return None
        for row in keyboard:
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode("utf-8")) <= 64:
                    raise ApiError.bad_request(e.BUTTON_DATA_INVALID)
                if not button.get("text"):
                    raise ApiError.bad_request("Bad Request: text buttons are unallowed in the inline keyboard")
        return markup if any(keyboard) else None

    def _reply(self, call: Call, chat: ChatState) -> tuple[Json | None, Json | None]:
        """(reply_to_message, extra fields such as quote / external_reply) for the new message."""
        params = call.params.get("reply_parameters")
        if params is None and call.get("reply_to_message_id"):
            params = {
                "message_id": call.get("reply_to_message_id"),
                "allow_sending_without_reply": call.flag("allow_sending_without_reply"),
            }
        if not params:
            return None, None
        if not isinstance(params, dict):
            raise ApiError.bad_request("Bad Request: can't parse reply parameters JSON object")
        target_chat = chat
        if params.get("chat_id") not in (None, chat.id):
            target_chat = self._world.resolve_chat(params["chat_id"])
            if target_chat is None:
                raise ApiError.bad_request(e.CHAT_NOT_FOUND)
        target = self._world.find(call.bot.id, target_chat.id, int(params.get("message_id") or 0))
        if target is None:
            # allow_sending_without_reply is ignored for replies in another chat (api.html ReplyParameters).
            if params.get("allow_sending_without_reply") and target_chat is chat:
                return None, None
            raise ApiError.bad_request(e.REPLY_NOT_FOUND)
        extra: Json = {}
        quote = params.get("quote")
        if quote:
            source = target.get("text") or target.get("caption") or ""
            position = source.find(quote)
            if position < 0:
                raise ApiError.bad_request(e.QUOTE_INVALID)
            extra["quote"] = {"text": quote, "position": params.get("quote_position", position), "is_manual": True}
        if target_chat is not chat:
            external: Json = {"origin": self._world.origin_of(target), "chat": dict(target["chat"])}
            external["message_id"] = target["message_id"]
            external.update({key: copy.deepcopy(target[key]) for key in MEDIA_KEYS if key in target})
            extra["external_reply"] = external
            return None, extra
        return target, extra

    def _send(self, call: Call, content: Json, *, with_reply: bool = True, with_markup: bool = True) -> Json:
        """Create, store and record a bot message; every check runs before a message_id is taken."""
        world, bot = self._world, call.bot
        chat = self._chat(call)
        markup = self._markup(call) if with_markup else None
        reply_to, extra = self._reply(call, chat) if with_reply else (None, None)
        thread_id, is_topic, starter = world.resolve_thread(bot.id, chat, call.get("message_thread_id"), reply_to)
        message = world.compose(
            chat,
            {**(extra or {}), **content},
            sender=None if chat.type == "channel" else bot.sender(),
            thread_id=thread_id,
            is_topic=is_topic,
            reply_to=reply_to or starter,
        )
        if markup is not None:
            message["reply_markup"] = markup
        if call.flag("protect_content"):
            message["has_protected_content"] = True
        world.store(bot.id, message)
        world.sent.append(SentMessage(bot.token, call.method, copy.deepcopy(message), call.params, call.files))
        return message

    def _send_media(self, call: Call, kind: str) -> Json:
        self._chat(call)
        content = self._media_content(call, kind, call.params)
        caption, entities = self._text(call, "caption", "caption_entities", CAPTION_LIMIT, e.CAPTION_TOO_LONG)
        if caption and kind not in {"sticker", "video_note"}:
            content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
        if call.flag("has_spoiler"):
            content["has_media_spoiler"] = True
        if call.flag("show_caption_above_media"):
            content["show_caption_above_media"] = True
        return self._send(call, content)

    def _media_content(self, call: Call, kind: str, source: dict[str, Any]) -> Json:
        """The `photo`/`document`/… content of a message, from a parameter dict (the call or InputMedia)."""
        ref = self._file_ref(call, kind, source.get("media", source.get(kind)))
        world, bot = self._world, call.bot
        if ref.stored is not None:
            if ref.stored.kind != kind:
                actual, wanted = TDLIB_FILE_TYPES[ref.stored.kind], TDLIB_FILE_TYPES[kind]
                raise ApiError.bad_request(f"Bad Request: can't use file of type {actual} as {wanted}")
            if kind == "photo":
                return {"photo": copy.deepcopy(world.photo_sets[ref.stored.file_id])}
            return {kind: copy.deepcopy(world.media_objects[ref.stored.file_id])}
        data, file_name, content_type = self._file_bytes(ref)
        if kind == "photo":
            return {"photo": world.photo_set(bot.id, data, source_url=ref.url)}
        default_mime = FILE_KINDS[kind][4]
        mime = guess_mime(file_name, content_type, default_mime)
        stored = world.add_file(bot.id, kind, data, file_name=file_name, mime_type=mime, source_url=ref.url)
        fields: Json = {}
        if kind in {"document", "audio", "video", "animation"}:
            fields["file_name"] = file_name
        if kind in {"video", "animation"}:
            fields.update(width=int(source.get("width") or 0), height=int(source.get("height") or 0))
        if kind in {"voice", "audio", "video", "video_note", "animation"}:
            fields["duration"] = int(source.get("duration") or 0)
        if kind == "audio":
            fields.update(performer=source.get("performer"), title=source.get("title"))
        if kind == "video_note":
            fields["length"] = int(source.get("length") or 240)
        if kind == "sticker":
            extension = (file_name or "").rsplit(".", 1)[-1].lower()
            fields.update(
                type="regular",
                width=512,
                height=512,
                is_animated=extension == "tgs",
                is_video=extension == "webm",
                emoji=source.get("emoji"),
            )
        elif kind != "video_note":
            fields["mime_type"] = mime
        thumbnail = self._thumbnail(call, source)
        if thumbnail is not None and kind in {"document", "audio", "video", "animation"}:
            # The server still emits the legacy `thumb` next to `thumbnail` (Client.cpp json_store_thumbnail).
            fields.update(thumbnail=thumbnail, thumb=dict(thumbnail))
        media = media_object(stored, **fields)
        world.media_objects[stored.file_id] = media
        content: Json = {kind: media}
        if kind == "animation":
            content["document"] = dict(media)
        return content

    def _file_ref(self, call: Call, field: str, value: Any) -> _FileRef:
        upload = call.parts.get(field) if value is None else None
        if isinstance(value, str) and value.startswith("attach://"):
            upload = call.parts.get(value[9:])
            if upload is None:
                raise ApiError.bad_request(e.FILE_ID_INVALID)
        if upload is not None:
            if not upload.data:
                raise ApiError.bad_request(e.FILE_EMPTY)
            return _FileRef(upload=upload)
        if value is None or value == "":
            raise ApiError.bad_request(e.required(field))
        value = str(value)
        if value.startswith(("http://", "https://")):
            return _FileRef(url=value)
        stored = self._world.file_for(call.bot.id, value)
        if stored is None or stored.kind == "thumbnail":
            raise ApiError.bad_request(e.FILE_ID_INVALID)
        return _FileRef(stored=stored)

    def _file_bytes(self, ref: _FileRef) -> tuple[bytes, str | None, str | None]:
        if ref.upload is not None:
            return ref.upload.data, ref.upload.filename, ref.upload.content_type
        assert ref.url is not None
        name = urlparse(ref.url).path.rsplit("/", 1)[-1] or None
        return self._world.remote_files.get(ref.url, b""), name, None

    def _thumbnail(self, call: Call, source: dict[str, Any]) -> Json | None:
        value = source.get("thumbnail")
        upload = call.parts.get(value[9:]) if isinstance(value, str) and value.startswith("attach://") else None
        if upload is None:
            upload = call.parts.get("thumbnail") if source is call.params else None
        if upload is None or not upload.data:
            return None
        stored = self._world.add_file(call.bot.id, "thumbnail", upload.data, mime_type="image/jpeg")
        width, height = image_size(upload.data) or (320, 320)
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "width": width,
            "height": height,
        }

    def _location(self, call: Call) -> Json:
        location: Json = {"latitude": call.require("latitude"), "longitude": call.require("longitude")}
        for key in ("horizontal_accuracy", "live_period", "heading"):
            if call.get(key) is not None:
                location[key] = call.get(key)
        return location

    def _source(self, call: Call, not_found: str) -> Json:
        from_chat = self._chat(call, "from_chat_id")
        source = self._world.find(call.bot.id, from_chat.id, int(call.require("message_id")))
        if source is None:
            raise ApiError.bad_request(not_found)
        return source

    def _editable(self, call: Call) -> Json:
        chat = self._chat(call)
        message = self._world.find(call.bot.id, chat.id, int(call.get("message_id", 0)))
        if message is None:
            raise ApiError.bad_request(e.MESSAGE_TO_EDIT_NOT_FOUND)
        author = message.get("from", {}).get("id")
        if author != call.bot.id and not (chat.type == "channel" and "sender_chat" in message):
            raise ApiError.bad_request(e.MESSAGE_CANT_BE_EDITED)
        return message

    def _apply_edit(self, call: Call, message: Json, changes: Json) -> Json:
        markup = self._markup(call)
        edited = dict(message)
        for key, value in changes.items():
            if value:
                edited[key] = value
            else:
                edited.pop(key, None)
        # Editing without reply_markup removes the inline keyboard, as on Telegram.
        if markup is None:
            edited.pop("reply_markup", None)
        else:
            edited["reply_markup"] = markup
        if all(edited.get(k) == message.get(k) for k in (*changes, "reply_markup")):
            raise ApiError.bad_request(e.NOT_MODIFIED)
        edited["edit_date"] = max(self._world.now(), int(message["date"]))
        self._world.store(call.bot.id, edited)
        self._world.edits.append(
            SentMessage(call.bot.token, call.method, copy.deepcopy(edited), call.params, call.files)
        )
        return edited


def legacy_forward_fields(origin: Json) -> Json:
    """The undocumented pre-7.0 forward fields the server still emits next to `forward_origin`."""
    fields: Json = {}
    if origin["type"] == "user":
        fields["forward_from"] = dict(origin["sender_user"])
    elif origin["type"] == "hidden_user":
        fields["forward_sender_name"] = origin["sender_user_name"]
    elif origin["type"] == "chat":
        fields["forward_from_chat"] = dict(origin["sender_chat"])
    else:
        fields["forward_from_chat"] = dict(origin["chat"])
        fields["forward_from_message_id"] = origin["message_id"]
    if origin.get("author_signature"):
        fields["forward_signature"] = origin["author_signature"]
    fields["forward_date"] = origin["date"]
    return fields
