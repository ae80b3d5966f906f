"""The Telegram channel: customer-facing bots through aiogram."""
