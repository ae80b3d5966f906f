"""Config loading: every error names its file and key; ${ENV} interpolation; check-config."""

from __future__ import annotations

import logging
import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from gateway.cli import main
from gateway.config import ConfigError, Settings, load_settings, parse_settings

ROOT = Path(__file__).resolve().parents[2]

BOT = {"name": "support", "token": "123456:ABC-def", "webhook_secret": "s3cret"}
WHATSAPP = {"account_sid": "AC" + "0" * 32, "auth_token": "tok-12345678", "sender": "whatsapp:+14155238886"}


def error_for(raw: dict, environ: dict | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw, source="gw.toml", environ=environ or {})
    return str(caught.value)


def test_example_config_is_valid() -> None:
    settings = load_settings(ROOT / "config.example.toml", environ={})
    assert settings.storage.uri == "embedded" and settings.storage.engine == "process"
    assert settings.webwidget is not None and settings.api is not None
    assert settings.telegram is None and settings.whatsapp is None and settings.operator_bot is None
    assert settings.routing.offline_message  # with no operator bot, a visitor is still told something at once


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"server": {"port": "eighty"}}, "server.port"),
        ({"server": {"port": 70000}}, "server.port"),
        ({"server": {"public_url": "gateway.example.com"}}, "server.public_url"),
        ({"server": {"trusted_proxies": ["not-an-ip"]}}, "server.trusted_proxies"),
        ({"server": {"prot": 8080}}, "server.prot"),
        ({"storage": {"uri": "postgres://x"}}, "storage.uri"),
        ({"storage": {"database": "has space"}}, "storage.database"),
        ({"storage": {"engine": "fork"}}, "storage.engine"),
        ({"telegram": {}}, "telegram.bots"),
        ({"telegram": {"bots": []}}, "telegram.bots"),
        ({"telegram": {"bots": [BOT, BOT]}}, "telegram.bots"),
        ({"telegram": {"bots": [BOT | {"token": "nope"}]}}, "telegram.bots[0].token"),
        ({"telegram": {"bots": [BOT | {"webhook_secret": "has space"}]}}, "telegram.bots[0].webhook_secret"),
        ({"telegram": {"bots": [BOT], "mode": "push"}}, "telegram.mode"),
        ({"whatsapp": WHATSAPP | {"sender": "+14155238886"}}, "whatsapp.sender"),
        ({"whatsapp": WHATSAPP | {"account_sid": "AB123"}}, "whatsapp.account_sid"),
        ({"whatsapp": {k: v for k, v in WHATSAPP.items() if k != "auth_token"}}, "whatsapp.auth_token"),
        ({"webwidget": {"secret": "short"}}, "webwidget.secret"),
        ({"api": {"tokens": []}}, "api.tokens"),
        ({"api": {"tokens": ["short"]}}, "api.tokens[0]"),
        ({"operators": [{"telegram_id": 1}]}, "operators[0].name"),
        ({"operators": [{"telegram_id": 1, "name": "A", "role": "boss"}]}, "operators[0].role"),
        ({"operators": [{"telegram_id": 1, "name": "A"}, {"telegram_id": 1, "name": "B"}]}, "operators"),
        ({"routing": {"max_chats_per_operator": 0}}, "routing.max_chats_per_operator"),
        ({"contacts": {"default_region": "usa"}}, "contacts.default_region"),
        ({"logging": {"level": "LOUD"}}, "logging.level"),
        ({"unknown_section": {}}, "unknown_section"),
    ],
)
def test_every_config_error_names_file_and_key(raw: dict, key: str) -> None:
    message = error_for(raw)
    assert message.startswith(f"gw.toml: {key}: "), message


def test_secrets_are_not_echoed_in_errors() -> None:
    message = error_for({"telegram": {"bots": [BOT | {"token": "leaky-secret-value"}]}})
    assert "leaky-secret-value" not in message


def test_environment_interpolation() -> None:
    settings = parse_settings(
        {"whatsapp": WHATSAPP | {"auth_token": "${TWILIO_TOKEN}"}, "server": {"port": "${NO_PORT:-9090}"}},
        environ={"TWILIO_TOKEN": "from-the-environment"},
    )
    assert settings.whatsapp.auth_token == "from-the-environment"
    assert settings.server.port == 9090


def test_missing_environment_variable_names_key_and_variable() -> None:
    message = error_for({"whatsapp": WHATSAPP | {"auth_token": "${TWILIO_AUTH_TOKEN}"}})
    assert message == "gw.toml: whatsapp.auth_token: environment variable TWILIO_AUTH_TOKEN is not set"


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\nport = 1")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        load_settings(broken)


def test_absent_sections_are_logged_once_each(caplog: pytest.LogCaptureFixture) -> None:
    settings = parse_settings({}, source="gw.toml", environ={})
    with caplog.at_level(logging.INFO, logger="gateway.config"):
        settings.log_disabled_parts()
    lines = [r.getMessage() for r in caplog.records]
    for part in ("telegram", "whatsapp", "operator_bot", "api"):
        assert sum(f"[{part}]" in line for line in lines) == 1
    assert any("web widget disabled" in line for line in lines)


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[api]\ntokens = ["0123456789abcdef0"]\n')
    main(["check-config", str(good)])
    assert "good.toml: OK" in capsys.readouterr().out

    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = -1\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["check-config", str(bad)])
    assert exit_info.value.code == 2
    assert "bad.toml: server.port:" in capsys.readouterr().err


def test_every_settings_key_is_in_the_example_config_with_a_comment() -> None:
    documented = _documented_keys(ROOT / "config.example.toml")
    missing = [key for key in _settings_keys(Settings) if key not in documented]
    assert not missing, f"config.example.toml does not show: {missing}"
    undocumented = [key for key, commented in documented.items() if not commented]
    assert not undocumented, f"config.example.toml shows these without a comment: {undocumented}"


def _settings_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key a config file may set, as dotted paths (`telegram.bots.token`)."""
    keys = []
    for name, field in model.model_fields.items():
        if name == "source":
            continue
        nested = [a for a in _flatten(field.annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        keys += _settings_keys(nested[0], f"{prefix}{name}.") if nested else [prefix + name]
    return keys


def _flatten(annotation: object) -> list[object]:
    args = typing.get_args(annotation)
    return [annotation, *(a for arg in args for a in _flatten(arg))]


def _documented_keys(path: Path) -> dict[str, bool]:
    """Keys the example shows, set or commented out, and whether a comment explains each: on its own line,
    or on the line right above it."""
    keys: dict[str, bool] = {}
    section, explained = "", False
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip().removeprefix("#").strip()
        header = re.fullmatch(r"\[\[?([a-z_.]+)\]\]?", text)
        key = re.match(r"([a-z_]+)\s*=", text)
        if header:
            section = header.group(1) + "."
        elif key:
            keys[section + key.group(1)] = explained or "#" in line.split("=", 1)[1]
        explained = line.startswith("#") and bool(text) and not header and not key and not text.startswith("---")
    return keys
