"""Logging set-up; records carry the thread number and channel of the work in progress."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

from gateway.config import LoggingSettings

_context: ContextVar[Mapping[str, Any]] = ContextVar("log_context", default=MappingProxyType({}))


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach fields (thread=17, channel="telegram") to every record logged inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def install_context() -> None:
    """Make every log record carry the current context (idempotent)."""
    base = logging.getLogRecordFactory()
    if getattr(base, "_with_context", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        record.context = _context.get()
        return record

    factory._with_context = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class TextFormatter(logging.Formatter):
    """`time level logger: message [thread=#17 channel=telegram]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = getattr(record, "context", {})
        if context:
            fields = " ".join(f"{k}=#{v}" if k == "thread" else f"{k}={v}" for k, v in context.items())
            line = f"{line} [{fields}]"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line, context fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "context", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class MalformedRequests(logging.Filter):
    """aiohttp logs a request it cannot parse (a NUL in a header, raw bytes in the URL) as an error with a
    traceback before any of our code sees it; it is the client's fault: one warning line, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg, record.args = "malformed request refused (%s): %s", (error.code, error.message)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


def setup_logging(settings: LoggingSettings) -> None:
    """Send records to stderr in the configured format, with context fields."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    install_context()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    # They log every request or update at INFO; the gateway logs what matters about each message itself.
    for noisy in ("aiohttp.access", "aiogram.event", "twilio.async_http_client", "twilio.http_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("aiohttp.server").addFilter(MalformedRequests())
