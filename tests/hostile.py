"""Hypothesis strategies for hostile input: JSON values, strings BSON cannot store, numbers beyond int64, and
mutations of a valid document at a random place."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

# What real clients never send but attackers and broken proxies do.
NASTY_STRINGS = ["\ud800", "a\udfffb", "\x00", "nul\x00key", "²", "٣", "9" * 30, "-1", "", " ", "$where", "a.b"]
NASTY_NUMBERS = [2**63, -(2**63) - 1, 10**30, 10**12, -1, 0]

text = st.text(max_size=40) | st.sampled_from(NASTY_STRINGS)
numbers = st.integers(-(2**70), 2**70) | st.sampled_from(NASTY_NUMBERS) | st.floats(allow_nan=False)
scalars = st.none() | st.booleans() | numbers | text
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)


def paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document (dict keys and list indexes), outermost first."""
    found = [prefix] if prefix else []
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, document: dict[str, Any], changes: int = 3) -> dict[str, Any]:
    """`document` with a few values replaced by hostile ones (or removed), at random places."""
    result = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, changes))):
        places = paths(result)
        if not places:
            break
        *parents, last = draw(st.sampled_from(places))
        target = result
        for step in parents:
            target = target[step]
        if isinstance(target, dict) and draw(st.booleans()) and len(target) > 1:
            target.pop(last)
        else:
            target[last] = draw(json_values)
    return result
