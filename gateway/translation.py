"""A LibreTranslate-compatible translator: detect a text's language, translate it; a failure is only logged."""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import ClientError, ClientTimeout

from gateway.config import TranslationSettings
from gateway.http import HttpClient

logger = logging.getLogger(__name__)

MAX_TEXT = 5000  # longer texts are not sent to the translator


def short_language(code: str | None) -> str | None:
    """`"es-ES"` -> `"es"`; None for a missing or odd code."""
    short = (code or "").split("-")[0].split("_")[0].strip().lower()
    return short if 2 <= len(short) <= 3 and short.isascii() and short.isalpha() else None


class Translator:
    """Calls the translation service through the app's shared HTTP client, each call bounded by a timeout.

    Every answer that is not what the API promises (an error, a timeout, odd JSON) is None: the caller goes on
    without a translation.
    """

    def __init__(self, settings: TranslationSettings, http: HttpClient) -> None:
        self.settings = settings
        self.http = http
        self._paused_until = 0.0

    async def detect(self, text: str) -> str | None:
        """The language of a text when the service is confident enough; None otherwise."""
        return parse_detection(await self._post("/detect", {"q": text[:MAX_TEXT]}), self.settings.min_confidence)

    async def translate(self, text: str, source: str, target: str) -> str | None:
        """The text in the target language; None when the service could not translate it."""
        if len(text) > MAX_TEXT:
            return None
        return parse_translation(
            await self._post("/translate", {"q": text, "source": source, "target": target, "format": "text"})
        )

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        # A translator that is down is left alone for pause_seconds: it costs one timeout, not one per message.
        if time.monotonic() < self._paused_until:
            return None
        if self.settings.api_key:
            body = body | {"api_key": self.settings.api_key}
        timeout = ClientTimeout(total=self.settings.timeout_seconds)
        try:
            async with self.http.session.post(self.settings.url + path, json=body, timeout=timeout) as response:
                if response.status >= 500:
                    raise ClientError(f"HTTP {response.status}")
                if response.status != 200:  # this request's fault (a language it does not know): the next may do
                    logger.warning("translator %s answered HTTP %d", path, response.status)
                    return None
                return await response.json(content_type=None)
        except TimeoutError:
            logger.warning("translator %s did not answer within %.1f s", path, self.settings.timeout_seconds)
        except (ClientError, ValueError) as err:  # ValueError: a body that is not JSON
            logger.warning("translator %s failed: %s", path, err)
        self._paused_until = time.monotonic() + self.settings.pause_seconds
        return None


def parse_detection(answer: Any, min_confidence: float) -> str | None:
    """The language of /detect's answer (`[{"language", "confidence"}, ...]`) when confident enough; else None."""
    candidates = [a for a in answer if isinstance(a, dict)] if isinstance(answer, list) else []
    if not candidates:
        return None
    best = max(candidates, key=lambda a: _number(a.get("confidence")))
    if _number(best.get("confidence")) < min_confidence:
        return None
    language = best.get("language")
    return short_language(language) if isinstance(language, str) else None


def parse_translation(answer: Any) -> str | None:
    """The text of /translate's answer (`{"translatedText"}`); None for anything else."""
    translated = answer.get("translatedText") if isinstance(answer, dict) else None
    return translated if isinstance(translated, str) and translated.strip() else None


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
