"""The log: what the gateway says about messages, without a line per request or update from the libraries."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from gateway.config import LoggingSettings
from gateway.logs import setup_logging


@pytest.fixture
def gateway_logging(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """The gateway's log set-up for one test, writing to the captured stderr; the root logger and the library
    levels restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    libraries = {name: logging.getLogger(name).level for name in ("aiogram.event", "aiohttp.access")}
    setup_logging(LoggingSettings())
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in libraries.items():
        logging.getLogger(name).setLevel(saved)


@pytest.mark.usefixtures("gateway_logging")
def test_per_update_chatter_is_left_out_and_library_errors_are_kept(capsys: pytest.CaptureFixture[str]) -> None:
    logging.getLogger("aiogram.event").info("Update id=1 is handled. Duration 3 ms by bot id=7")
    logging.getLogger("aiohttp.access").info('127.0.0.1 "POST /channels/telegram/support HTTP/1.1" 200')
    logging.getLogger("aiogram.event").error("Cause exception while process update id=2")
    logging.getLogger("gateway.inbox").info("thread #7 opened")
    err = capsys.readouterr().err
    assert "is handled" not in err and "POST /channels" not in err
    assert "Cause exception while process update id=2" in err and "thread #7 opened" in err
