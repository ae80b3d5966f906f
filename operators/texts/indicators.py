"""Texts of what the operator is shown about their own messages: edits, delivery, waiting sends."""

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "relay.quote": "↩️ «{text}»",
        "edit.impossible": "✏️ #{number}: {channel} cannot change a message once it is sent, so the customer still "
        "has the first version. Send a correction if it matters.",
        "edit.failed": "✏️ #{number}: the customer's copy could not be changed: {reason}",
    },
    "ru": {
        "relay.quote": "↩️ «{text}»",
        "edit.impossible": "✏️ #{number}: {channel} не позволяет изменить уже отправленное сообщение, у клиента "
        "осталась первая версия. Если это важно, отправьте исправление.",
        "edit.failed": "✏️ #{number}: не удалось изменить сообщение у клиента: {reason}",
    },
}
