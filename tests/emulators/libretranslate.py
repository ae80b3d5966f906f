"""An emulator of the LibreTranslate HTTP API (POST /detect, POST /translate, GET /languages), with its errors.

Languages are detected from a few tell-tale words and letters (enough for tests); translations come from a
phrase book the test fills, anything else is answered as `[target] text`. `failing` makes every call a 500,
`stalling` makes every call wait far longer than any client timeout.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

LANGUAGES = {"en": "English", "es": "Spanish", "ru": "Russian", "de": "German"}
_SPANISH = re.compile(r"[¿¡ñáéíóú]|\b(hola|gracias|pedido|dónde|donde|está|quiero|por favor|mi|el|la)\b", re.I)
_GERMAN = re.compile(r"[äöüß]|\b(ich|und|nicht|bitte|danke|wo ist)\b", re.I)
_CYRILLIC = re.compile(r"[а-яё]", re.I)


@dataclass
class Call:
    """One request the emulator received."""

    path: str
    body: dict[str, Any]


@dataclass
class LibreTranslateEmulator:
    """The emulated service on 127.0.0.1 at a free port (`base_url`), with what it was asked (`calls`)."""

    api_key: str | None = None
    phrases: dict[tuple[str, str, str], str] = field(default_factory=dict)
    failing: bool = False
    stalling: bool = False
    calls: list[Call] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    base_url: str = ""

    def learn(self, source: str, target: str, text: str, translation: str) -> None:
        """Teach the phrase book one translation."""
        self.phrases[(source, target, text)] = translation

    def detect_language(self, text: str) -> tuple[str, float]:
        """(language, confidence) as the emulated /detect sees the text."""
        if _CYRILLIC.search(text):
            return "ru", 95.0
        if _SPANISH.search(text):
            return "es", 90.0
        if _GERMAN.search(text):
            return "de", 85.0
        # Without a letter (an emoji, a number) there is nothing to go by, as on LibreTranslate.
        return "en", 60.0 if any(c.isalpha() for c in text) else 0.0

    async def start(self) -> None:
        """Serve on a free port."""
        app = web.Application()
        app.router.add_post("/detect", self._detect)
        app.router.add_post("/translate", self._translate)
        app.router.add_get("/languages", self._languages)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"

    async def close(self) -> None:
        """Let go of stalled requests and stop serving."""
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def calls_to(self, path: str) -> list[Call]:
        """The requests to one path, oldest first."""
        return [c for c in self.calls if c.path == path]

    async def _body(self, request: web.Request) -> dict[str, Any]:
        """LibreTranslate takes JSON or a form; a bad body is its 400."""
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _error(400, "Invalid request: the body is not JSON") from None
        else:
            body = dict(await request.post())
        if not isinstance(body, dict):
            raise _error(400, "Invalid request")
        self.calls.append(Call(request.path, body))
        if self.stalling:
            await self._released.wait()  # far longer than any client waits; let go when the emulator closes
        if self.failing:
            raise _error(500, "Cannot translate text: internal error")
        if self.api_key is not None and body.get("api_key") != self.api_key:
            raise _error(403, "Invalid API key")
        if not isinstance(body.get("q"), str) or not body["q"]:
            raise _error(400, "Invalid request: missing q parameter")
        return body

    async def _detect(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        language, confidence = self.detect_language(body["q"])
        return web.json_response([{"confidence": confidence, "language": language}])

    async def _translate(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        source, target = body.get("source"), body.get("target")
        for name, code in (("source", source), ("target", target)):
            if not isinstance(code, str) or not code:
                raise _error(400, f"Invalid request: missing {name} parameter")
        detected = None
        if source == "auto":
            source, confidence = self.detect_language(body["q"])
            detected = {"confidence": confidence, "language": source}
        for code in (source, target):
            if code not in LANGUAGES:
                raise _error(400, f"{code} is not supported")
        text = body["q"]
        translated = text if source == target else self.phrases.get((source, target, text), f"[{target}] {text}")
        answer: dict[str, Any] = {"translatedText": translated}
        if detected is not None:
            answer["detectedLanguage"] = detected
        return web.json_response(answer)

    async def _languages(self, request: web.Request) -> web.Response:
        codes = list(LANGUAGES)
        return web.json_response(
            [{"code": c, "name": n, "targets": [t for t in codes if t != c]} for c, n in LANGUAGES.items()]
        )


_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    403: web.HTTPForbidden,
    500: web.HTTPInternalServerError,
}


def _error(status: int, message: str) -> web.HTTPException:
    """LibreTranslate's error answer: {"error": "..."} with the status."""
    return _ERRORS[status](text=json.dumps({"error": message}), content_type="application/json")
