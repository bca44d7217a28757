"""`loads_reply` reads exactly what `json.loads` reads, and fails where it fails."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evolink_async._api.decode import loads_reply

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
PADDING = st.sampled_from(["", " ", "\n", "\t\r\n ", "\ufeff"])
ENCODINGS = st.sampled_from(["utf-8", "utf-16", "utf-16-le", "utf-32", "utf-8-sig"])


def outcome(read: Any, payload: bytes) -> tuple[str, str]:
    """("ok", canonical JSON) or ("error", exception type): NaN-safe to compare."""
    try:
        value = read(payload)
    except ValueError as exc:
        return ("error", type(exc).__name__)
    return ("ok", json.dumps(value, sort_keys=True))


@given(JSON_VALUES, PADDING, PADDING, ENCODINGS)
def test_same_as_json_loads_for_encoded_json(
    value: Any, before: str, after: str, encoding: str
) -> None:
    payload = (before + json.dumps(value, ensure_ascii=False) + after).encode(
        encoding, errors="surrogatepass"
    )
    assert outcome(loads_reply, payload) == outcome(json.loads, payload)


@given(st.binary(max_size=200))
def test_same_as_json_loads_for_any_bytes(payload: bytes) -> None:
    assert outcome(loads_reply, payload) == outcome(json.loads, payload)


@pytest.mark.parametrize(
    "payload",
    [b"", b" ", b"{", b'{"id": 1} x', b'{"id": 1}{}', b"<html>502</html>", b"\xff\xfe\x00", b"nul"],
)
def test_what_json_loads_refuses_is_refused_alike(payload: bytes) -> None:
    with pytest.raises(ValueError) as ours:
        loads_reply(payload)
    with pytest.raises(ValueError) as theirs:
        json.loads(payload)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


def test_the_usual_reply() -> None:
    assert loads_reply(b'{"id":"task-1","progress":5}\n') == {"id": "task-1", "progress": 5}
