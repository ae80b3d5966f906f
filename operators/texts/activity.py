"""Texts of what operators are told without asking: chats they lost, what their widget visitors do."""

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "lost.offline": "↩️ #{number} went back to the queue: you went offline.",
        "lost.away_too_long": "↩️ #{number} went back to the queue: you were away for more than {minutes} min.",
        "lost.offline_too_long": "↩️ #{number} went back to the queue: you were offline for more than {minutes} min.",
        "lost.removed": "↩️ #{number} went back to the queue: you were removed from the team.",
        "lost.queue": "↩️ #{number} went back to the queue.",
        "lost.moved_by": "↪️ {who} moved #{number} to {target}.",
        "lost.the_queue": "the queue",
        "visitor.page": "🧭 #{number} · on {page}",
        "visitor.pages": "🧭 #{number} · on {page} (before: {before})",
        "visitor.identified": "🪪 #{number} · the visitor says they are {details} (unverified)",
        "visitor.left": "🚪 #{number} · the visitor left the website",
        "visitor.back": "🔙 #{number} · the visitor is back on the website",
        "chats.left": " · 🚪 left the website",
    },
    "ru": {
        "lost.offline": "↩️ #{number} вернулся в очередь: вы вышли из сети.",
        "lost.away_too_long": "↩️ #{number} вернулся в очередь: вы отошли больше чем на {minutes} мин.",
        "lost.offline_too_long": "↩️ #{number} вернулся в очередь: вы не в сети больше {minutes} мин.",
        "lost.removed": "↩️ #{number} вернулся в очередь: вас удалили из команды.",
        "lost.queue": "↩️ #{number} вернулся в очередь.",
        "lost.moved_by": "↪️ {who} передал(а) #{number}: {target}.",
        "lost.the_queue": "очередь",
        "visitor.page": "🧭 #{number} · на странице {page}",
        "visitor.pages": "🧭 #{number} · на странице {page} (до этого: {before})",
        "visitor.identified": "🪪 #{number} · посетитель представился: {details} (не проверено)",
        "visitor.left": "🚪 #{number} · посетитель ушёл с сайта",
        "visitor.back": "🔙 #{number} · посетитель вернулся на сайт",
        "chats.left": " · 🚪 ушёл с сайта",
    },
}
