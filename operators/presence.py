"""Operator status (online, away, offline) and its history, the source of time-in-status KPIs."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

from gateway.events import EventBus, OperatorStatusChanged
from gateway.model import Operator, OperatorStatus, utcnow
from gateway.storage.mongo import Storage

logger = logging.getLogger(__name__)


class Presence:
    """Changes operator status, logs every change and publishes it."""

    def __init__(self, store: Storage, bus: EventBus) -> None:
        self.store = store
        self.bus = bus

    async def set_status(self, operator_id: int, status: OperatorStatus) -> Operator | None:
        """Set an operator's status; None for an unknown operator."""
        result = await self.store.operators.set_status(operator_id, status, utcnow())
        if result is None:
            return None
        operator, previous = result
        if previous is not status:
            logger.info("operator %s is %s (was %s)", operator_id, status.value, previous.value)
            self.bus.publish(OperatorStatusChanged(operator=operator, previous=previous))
        return operator

    async def time_in_status(self, start: datetime, end: datetime) -> dict[int, dict[OperatorStatus, float]]:
        """Seconds each operator spent in each status between start and end."""
        log = self.store.operators.presence_log
        totals: dict[int, dict[OperatorStatus, float]] = defaultdict(lambda: defaultdict(float))
        for operator in await self.store.operators.all(active_only=False):
            before = await log.find_one({"operator_id": operator.id, "at": {"$lt": start}}, sort=[("at", -1)])
            status = OperatorStatus(before["status"]) if before else OperatorStatus.OFFLINE
            since = start
            async for change in log.find(
                {"operator_id": operator.id, "at": {"$gte": start, "$lt": end}}, sort=[("at", 1)]
            ):
                totals[operator.id][status] += (change["at"] - since).total_seconds()
                status, since = OperatorStatus(change["status"]), change["at"]
            totals[operator.id][status] += (end - since).total_seconds()
        return {op: dict(statuses) for op, statuses in totals.items()}
