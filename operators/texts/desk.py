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
    },
}
