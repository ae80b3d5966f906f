"""Supervisor KPIs: percentile and duration rules, periods, and /stats over a scripted day."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from gateway.model import Identity, OperatorStatus, Thread, utcnow
from operators.stats import format_duration, parse_period, percentile
from tests.operators.conftest import BOSS, OLGA, SAM, Desk

DAY = datetime(2026, 3, 2, tzinfo=UTC)


def at(hh_mm: str, day: datetime = DAY) -> datetime:
    """A time of the scripted day ("09:05", "11:00:30"), or of another day."""
    parts = [int(p) for p in hh_mm.split(":")] + [0]
    return day + timedelta(hours=parts[0], minutes=parts[1], seconds=parts[2])


def test_percentiles_use_the_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 50) == percentile([7.0], 90) == 7.0
    values = [60.0, 180.0, 300.0, 660.0, 1200.0]
    assert percentile(values, 50) == 300.0  # rank ceil(2.5) = 3
    assert percentile(values, 90) == 1200.0  # rank ceil(4.5) = 5
    assert percentile(list(reversed(values)), 50) == 300.0  # order does not matter
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0  # rank 2: no interpolation
    # 90% of 70 is exactly 63: float arithmetic (0.9 * 70 = 63.000000000000001) must not make it 64.
    assert percentile([float(n) for n in range(1, 71)], 90) == 63.0


def test_durations_are_readable() -> None:
    assert [format_duration(s) for s in (0, 5.9, 59, 60, 245, 3599, 3600, 4320, 86399, 93784, -3)] == [
        "0s",
        "5s",
        "59s",
        "1m 00s",
        "4m 05s",
        "59m 59s",
        "1h 00m",
        "1h 12m",
        "23h 59m",
        "1d 02h",
        "0s",
    ]


def test_periods_are_utc_and_end_now() -> None:
    now = datetime(2026, 3, 5, 14, 30, tzinfo=UTC)
    today = parse_period(None, now)
    assert (today.name, today.start, today.end) == ("today", datetime(2026, 3, 5, tzinfo=UTC), now)
    assert parse_period("TODAY", now) == today
    week = parse_period("7d", now)
    assert (week.start, week.end) == (now - timedelta(days=7), now)
    day = parse_period("2026-03-02", now)
    assert (day.start, day.end) == (DAY, DAY + timedelta(days=1))
    assert parse_period("2026-03-05", now).end == now  # a day still under way ends now
    assert parse_period("2026-03-06", now) is None  # not begun
    for bad in ("yesterday", "7", "2026-13-01", "-1d"):
        assert parse_period(bad, now) is None


async def open_thread(
    desk: Desk,
    who: str,
    created: datetime,
    *,
    assigned: datetime | None = None,
    answered: datetime | None = None,
    closed: datetime | None = None,
) -> Thread:
    """A conversation with chosen times, written through the real repositories."""
    store = desk.store
    identity = Identity(key=f"webwidget:web:{who}", channel="webwidget", account="web", external_id=who)
    contact, _ = await store.contacts.create(identity, created)
    thread, _ = await store.threads.open(contact.id, identity.key, "webwidget", created, None)
    if assigned is not None:
        await store.threads.claim(thread.id, OLGA, assigned)
    if answered is not None:
        await store.threads.record_outbound(thread.id, answered, by_operator=True)
    if closed is not None:
        await store.threads.close(thread.id, closed, OLGA)
    return thread


async def script_presence(desk: Desk, operator_id: int, *changes: tuple[datetime, OperatorStatus]) -> None:
    for when, status in changes:
        await desk.store.operators.set_status(operator_id, status, when)


async def test_stats_match_a_scripted_day(desk: Desk) -> None:
    on, away, off = OperatorStatus.ONLINE, OperatorStatus.AWAY, OperatorStatus.OFFLINE
    previous, following = DAY - timedelta(days=1), DAY + timedelta(days=1)
    # First response: 5m, 11m, 1m, 20m, 3m. Resolution: 30m, 1h, 1h30m, 1h. Queue wait: 2m, 10m, 30s, 1m.
    await open_thread(desk, "t1", at("09:00"), assigned=at("09:02"), answered=at("09:05"), closed=at("09:30"))
    await open_thread(desk, "t2", at("10:00"), assigned=at("10:10"), answered=at("10:11"), closed=at("11:00"))
    await open_thread(desk, "t3", at("11:00"), assigned=at("11:00:30"), answered=at("11:01"))
    await open_thread(desk, "t4", at("15:00"))  # still waiting
    # Opened the day before, closed on the day: counts as closed (and its resolution), not as opened.
    await open_thread(
        desk,
        "t5",
        at("23:00", previous),
        assigned=at("23:05", previous),
        answered=at("23:10", previous),
        closed=at("00:30"),
    )
    # Opened on the day, assigned and answered the next: opened and first response count, queue wait does not.
    await open_thread(desk, "t6", at("23:50"), assigned=at("00:05", following), answered=at("00:10", following))
    await open_thread(desk, "t7", at("12:00"), assigned=at("12:01"), answered=at("12:03"), closed=at("13:00"))
    await open_thread(desk, "t8", at("12:00", following), assigned=at("12:01", following))  # another day

    await script_presence(desk, OLGA, (at("09:00"), on), (at("12:00"), away), (at("12:30"), on), (at("17:00"), off))
    await script_presence(desk, SAM, (at("22:00", previous), on), (at("02:15"), off))  # online since the day before
    await script_presence(desk, BOSS, (at("23:00"), away))  # still away when the day ends
    await desk.store.operators.upsert(2001, name="Rita")  # removed later, but worked that day
    await script_presence(desk, 2001, (at("10:00"), on), (at("11:00"), off))
    await desk.store.operators.update(2001, {"active": False})
    await desk.store.operators.upsert(2002, name="Zed")  # removed, idle: not listed
    await desk.store.operators.update(2002, {"active": False})

    await desk.say(BOSS, "/stats 2026-03-02")
    assert desk.texts(BOSS)[-1].split("\n") == [
        "📊 2026-03-02, 00:00–24:00 UTC",
        "Conversations: 6 opened · 4 closed",
        "First response: p50 5m 00s · p90 20m 00s (of 5)",
        "Resolution: p50 1h 00m · p90 1h 30m (of 4)",
        "Queue wait: p50 1m 00s · p90 10m 00s (of 4)",
        "",
        "Time online / away:",
        "Boss: online 0s · away 1h 00m",
        "Olga: online 7h 30m · away 30m 00s",
        "Rita: online 1h 00m · away 0s",
        "Sam: online 2h 15m · away 0s",
    ]


async def test_stats_today_counts_from_midnight_utc(desk: Desk) -> None:
    now = utcnow()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    await open_thread(desk, "late", midnight - timedelta(seconds=1), closed=midnight)
    await open_thread(desk, "early", midnight)

    await desk.say(BOSS, "/stats")
    lines = desk.texts(BOSS)[-1].split("\n")
    assert re.fullmatch(r"📊 Today, 00:00–\d\d:\d\d UTC", lines[0])
    assert lines[1:5] == [
        "Conversations: 1 opened · 1 closed",
        "First response: no data",
        "Resolution: p50 1s · p90 1s (of 1)",
        "Queue wait: no data",
    ]
    await desk.say(BOSS, "/stats today")
    assert desk.texts(BOSS)[-1].split("\n")[1:5] == lines[1:5]


async def test_stats_for_the_last_seven_days(desk: Desk) -> None:
    now = utcnow()
    await open_thread(desk, "old", now - timedelta(days=8), assigned=now - timedelta(days=8))
    await open_thread(
        desk,
        "recent",
        now - timedelta(days=6),
        assigned=now - timedelta(days=6, seconds=-90),
        answered=now - timedelta(days=6, seconds=-300),
    )
    await desk.say(BOSS, "/stats 7d")
    lines = desk.texts(BOSS)[-1].split("\n")
    assert re.fullmatch(r"📊 Last 7 days, \d{4}-\d\d-\d\d \d\d:\d\d – \d{4}-\d\d-\d\d \d\d:\d\d UTC", lines[0])
    assert lines[1:5] == [
        "Conversations: 1 opened · 0 closed",
        "First response: p50 5m 00s · p90 5m 00s (of 1)",
        "Resolution: no data",
        "Queue wait: p50 1m 30s · p90 1m 30s (of 1)",
    ]


async def test_stats_in_russian_and_bad_periods(desk: Desk) -> None:
    await desk.store.operators.update(SAM, {"role": "supervisor"})
    await desk.say(SAM, "/stats 2026-03-02")
    lines = desk.texts(SAM)[-1].split("\n")
    assert lines[:5] == [
        "📊 2026-03-02, 00:00–24:00 UTC",
        "Диалоги: открыто 0 · закрыто 0",
        "Первый ответ: нет данных",
        "Решение: нет данных",
        "Ожидание в очереди: нет данных",
    ]
    assert "Sam: онлайн 0s · отошёл 0s" in lines

    usage = "Usage: /stats today|7d|YYYY-MM-DD (a day that has begun)."
    for bad in ("/stats yesterday", "/stats 30d", f"/stats {(utcnow() + timedelta(days=2)).date()}"):
        await desk.say(BOSS, bad)
        assert desk.texts(BOSS)[-1] == usage
    assert await desk.store.threads.collection.count_documents({}) == 0
