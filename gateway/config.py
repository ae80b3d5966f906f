"""TOML configuration with ${ENV} interpolation, validated into typed settings."""

from __future__ import annotations

import ipaddress
import itertools
import logging
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

logger = logging.getLogger(__name__)

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SLUG = r"^[a-z0-9][a-z0-9_-]{0,31}$"
_SECRET_TOKEN = r"^[A-Za-z0-9_-]{1,256}$"  # what Telegram accepts as a webhook secret


class ConfigError(Exception):
    """A configuration problem; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    public_url: str = "http://127.0.0.1:8080"
    # Signs expiring media links; set it when several processes serve one public URL.
    secret: Annotated[str, Field(min_length=16)] | None = None
    # Seconds a client has to send a request's headers, and again its body; slower ones are cut off.
    read_timeout: Annotated[float, Field(gt=0, le=300)] = 15.0
    # Proxies whose X-Forwarded-For we believe (addresses or networks).
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # Work one process does at a time (long polling, routing rounds, the relay sweep) passes to another
    # process this many seconds after its holder stopped renewing it.
    lease_seconds: Annotated[float, Field(ge=1, le=600)] = 15.0

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/[^\s]*)?$", value):
            raise ValueError("must be an http(s) URL such as https://support.example.com")
        return value.rstrip("/")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if isinstance(value, list):
            return tuple(ipaddress.ip_network(v, strict=False) for v in value)
        return value


class StorageSettings(_Section):
    uri: str = "embedded"
    database: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,63}$")] = "gateway"
    data_dir: str = "./data"
    # The embedded engine's page cache (its memory does not grow with the data), and how much change
    # history it keeps for change streams (by size and by age).
    cache_mb: Annotated[int, Field(ge=4, le=65536)] = 64
    history_mb: Annotated[int, Field(ge=1, le=65536)] = 256
    history_hours: Annotated[float, Field(gt=0, le=24 * 365)] = 24.0
    # Where the embedded engine runs: a child process of its own (on another core), or a thread of this one.
    engine: Literal["process", "thread"] = "process"

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if value != "embedded" and not value.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError('must be "embedded" or a mongodb:// URI')
        return value


class TelegramBotSettings(_Section):
    name: Annotated[str, Field(pattern=_SLUG)]
    token: Annotated[str, Field(pattern=r"^\d+:\S+$")]
    webhook_secret: Annotated[str, Field(pattern=_SECRET_TOKEN)]


class TelegramSettings(_Section):
    api_base: str = "https://api.telegram.org"
    mode: Literal["webhook", "polling"] = "webhook"
    accept_groups: bool = False
    bots: tuple[TelegramBotSettings, ...]

    @field_validator("bots")
    @classmethod
    def _unique(cls, bots: tuple[TelegramBotSettings, ...]) -> tuple[TelegramBotSettings, ...]:
        if not bots:
            raise ValueError("at least one [[telegram.bots]] entry is required")
        names = [b.name for b in bots]
        if len(set(names)) != len(names):
            raise ValueError("bot names must be unique")
        return bots


class OperatorBotSettings(_Section):
    token: Annotated[str, Field(pattern=r"^\d+:\S+$")]
    webhook_secret: Annotated[str, Field(pattern=_SECRET_TOKEN)]
    supervisors_chat_id: int | None = None
    # Telegram lets a bot post about 20 messages a minute into one group; creating a topic counts.
    supervisors_messages_per_minute: Annotated[int, Field(ge=1, le=600)] = 20
    default_language: Literal["en", "ru"] = "en"
    # Default to the [telegram] section's values (or Telegram's own API and webhooks).
    api_base: str | None = None
    mode: Literal["webhook", "polling"] | None = None
    # A customer message still not in its operator's chat this long after it was stored (the process that
    # stored it stopped before relaying it) is shown then; longer than a relay can take, flood waits included.
    catch_up_seconds: Annotated[float, Field(ge=1, le=3600)] = 120.0


class WhatsAppTemplateSettings(_Section):
    name: str
    content_sid: Annotated[str, Field(pattern=r"^HX[0-9a-fA-F]{32}$")]
    variables: tuple[str, ...] = ()


class WhatsAppSettings(_Section):
    account_sid: Annotated[str, Field(pattern=r"^AC[0-9a-fA-F]{32}$")]
    auth_token: Annotated[str, Field(min_length=8)]
    sender: Annotated[str, Field(pattern=r"^whatsapp:\+[1-9]\d{6,14}$")]
    api_base: str = "https://api.twilio.com"
    # Hosts customers' files may be downloaded from (besides api_base's); Twilio redirects media there.
    media_hosts: tuple[str, ...] = ("media.twiliocdn.com", "mms.twiliocdn.com")
    window_hours: Annotated[float, Field(gt=0)] = 24.0
    templates: tuple[WhatsAppTemplateSettings, ...] = ()


class WebWidgetSettings(_Section):
    enabled: bool = True
    allowed_origins: tuple[str, ...] = ()
    secret: Annotated[str, Field(min_length=16)]
    max_frame_bytes: Annotated[int, Field(ge=256, le=1_048_576)] = 16_384
    max_text_length: Annotated[int, Field(ge=1, le=100_000)] = 4_000
    messages_per_minute: Annotated[int, Field(ge=1)] = 30
    messages_per_minute_per_ip: Annotated[int, Field(ge=1)] = 300
    frames_per_minute: Annotated[int, Field(ge=1)] = 120
    frames_per_minute_per_ip: Annotated[int, Field(ge=1)] = 1200
    visitors_per_minute_per_ip: Annotated[int, Field(ge=1)] = 30
    sockets_per_visitor: Annotated[int, Field(ge=1)] = 10
    sockets_per_ip: Annotated[int, Field(ge=1)] = 200
    push_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    history_limit: Annotated[int, Field(ge=1, le=1000)] = 100
    # Once a visitor's last window has been closed this long, their operator is told they left the website.
    left_after_seconds: Annotated[float, Field(gt=0, le=86400)] = 60.0


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS_RANGE = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])")
DayHours = tuple[tuple[time, time], ...]


def parse_day_hours(text: str) -> DayHours:
    """`"09:00-12:00, 13:00-18:00"` as sorted (start, end) pairs; "" is a day off. ValueError says what is wrong."""
    ranges: list[tuple[time, time]] = []
    for part in (p.replace(" ", "") for p in text.split(",")):
        if not part:
            continue
        match = _HOURS_RANGE.fullmatch(part)
        if match is None:
            raise ValueError(f"{part!r} is not a range like 09:00-18:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h2 == 24 and m2 != 0:
            raise ValueError(f"{part!r}: 24:00 is the latest end")
        start, end = time(h1, m1), time.max if h2 == 24 else time(h2, m2)
        if end <= start:
            raise ValueError(f"{part!r} ends before it starts")
        ranges.append((start, end))
    ranges.sort()
    for (_, end), (start, _) in itertools.pairwise(ranges):
        if start < end:
            raise ValueError(f"{text!r}: the ranges overlap")
    return tuple(ranges)


class RoutingSettings(_Section):
    max_chats_per_operator: Annotated[int, Field(ge=1)] = 5
    offline_grace_seconds: Annotated[float, Field(ge=0)] = 300.0
    busy_message: dict[str, str] = {
        "en": "All our operators are busy right now. We will reply as soon as we can.",
        "ru": "Все операторы сейчас заняты. Мы ответим, как только сможем.",
    }
    closing_message: dict[str, str] = {}
    default_language: str = "en"
    # Opening hours per weekday (mon..sun, in time_zone); absent: always open. A day not listed is a day off.
    business_hours: dict[str, DayHours] | None = None
    time_zone: str = "UTC"
    holidays: tuple[date, ...] = ()
    # Told once per conversation when a customer writes outside business hours; {opens} is when the desk opens.
    away_message: dict[str, str] = {
        "en": "We are closed right now. We will answer you {opens}.",
        "ru": "Сейчас мы не работаем. Мы ответим вам {opens}.",
    }
    # Told once per conversation when nobody is online within business hours (empty: busy_message).
    offline_message: dict[str, str] = {}

    @field_validator("business_hours", mode="before")
    @classmethod
    def _hours(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        unknown = sorted(set(value) - set(WEEKDAYS))
        if unknown:
            raise ValueError(f"unknown weekday {unknown[0]!r} (use {', '.join(WEEKDAYS)})")
        days: dict[str, DayHours] = {}
        for day, text in value.items():
            if not isinstance(text, str):
                raise ValueError(f'{day}: write the hours as a string such as "09:00-18:00"')
            try:
                days[day] = parse_day_hours(text)
            except ValueError as err:
                raise ValueError(f"{day}: {err}") from None
        return days

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone name such as Europe/Berlin") from None
        return value


class DeliverySettings(_Section):
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 8
    retry_base_seconds: Annotated[float, Field(gt=0)] = 5.0
    retry_max_seconds: Annotated[float, Field(gt=0)] = 3600.0
    poll_seconds: Annotated[float, Field(gt=0)] = 1.0


class ApiSettings(_Section):
    tokens: tuple[Annotated[str, Field(min_length=16)], ...]

    @field_validator("tokens")
    @classmethod
    def _some(cls, tokens: tuple[str, ...]) -> tuple[str, ...]:
        if not tokens:
            raise ValueError("at least one token is required")
        return tokens


class OperatorEntry(_Section):
    telegram_id: int
    name: Annotated[str, Field(min_length=1)]
    username: str | None = None
    role: Literal["operator", "supervisor"] = "operator"
    groups: tuple[str, ...] = ()
    max_chats: Annotated[int, Field(ge=1)] | None = None


class ContactSettings(_Section):
    default_region: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "US"
    auto_merge_verified: bool = False


class PrivacySettings(_Section):
    # Closed conversations older than this many days are deleted (or anonymized); None keeps them until erased.
    retention_days: Annotated[int, Field(ge=1, le=36500)] | None = None
    # Keep an expired conversation's timings (for the KPIs) without any personal data instead of deleting it.
    anonymize: bool = False
    store_ip: bool = True
    store_navigation: bool = True
    # Conversations expired per round of the privacy loop, and how often it runs.
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 100
    interval_seconds: Annotated[float, Field(gt=0, le=86400)] = 60.0


class CsatSettings(_Section):
    """The satisfaction survey sent when a thread closes."""

    enabled: bool = False
    question: dict[str, str] = {
        "en": "How would you rate our help? 1 is poor, 5 is excellent.",
        "ru": "Как вы оцениваете нашу помощь? 1 — плохо, 5 — отлично.",
    }
    # Added to the question where there are no buttons to press (WhatsApp).
    reply_hint: dict[str, str] = {
        "en": "Reply with a number from 1 to 5; you may add a comment after it.",
        "ru": "Ответьте числом от 1 до 5; после него можно добавить комментарий.",
    }
    comment_prompt: dict[str, str] = {
        "en": "Thank you! Anything you would like to add? Reply to this message with a comment.",
        "ru": "Спасибо! Хотите что-то добавить? Ответьте на это сообщение комментарием.",
    }
    thanks: dict[str, str] = {"en": "Thank you for your feedback!", "ru": "Спасибо за отзыв!"}
    # A [[whatsapp.templates]] name sent instead of the question when WhatsApp's 24-hour window has closed.
    whatsapp_template: str | None = None
    # A typed answer (a bare number) counts this many hours after the question.
    answer_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 72.0


class TranslationSettings(_Section):
    """A LibreTranslate-compatible service (POST /detect and /translate)."""

    url: str
    api_key: str | None = None
    # Each call waits at most this long; a slow or failing translator only means no translation.
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    # A detected language counts from this confidence (0-100) on.
    min_confidence: Annotated[float, Field(ge=0, le=100)] = 50.0
    # After a timeout, a connection error or a 5xx, the translator is left alone this long.
    pause_seconds: Annotated[float, Field(ge=0, le=3600)] = 60.0

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/[^\s]*)?$", value):
            raise ValueError("must be an http(s) URL such as https://translate.example.com")
        return value.rstrip("/")


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class Settings(_Section):
    """Everything the gateway is configured with; absent optional sections are None."""

    server: ServerSettings = ServerSettings()
    storage: StorageSettings = StorageSettings()
    telegram: TelegramSettings | None = None
    operator_bot: OperatorBotSettings | None = None
    whatsapp: WhatsAppSettings | None = None
    webwidget: WebWidgetSettings | None = None
    routing: RoutingSettings = RoutingSettings()
    delivery: DeliverySettings = DeliverySettings()
    api: ApiSettings | None = None
    operators: tuple[OperatorEntry, ...] = ()
    contacts: ContactSettings = ContactSettings()
    privacy: PrivacySettings = PrivacySettings()
    csat: CsatSettings = CsatSettings()
    translation: TranslationSettings | None = None
    logging: LoggingSettings = LoggingSettings()
    source: str = "<settings>"

    @model_validator(mode="after")
    def _csat_template_known(self) -> Settings:
        name = self.csat.whatsapp_template
        if name is not None and name not in {t.name for t in (self.whatsapp.templates if self.whatsapp else ())}:
            raise ValueError(f"csat.whatsapp_template: no [[whatsapp.templates]] entry is named {name!r}")
        return self

    @field_validator("operators")
    @classmethod
    def _operators_unique(cls, operators: tuple[OperatorEntry, ...]) -> tuple[OperatorEntry, ...]:
        ids = [o.telegram_id for o in operators]
        if len(set(ids)) != len(ids):
            raise ValueError("each telegram_id may appear only once")
        return operators

    def log_disabled_parts(self) -> None:
        """One log line for each optional part that is switched off."""
        for section in ("telegram", "whatsapp", "operator_bot", "api", "translation"):
            if getattr(self, section) is None:
                logger.info("no [%s] section in %s: %s disabled", section, self.source, section)
        if self.webwidget is None or not self.webwidget.enabled:
            logger.info("[webwidget] absent or disabled in %s: web widget disabled", self.source)
        if not self.csat.enabled:
            logger.info("csat.enabled is off in %s: customers are not asked to rate closed conversations", self.source)
        if self.privacy.retention_days is None:
            logger.info("no privacy.retention_days in %s: conversations are kept until erased", self.source)


def load_settings(path: str | os.PathLike[str], environ: dict[str, str] | None = None) -> Settings:
    """Read, interpolate and validate a TOML config file, or raise ConfigError naming the key."""
    source = str(path)
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{source}: file not found") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: not valid TOML: {err}") from None
    return parse_settings(raw, source=source, environ=os.environ if environ is None else environ)


def parse_settings(
    raw: dict[str, Any], *, source: str = "<settings>", environ: Mapping[str, str] | None = None
) -> Settings:
    """Validate an already-parsed config mapping."""
    data = _interpolate(raw, (), source, os.environ if environ is None else environ)
    try:
        return Settings.model_validate({**data, "source": source})
    except ValidationError as err:
        raise ConfigError("\n".join(_describe(source, e) for e in err.errors())) from None


def _interpolate(value: Any, path: tuple[Any, ...], source: str, environ: Any) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, (*path, k), source, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*path, i), source, environ) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{source}: {_key(path)}: environment variable {name} is not set")

    return _ENV.sub(replace, value)


def _describe(source: str, error: Any) -> str:
    loc = error["loc"]
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (check the spelling against config.example.toml)"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif error["type"] == "string_pattern_mismatch":
        message = f"has the wrong format ({_FORMATS.get(loc[-1], 'see config.example.toml')})"
    elif not loc and re.match(r"^[a-z_]+\.[a-z_.]+: ", message):
        return f"{source}: {message}"  # a check across sections names its key itself
    return f"{source}: {_key(loc)}: {message}"


_FORMATS = {
    "token": "a bot token looks like 123456789:AAE...",
    "webhook_secret": "1-256 characters A-Z a-z 0-9 _ -",
    "account_sid": "AC followed by 32 hex digits",
    "sender": "whatsapp:+ and the number in E.164, e.g. whatsapp:+14155238886",
    "content_sid": "HX followed by 32 hex digits",
    "name": "lower-case letters, digits, '-' and '_'",
    "default_region": "a two-letter country code such as US or DE",
    "database": "letters, digits, '-' and '_'",
}


def _key(loc: tuple[Any, ...]) -> str:
    """('telegram', 'bots', 0, 'token') -> 'telegram.bots[0].token'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-after", "function-before")):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"
