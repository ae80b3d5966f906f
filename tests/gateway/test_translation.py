"""The translator's reading of the service's answers, whatever comes back, and the emulator's API errors."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import ClientSession
from hypothesis import given
from hypothesis import strategies as st

from gateway.translation import parse_detection, parse_translation, short_language
from tests.emulators.libretranslate import LibreTranslateEmulator

JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["language", "confidence", "translatedText", "x"]), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(JSON)
def test_any_detect_answer_is_a_language_code_or_none(answer: Any) -> None:
    language = parse_detection(answer, 50.0)
    assert language is None or (2 <= len(language) <= 3 and language.isalpha() and language.islower())


@given(JSON)
def test_any_translate_answer_is_a_text_or_none(answer: Any) -> None:
    text = parse_translation(answer)
    assert text is None or (isinstance(text, str) and text.strip())


def test_detections_and_translations_as_the_api_gives_them() -> None:
    assert parse_detection([{"confidence": 90.0, "language": "es"}], 50) == "es"
    assert parse_detection([{"confidence": 20, "language": "es"}, {"confidence": 80, "language": "pt-BR"}], 50) == "pt"
    assert parse_detection([{"confidence": 30.0, "language": "es"}], 50) is None
    assert parse_detection([{"confidence": True, "language": "es"}], 0.5) is None  # a bool is no confidence
    assert parse_detection([{"confidence": math.inf, "language": "../"}], 50) is None
    assert parse_translation({"translatedText": "Hola"}) == "Hola"
    assert parse_translation({"translatedText": "  "}) is None
    assert short_language("es_ES") == "es" and short_language("") is None and short_language("e1") is None


async def test_the_emulator_answers_errors_as_libretranslate_does() -> None:
    async with LibreTranslateEmulator(api_key="k") as libre, ClientSession() as session:

        async def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
            async with session.post(libre.base_url + path, json=body) as response:
                return response.status, await response.json()

        assert await post("/detect", {"q": "hola", "api_key": "wrong"}) == (403, {"error": "Invalid API key"})
        assert (await post("/detect", {"api_key": "k"}))[0] == 400
        assert await post("/translate", {"q": "hola", "source": "es", "target": "xx", "api_key": "k"}) == (
            400,
            {"error": "xx is not supported"},
        )
        status, answer = await post("/translate", {"q": "hola", "source": "auto", "target": "en", "api_key": "k"})
        assert status == 200 and answer["detectedLanguage"]["language"] == "es"
