"""Supervisor KPIs over a period: conversations opened and closed, response, resolution and queue times,
and each operator's time online and away.

Every period is a half-open interval [start, end) in UTC, and `end` is never later than now:
- `today`: from 00:00 UTC today until now;
- `7d`: the last 7 × 24 hours until now;
- `YYYY-MM-DD`: that UTC day (until now, if it is today).

What is counted:
- opened: threads whose created_at is in the period; closed: threads whose closed_at is;
- first response: first_response_at − created_at, for threads created in the period that got a first
  operator reply (whenever it came);
- resolution: closed_at − created_at, for threads closed in the period;
- queue wait: first_assigned_at − queued_at, for threads first assigned in the period;
- time online / away: from the presence log, clipped to the period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from gateway.model import OperatorStatus
from gateway.storage.mongo import Storage
from operators.presence import Presence
from operators.texts import t


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC; `name` is what the supervisor asked for (today, 7d or a date)."""

    name: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Spread:
    """How many durations there were, and their 50th and 90th percentiles in seconds."""

    count: int
    p50: float | None
    p90: float | None

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Spread:
        """The spread of some durations (negative ones, from clock skew, count as zero)."""
        values = [max(0.0, s) for s in seconds]
        return cls(len(values), percentile(values, 50), percentile(values, 90))


@dataclass(frozen=True)
class OperatorTime:
    name: str
    online: float
    away: float


@dataclass(frozen=True)
class Report:
    period: Period
    opened: int
    closed: int
    first_response: Spread
    resolution: Spread
    queue_wait: Spread
    operators: tuple[OperatorTime, ...]


def parse_period(arg: str | None, now: datetime) -> Period | None:
    """`today` (the default), `7d` or a `YYYY-MM-DD` day that has begun; None for anything else."""
    name = (arg or "today").strip().lower()
    if name == "today":
        return Period(name, datetime.combine(now.date(), time(), UTC), now)
    if name == "7d":
        return Period(name, now - timedelta(days=7), now)
    try:
        day = date.fromisoformat(name)
    except ValueError:
        return None
    start = datetime.combine(day, time(), UTC)
    if start > now:
        return None
    return Period(day.isoformat(), start, min(start + timedelta(days=1), now))


def percentile(values: Sequence[float], p: int) -> float | None:
    """The p-th percentile by the nearest-rank method; None when there are no values.

    With the values sorted as x_1 ≤ … ≤ x_n it is x_k for k = ⌈p · n / 100⌉ (at least 1): the smallest
    value that at least p% of the values do not exceed. It is always one of the values, never interpolated.
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-p * len(ordered) // 100))  # integer ceiling: float rounding must not shift the rank
    return ordered[rank - 1]


def format_duration(seconds: float) -> str:
    """`45s`, `4m 05s`, `1h 12m`, `2d 03h`: two units at most, rounded down to the smaller one."""
    total = int(max(0.0, seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


async def compute(store: Storage, presence: Presence, period: Period) -> Report:
    """Every KPI of a period."""
    start, end = period.start, period.end
    threads = store.threads
    return Report(
        period=period,
        opened=await threads.count_between("created_at", start, end),
        closed=await threads.count_between("closed_at", start, end),
        first_response=Spread.of(await threads.spans("created_at", "created_at", "first_response_at", start, end)),
        resolution=Spread.of(await threads.spans("closed_at", "created_at", "closed_at", start, end)),
        queue_wait=Spread.of(await threads.spans("first_assigned_at", "queued_at", "first_assigned_at", start, end)),
        operators=await _operator_times(store, presence, period),
    )


async def _operator_times(store: Storage, presence: Presence, period: Period) -> tuple[OperatorTime, ...]:
    """Active operators, plus removed ones who were online or away in the period."""
    seconds = await presence.time_in_status(period.start, period.end)
    rows = []
    for operator in await store.operators.all(active_only=False):
        spent = seconds.get(operator.id, {})
        row = OperatorTime(operator.name, spent.get(OperatorStatus.ONLINE, 0.0), spent.get(OperatorStatus.AWAY, 0.0))
        if operator.active or row.online or row.away:
            rows.append(row)
    return tuple(rows)


def render(lang: str, report: Report) -> str:
    """The report as the bot shows it."""
    lines = [
        _title(lang, report.period),
        t(lang, "stats.conversations", opened=report.opened, closed=report.closed),
        _spread(lang, "stats.first_response", report.first_response),
        _spread(lang, "stats.resolution", report.resolution),
        _spread(lang, "stats.queue_wait", report.queue_wait),
        "",
        t(lang, "stats.presence"),
    ]
    lines += [
        t(lang, "stats.operator", name=row.name, online=format_duration(row.online), away=format_duration(row.away))
        for row in report.operators
    ]
    return "\n".join(lines)


def _title(lang: str, period: Period) -> str:
    if period.name == "today":
        return t(lang, "stats.title.today", end=f"{period.end:%H:%M}")
    if period.name == "7d":
        return t(lang, "stats.title.7d", start=f"{period.start:%Y-%m-%d %H:%M}", end=f"{period.end:%Y-%m-%d %H:%M}")
    whole = period.end - period.start == timedelta(days=1)
    return t(lang, "stats.title.day", day=period.name, end="24:00" if whole else f"{period.end:%H:%M}")


def _spread(lang: str, key: str, spread: Spread) -> str:
    if not spread.count:
        return t(lang, key, value=t(lang, "stats.no_data"))
    assert spread.p50 is not None and spread.p90 is not None
    value = t(
        lang, "stats.spread", p50=format_duration(spread.p50), p90=format_duration(spread.p90), count=spread.count
    )
    return t(lang, key, value=value)
