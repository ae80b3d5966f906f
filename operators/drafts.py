"""An operator's Telegram message as something the gateway can send on any channel."""

from __future__ import annotations

from dataclasses import replace

from aiogram.types import Message as TgMessage
from bson import ObjectId

from channels.telegram.content import content_of
from gateway.conversations import Draft
from gateway.model import Author, Kind, Message, Operator
from operators.relay import SOURCE


def draft_of(message: TgMessage, operator: Operator, quoted: Message | None) -> Draft | None:
    """The operator's Telegram message, answering the customer's `quoted` one, as something the gateway can send
    on any channel; None if it cannot."""
    content = content_of(message, SOURCE, None)
    if content.kind is Kind.UNSUPPORTED or (content.kind is Kind.TEXT and not content.text):
        return None
    return Draft(
        replace(content, reply_to=str(quoted.id) if quoted else None),
        id=ObjectId(),
        author=Author.OPERATOR,
        author_id=operator.id,
        author_name=operator.name,
        origin=(message.chat.id, message.message_id),
        quoted=quoted,
    )
