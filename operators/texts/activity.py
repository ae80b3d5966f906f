"""Texts of what operators are told without asking: chats they lost, what their widget visitors do."""

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "lost.offline": "📤 #{number} went back to the queue: you went offline.",
        "lost.away_too_long": "📤 #{number} went back to the queue: you were away for more than {minutes} min.",
        "lost.offline_too_long": "📤 #{number} went back to the queue: you were offline for more than {minutes} min.",
        "lost.removed": "📤 #{number} went back to the queue: you were removed from the team.",
        "lost.queue": "📤 #{number} went back to the queue.",
        "lost.moved_by": "↪️ {who} moved #{number} to {target}.",
        "lost.the_queue": "the queue",
        "visitor.page": "🧭 #{number} · on {page}",
        "visitor.pages": "🧭 #{number} · on {page} (before: {before})",
        "visitor.identified": "🪪 #{number} · the visitor says they are {details} (unverified)",
        "visitor.left": "🚪 #{number} · the visitor left the website",
        "visitor.back": "🔙 #{number} · the visitor is back on the website",
        "chats.left": " · 🚪 left the website",
        "help.activity": "What the bot shows you:\n"
        "#17 · … — a message of conversation #17: reply to it to answer\n"
        "✏️ — the customer edited a message · 📝 — an internal note\n"
        "🧭 — the page a website visitor is on (one line per half minute, updated as they move on)\n"
        "🪪 — what a visitor typed about themselves (unverified)\n"
        "🚪 — the visitor left the website (no chat window open for a minute; /chats shows it too) · "
        "🔙 — they came back\n"
        "“typing…” — the customer is typing; website visitors see you typing while your answer is on its way\n"
        "📤 — a conversation went back to the queue (you went offline, or were away or offline too long)\n"
        "↪️ — a conversation was moved to someone else · ✅ in /chats — your active conversation",
    },
    "ru": {
        "lost.offline": "📤 #{number} вернулся в очередь: вы вышли из сети.",
        "lost.away_too_long": "📤 #{number} вернулся в очередь: вы отошли больше чем на {minutes} мин.",
        "lost.offline_too_long": "📤 #{number} вернулся в очередь: вы не в сети больше {minutes} мин.",
        "lost.removed": "📤 #{number} вернулся в очередь: вас удалили из команды.",
        "lost.queue": "📤 #{number} вернулся в очередь.",
        "lost.moved_by": "↪️ {who} передал(а) #{number}: {target}.",
        "lost.the_queue": "очередь",
        "visitor.page": "🧭 #{number} · на странице {page}",
        "visitor.pages": "🧭 #{number} · на странице {page} (до этого: {before})",
        "visitor.identified": "🪪 #{number} · посетитель представился: {details} (не проверено)",
        "visitor.left": "🚪 #{number} · посетитель ушёл с сайта",
        "visitor.back": "🔙 #{number} · посетитель вернулся на сайт",
        "chats.left": " · 🚪 ушёл с сайта",
        "help.activity": "Что показывает бот:\n"
        "#17 · … — сообщение диалога #17: ответьте (reply) на него, чтобы ответить клиенту\n"
        "✏️ — клиент исправил сообщение · 📝 — внутренняя заметка\n"
        "🧭 — страница, на которой посетитель сайта сейчас (одна строка в полминуты, обновляется по ходу)\n"
        "🪪 — что посетитель сам написал о себе (не проверено)\n"
        "🚪 — посетитель ушёл с сайта (минуту нет открытого окна чата; видно и в /chats) · "
        "🔙 — вернулся\n"
        "«печатает…» — клиент печатает; посетители сайта видят, что вы печатаете, пока ответ в пути\n"
        "📤 — диалог вернулся в очередь (вы вышли из сети или слишком долго отсутствовали)\n"
        "↪️ — диалог передан другому · ✅ в /chats — ваш активный диалог",
    },
}
