"""Texts of what the operator is shown about their own messages: edits, delivery, waiting sends."""

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "relay.quote": "↩️ «{text}»",
        "help.indicators": "What you see on your messages and in your chat:\n"
        "✍ waiting to be sent; a ⏳ note under it says why (flood control, a retry) and goes away once it is sent\n"
        "👌 sent (Telegram tells a bot no more than that)\n"
        "👍 delivered (WhatsApp; web chat: shown in an open tab)\n"
        "👀 read (WhatsApp, web chat)\n"
        "💔 not delivered; the reason follows, with Retry when trying again may help\n"
        "✏️ edit a sent message to change the customer's copy too (Telegram, web chat; WhatsApp cannot, you are told)\n"
        "↩️ «…» what the customer's message answers, when that is not in your chat to reply to\n"
        "→ Name: a message someone else sent into your conversation; → Name (API): one written through the REST API",
        "edit.impossible": "✏️ #{number}: {channel} cannot change a message once it is sent, so the customer still "
        "has the first version. Send a correction if it matters.",
        "edit.failed": "✏️ #{number}: the customer's copy could not be changed: {reason}",
        "edit.refused": "✏️ #{number}: this message cannot be changed for the customer: {reason}. Send a correction "
        "if it matters.",
        "delivery.waiting": "⏳ #{number}: not sent yet, trying again in {wait}: {reason}",
    },
    "ru": {
        "relay.quote": "↩️ «{text}»",
        "help.indicators": "Что видно на ваших сообщениях и в чате:\n"
        "✍ ждёт отправки; заметка ⏳ под ним объясняет почему (ограничение частоты, повтор) и исчезает после отправки\n"
        "👌 отправлено (Telegram больше ничего боту не сообщает)\n"
        "👍 доставлено (WhatsApp; веб-чат: показано в открытой вкладке)\n"
        "👀 прочитано (WhatsApp, веб-чат)\n"
        "💔 не доставлено; следом причина и, если поможет, кнопка «Повторить»\n"
        "✏️ исправьте отправленное сообщение, и оно изменится у клиента (Telegram, веб-чат; в WhatsApp нельзя, бот "
        "скажет)\n"
        "↩️ «…» на что отвечает клиент, если этого сообщения нет в вашем чате\n"
        "→ Имя: сообщение, которое в ваш диалог отправил кто-то другой; → Имя (API): написанное через REST API",
        "edit.impossible": "✏️ #{number}: {channel} не позволяет изменить уже отправленное сообщение, у клиента "
        "осталась первая версия. Если это важно, отправьте исправление.",
        "edit.failed": "✏️ #{number}: не удалось изменить сообщение у клиента: {reason}",
        "edit.refused": "✏️ #{number}: это сообщение нельзя изменить у клиента: {reason}. Если это важно, отправьте "
        "исправление.",
        "delivery.waiting": "⏳ #{number}: ещё не отправлено, следующая попытка через {wait}: {reason}",
    },
}
