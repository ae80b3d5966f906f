"""Nobody online: customers hear at once when to expect an answer, and off-hours conversations are served first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.helpers import settle
from tests.operators.conftest import OLGA, OpenDesk

EVERY_DAY = dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "09:00-17:00")


def closed_today() -> list[str]:
    today = datetime.now(UTC).date()
    return [(today + timedelta(days=d)).isoformat() for d in (-1, 0)]


async def test_off_hours_conversations_are_told_when_and_offered_first(open_desk: OpenDesk) -> None:
    desk = await open_desk(
        routing={"business_hours": EVERY_DAY, "holidays": closed_today(), "max_chats_per_operator": 1}
    )
    first = await desk.visitor("Hello, anyone?", client_id="a-1")
    assert (await first.expect("message"))["text"].startswith("We are closed right now. We will answer you tomorrow")
    second = await desk.visitor("Me too", client_id="b-1")
    await second.expect("message")
    await first.say("Still there?", "a-2")  # told once per conversation, not per message
    await settle(desk.app)
    notices = await desk.store.messages.collection.find({"author": "system"}).to_list()
    assert len(notices) == 2

    await desk.online(OLGA)  # room for one: the conversation that waited longest
    [assigned] = await desk.store.threads.find(operator_id=OLGA, limit=5)
    assert assigned.number == 1
    assert any("Hello, anyone?" in text for text in desk.texts(OLGA))
    await first.close()
    await second.close()


async def test_within_hours_nobody_online_gets_the_offline_message(open_desk: OpenDesk) -> None:
    desk = await open_desk(routing={"offline_message": {"en": "Nobody is online; we answer within the hour."}})
    widget = await desk.visitor("Hi")
    assert (await widget.expect("message"))["text"] == "Nobody is online; we answer within the hour."
    await widget.expect("email_request")
    await widget.close()


async def test_the_email_left_off_hours_is_on_the_card_as_unverified(open_desk: OpenDesk) -> None:
    desk = await open_desk(routing={"business_hours": EVERY_DAY, "holidays": closed_today()})
    widget = await desk.visitor("Please write back", client_id="a-1")
    await widget.expect("email_request")
    await widget.ws.send_json({"type": "identify", "email": "ann@example.com"})
    await widget.say("Thanks", "a-2")
    await settle(desk.app)
    await desk.online(OLGA)
    card = next(text for text in desk.texts(OLGA) if text.startswith("#1"))
    assert "ann@example.com (typed by the customer, unverified)" in card
    await widget.close()
