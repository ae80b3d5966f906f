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
        "card.window_closed": "⏰ WhatsApp's 24-hour window has closed: send a template (/template {number}).",
        "cmd.template": "WhatsApp templates for a conversation: /template 17",
        "cmd.tr": "Reply translated into the customer's language: /tr 17 text",
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
        "card.window_closed": "⏰ 24-часовое окно WhatsApp закрыто: отправьте шаблон (/template {number}).",
        "cmd.template": "Шаблоны WhatsApp для диалога: /template 17",
        "cmd.tr": "Ответ с переводом на язык клиента: /tr 17 текст",
    },
}
