"""Every aiogram filter and handler of both bots runs on the event loop: aiogram runs anything else in a thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiogram import Router

from channels.telegram.routers import build_routers
from operators.keys import OPERATOR_BOT
from tests.operators.conftest import Desk


def _in_threads(router: Router) -> Iterator[str]:
    """The handlers and filters aiogram would call in a worker thread, named by router and event."""
    for event, observer in router.observers.items():
        for handler in observer.handlers:
            where = f"{router.name}.{event} {getattr(handler.callback, '__name__', handler.callback)}"
            if not handler.awaitable:
                yield where
            yield from (f"{where}: filter {f.callback!r}" for f in handler.filters or () if not f.awaitable)
    for sub in router.sub_routers:
        yield from _in_threads(sub)


async def test_the_operator_bot_awaits_every_filter_and_handler(desk: Desk) -> None:
    assert list(_in_threads(desk.app[OPERATOR_BOT].dispatcher)) == []


@pytest.mark.parametrize("accept_groups", [False, True])
def test_the_customer_bots_await_every_filter_and_handler(accept_groups: bool) -> None:
    routers = build_routers(accept_groups)
    assert [where for router in routers for where in _in_threads(router)] == []
