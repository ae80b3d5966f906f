"""Texts of the desk features: satisfaction ratings, business hours, history filters, templates, translation."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "csat.rated": "⭐ #{number} was rated {stars} ({score}/5) by the customer.",
        "csat.comment_line": "💬 “{comment}”",
        "csat.comment": "💬 The customer of #{number} commented on their rating: “{comment}”",
        "stats.csat": "Satisfaction: {count} ratings, average {average}, {good}% rated 4-5",
        "stats.csat_none": "Satisfaction: no ratings",
        "stats.csat_operator": "  {name}: {count} ratings, average {average}, {good}% rated 4-5",
        "history.only": "· only {only}",
        "history.empty_of": "{name} has no history of this type ({only}).",
        "history.filters": "Usage: /history 17 [filter] [page]; filters: {filters}",
        "template.not_whatsapp": "#{number} is not a WhatsApp conversation: templates are for WhatsApp only.",
        "template.none": "No WhatsApp templates are configured (whatsapp.templates).",
        "template.list_open": "Templates for #{number} (the 24-hour window is open: a plain reply works too):",
        "template.list_closed": "Templates for #{number}. ⏰ The 24-hour window has closed: only a template gets "
        "through until the customer writes again.",
        "card.unverified": "{value} (typed by the customer, unverified)",
        "card.window_closed": "⏰ WhatsApp's 24-hour window has closed: send a template (/template {number}).",
        "cmd.template": "WhatsApp templates for a conversation: /template 17",
        "cmd.tr": "Reply translated into the customer's language: /tr 17 text",
        "tr.shown": "#{number} 🌐 {source} → {target}: {text}",
        "tr.off": "Translation is not configured ([translation] in the config).",
        "tr.usage": "Usage: /tr 17 your reply — it is sent in the customer's language.",
        "tr.unknown": "The language of #{number}'s customer is not known yet: nothing was sent.",
        "tr.failed": "The translator could not translate the reply for #{number}: nothing was sent. "
        "Try again, or reply without /tr.",
        "tr.original": "Sent translated into {target}; the original: {text}",
        "tr.sent": "Sent to #{number} in {target}: {text}",
    },
    "ru": {
        "csat.rated": "⭐ Клиент оценил #{number}: {stars} ({score}/5).",
        "csat.comment_line": "💬 «{comment}»",
        "csat.comment": "💬 Клиент #{number} прокомментировал оценку: «{comment}»",
        "stats.csat": "Удовлетворённость: оценок {count}, средняя {average}, {good}% поставили 4–5",
        "stats.csat_none": "Удовлетворённость: оценок нет",
        "stats.csat_operator": "  {name}: оценок {count}, средняя {average}, {good}% поставили 4–5",
        "history.only": "· только {only}",
        "history.empty_of": "У клиента {name} нет истории этого типа ({only}).",
        "history.filters": "Использование: /history 17 [фильтр] [страница]; фильтры: {filters}",
        "template.not_whatsapp": "#{number} — не диалог WhatsApp: шаблоны только для WhatsApp.",
        "template.none": "Шаблоны WhatsApp не настроены (whatsapp.templates).",
        "template.list_open": "Шаблоны для #{number} (24-часовое окно открыто: обычный ответ тоже дойдёт):",
        "template.list_closed": "Шаблоны для #{number}. ⏰ 24-часовое окно закрыто: пока клиент не напишет снова, "
        "дойдёт только шаблон.",
        "card.unverified": "{value} (введён клиентом, не проверен)",
        "card.window_closed": "⏰ 24-часовое окно WhatsApp закрыто: отправьте шаблон (/template {number}).",
        "cmd.template": "Шаблоны WhatsApp для диалога: /template 17",
        "cmd.tr": "Ответ с переводом на язык клиента: /tr 17 текст",
        "tr.shown": "#{number} 🌐 {source} → {target}: {text}",
        "tr.off": "Перевод не настроен (раздел [translation] в конфигурации).",
        "tr.usage": "Использование: /tr 17 ваш ответ — он уйдёт на языке клиента.",
        "tr.unknown": "Язык клиента #{number} пока неизвестен: ничего не отправлено.",
        "tr.failed": "Переводчик не смог перевести ответ для #{number}: ничего не отправлено. "
        "Попробуйте ещё раз или ответьте без /tr.",
        "tr.original": "Отправлено в переводе на {target}; оригинал: {text}",
        "tr.sent": "Отправлено в #{number} на {target}: {text}",
    },
}
