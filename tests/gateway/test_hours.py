"""Business hours: the week in its time zone, holidays, and what a customer is told when nobody can answer."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config import ConfigError, RoutingSettings, parse_day_hours, parse_settings
from gateway.hours import BusinessHours, describe_opening
from gateway.keys import STORE
from gateway.model import Direction
from tests.helpers import Widget, settle

WEEK = {"mon": "09:00-12:00, 13:00-18:00", "tue": "09:00-18:00", "wed": "09:00-18:00", "thu": "09:00-18:00",
        "fri": "09:00-17:00"}  # fmt: skip


def hours(**routing: Any) -> BusinessHours:
    return BusinessHours(
        RoutingSettings.model_validate({"business_hours": WEEK, "time_zone": "Europe/Berlin"} | routing)
    )


def test_the_week_is_read_in_the_desks_time_zone() -> None:
    desk = hours()
    monday = datetime(2026, 3, 2, tzinfo=UTC)  # Berlin is UTC+1 in March
    assert not desk.is_open(monday.replace(hour=7, minute=59))  # 08:59 in Berlin
    assert desk.is_open(monday.replace(hour=8))  # 09:00
    assert not desk.is_open(monday.replace(hour=11, minute=30))  # the lunch break
    assert desk.is_open(monday.replace(hour=16, minute=59))
    assert not desk.is_open(monday.replace(hour=17))  # 18:00: closed
    saturday = datetime(2026, 3, 7, 10, tzinfo=UTC)
    assert not desk.is_open(saturday)
    opening = desk.next_opening(saturday)
    assert opening == datetime(2026, 3, 9, 9, tzinfo=opening.tzinfo)
    assert describe_opening(opening, saturday, "en") == "Monday at 09:00 (Europe/Berlin)"
    assert describe_opening(desk.next_opening(monday.replace(hour=11, minute=30)), monday, "en") == (
        "today at 13:00 (Europe/Berlin)"
    )
    assert (
        describe_opening(desk.next_opening(monday.replace(hour=18)), monday, "ru") == "завтра в 09:00 (Europe/Berlin)"
    )


def test_holidays_are_closed_and_summer_time_is_followed() -> None:
    desk = hours(holidays=["2026-04-03"])  # Good Friday
    assert not desk.is_open(datetime(2026, 4, 3, 10, tzinfo=UTC))
    thursday_evening = datetime(2026, 4, 2, 17, tzinfo=UTC)  # 19:00 in Berlin (UTC+2 in April)
    assert desk.next_opening(thursday_evening) == datetime(2026, 4, 6, 7, tzinfo=UTC)  # Monday 09:00 CEST
    assert hours(business_hours=None).is_open(datetime(2026, 3, 7, 3, tzinfo=UTC))  # no hours: always open
    assert hours(business_hours={}).next_opening(datetime(2026, 3, 7, tzinfo=UTC)) is None  # never open


def test_day_hours_are_parsed_or_refused_with_the_reason() -> None:
    assert parse_day_hours("") == ()
    assert parse_day_hours("13:00-18:00,09:00-12:00") == ((time(9), time(12)), (time(13), time(18)))
    assert parse_day_hours("00:00-24:00") == ((time(0), time.max),)
    for bad in ("9-17", "09:00", "18:00-09:00", "09:00-12:00,11:00-13:00", "24:00-24:30", "09:00-24:30"):
        with pytest.raises(ValueError, match=r"range|ends before|overlap|latest end"):
            parse_day_hours(bad)


@given(st.text(max_size=40))
def test_any_text_is_hours_or_a_value_error(text: str) -> None:
    try:
        ranges = parse_day_hours(text)
    except ValueError:
        return
    assert all(start < end for start, end in ranges)


def test_bad_hours_in_the_config_name_the_key() -> None:
    for routing, fragment in (
        ({"business_hours": {"monday": "09:00-18:00"}}, "routing.business_hours: unknown weekday 'monday'"),
        ({"business_hours": {"mon": "9 to 5"}}, "routing.business_hours: mon: '9to5' is not a range"),
        ({"time_zone": "Mars/Olympus"}, "routing.time_zone: 'Mars/Olympus' is not a time zone"),
        ({"holidays": ["christmas"]}, "routing.holidays[0]"),
    ):
        with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace("[", r"\[")):
            parse_settings({"routing": routing}, source="test.toml", environ={})


async def test_a_visitor_writing_off_hours_with_no_operator_bot_is_told_when_and_leaves_an_email(serve: Any) -> None:
    today = datetime.now(UTC).date()
    every_day = dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "09:00-17:00")
    holidays = [(today + timedelta(days=d)).isoformat() for d in (-1, 0)]  # closed today, whatever the hour
    client = await serve(routing={"business_hours": every_day, "holidays": holidays})
    widget = await Widget.connect(client)
    await widget.say("Anyone there?", "c-1")
    notice = await widget.expect("message")
    assert notice["author"] == {"type": "system"}
    assert notice["text"] == "We are closed right now. We will answer you tomorrow at 09:00 (UTC)."
    await widget.expect("email_request")

    await widget.ws.send_json({"type": "identify", "email": "ann@example.com"})
    await widget.say("My order is 1234", "c-2")
    await settle(client.app)
    contact = (await client.app[STORE].contacts.collection.find({}).to_list())[0]
    assert "ann@example.com" in contact["emails"] and "ann@example.com" in contact["unverified"]
    sent = await client.app[STORE].messages.collection.find({"direction": Direction.OUT.value}).to_list()
    assert len(sent) == 1  # once per conversation, not per message
    await widget.close()


def test_today_is_named_in_the_customers_language() -> None:
    now = datetime(2026, 3, 2, 6, tzinfo=UTC)
    opening = hours().next_opening(now)
    assert opening is not None and opening.date() == date(2026, 3, 2)
    assert describe_opening(opening, now, "ru") == "сегодня в 09:00 (Europe/Berlin)"
    assert describe_opening(opening, now, "xx") == "today at 09:00 (Europe/Berlin)"


async def test_with_no_operator_bot_an_offline_message_answers_at_once(serve: Any) -> None:
    client = await serve(routing={"offline_message": {"en": "We read every message and answer within a day."}})
    widget = await Widget.connect(client)
    await widget.say("Hello?", "c-1")
    assert (await widget.expect("message"))["text"] == "We read every message and answer within a day."
    await widget.expect("email_request")
    await widget.close()
