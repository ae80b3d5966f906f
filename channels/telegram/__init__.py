"""The Telegram channel: customer-facing bots through aiogram."""

from channels.telegram.channel import TelegramChannel

__all__ = ["TelegramChannel"]
