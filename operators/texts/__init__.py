"""Every text the operator bot shows, in English and Russian, looked up by key."""

from __future__ import annotations

from operators.texts import activity, commands, core, desk, duplicates, indicators, privacy, supervisor

LANGUAGES = ("en", "ru")


def _merge() -> dict[str, dict[str, str]]:
    catalog: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
    for module in (core, commands, supervisor, duplicates, privacy, indicators, activity, desk):
        for lang in LANGUAGES:
            duplicated = catalog[lang].keys() & module.TEXTS[lang].keys()
            if duplicated:
                raise RuntimeError(f"text keys defined twice: {sorted(duplicated)}")
            catalog[lang].update(module.TEXTS[lang])
    return catalog


CATALOG = _merge()


def language(code: str | None, default: str = "en") -> str:
    """The bot language for a Telegram language code ("ru-RU" -> "ru"), else the default."""
    short = (code or "").split("-")[0].lower()
    return short if short in LANGUAGES else default


def t(lang: str, key: str, **values: object) -> str:
    """A text in the operator's language (English when a translation is missing)."""
    template = CATALOG.get(lang, {}).get(key) or CATALOG["en"][key]
    return template.format(**values) if values else template
