"""Ratings in the operator bot: the operator who closed a conversation hears how the customer rated it."""

from __future__ import annotations

from datetime import datetime

from aiogram.methods import SendMessage

from gateway.csat import ThreadRated
from gateway.events import EventBus
from gateway.storage.mongo import Storage
from operators.relay import Relay
from operators.texts import t


async def satisfaction(store: Storage, lang: str, start: datetime, end: datetime, *, enabled: bool) -> list[str]:
    """The ratings given in [start, end) for /stats: responses, average, share of 4-5, and per operator (nothing
    at all when there are none and the survey is off)."""
    ratings = await store.ratings.between(start, end)
    if not ratings:
        return [t(lang, "stats.csat_none")] if enabled else []
    lines = [t(lang, "stats.csat", **_summary([score for score, _ in ratings]))]
    by_operator: dict[int, list[int]] = {}
    for score, operator_id in ratings:
        if operator_id is not None:
            by_operator.setdefault(operator_id, []).append(score)
    names = {o.id: o.name for o in await store.operators.all(active_only=False)}
    for operator_id, scores in sorted(by_operator.items(), key=lambda item: names.get(item[0], str(item[0]))):
        name = names.get(operator_id, str(operator_id))
        lines.append(t(lang, "stats.csat_operator", name=name, **_summary(scores)))
    return lines


def _summary(scores: list[int]) -> dict[str, object]:
    good = sum(1 for s in scores if s >= 4)
    return {
        "count": len(scores),
        "average": f"{sum(scores) / len(scores):.1f}",
        "good": round(100 * good / len(scores)),
    }


def stars(score: int) -> str:
    """`★★★★☆` for 4."""
    return "★" * score + "☆" * (5 - score)


class RatingAlerts:
    """Tells the operator who closed (else who handled) a thread its rating, and the comment when it comes."""

    def __init__(self, store: Storage, relay: Relay) -> None:
        self.store = store
        self.relay = relay

    def subscribe(self, bus: EventBus) -> None:
        """Hear of every rating and comment."""
        bus.subscribe(ThreadRated, self._on_rated)

    async def _on_rated(self, event: ThreadRated) -> None:
        thread, rating = event.thread, event.thread.csat
        operator_id = thread.closed_by or thread.operator_id
        if rating is None or operator_id is None:
            return
        operator = await self.store.operators.get(operator_id)
        if operator is None or not operator.active:
            return
        lang = self.relay.lang(operator)
        if event.commented:
            text = t(lang, "csat.comment", number=thread.number, comment=rating.comment or "")
        else:
            text = t(lang, "csat.rated", number=thread.number, stars=stars(rating.score), score=rating.score)
            if rating.comment:
                text += "\n" + t(lang, "csat.comment_line", comment=rating.comment)
        await self.relay.send(operator.id, thread, None, SendMessage(chat_id=operator.id, text=text))
