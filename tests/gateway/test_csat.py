"""The survey's parsers: rating buttons' data and typed answers, whatever a customer sends."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.csat import MAX_COMMENT, asked_rating, parse_answer, parse_payload, rating_payload


@given(st.integers(min_value=1, max_value=10**12 - 1), st.integers(min_value=1, max_value=5))
def test_a_button_names_its_thread_and_score(number: int, score: int) -> None:
    payload = rating_payload(number, score)
    assert len(payload.encode()) <= 64  # Telegram's callback_data limit
    assert parse_payload(payload) == (number, score)


@given(st.one_of(st.none(), st.text()))
def test_any_other_data_is_no_rating(data: str | None) -> None:
    parsed = parse_payload(data)
    assert parsed is None or (data is not None and data == rating_payload(*parsed))


def test_malformed_button_data_is_refused() -> None:
    for data in ("csat:0:3", "csat:7:6", "csat:7:0", "csat:07:3", "csat:7:3 ", "csat:-1:3", "csat:7", "tpl:7:3"):
        assert parse_payload(data) is None


def test_typed_answers() -> None:
    assert parse_answer("4") == (4, None)
    assert parse_answer(" 5/5 ") == (5, None)
    assert parse_answer("2 - too slow") == (2, "too slow")
    assert parse_answer("5! thanks a lot") == (5, "thanks a lot")
    assert parse_answer("3.") == (3, None)
    for text in ("", "45", "6", "0", "1.5", "thanks", "10 out of 10", "4th of July?"):
        assert parse_answer(text) is None, text


@given(st.text())
def test_any_text_is_an_answer_or_not_never_an_error(text: str) -> None:
    answer = parse_answer(text)
    if answer is not None:
        score, comment = answer
        assert 1 <= score <= 5
        assert comment is None or (0 < len(comment) <= MAX_COMMENT and comment == comment.strip())


@given(st.one_of(st.none(), st.text()))
def test_asked_rating_reads_only_its_own_form(ask: str | None) -> None:
    number = asked_rating(ask)
    assert number is None or ask == f"rating:{number}"
    assert asked_rating("rating:17") == 17 and asked_rating("rating:²") is None and asked_rating("comment") is None
