"""common.switches: the one on/off reading and the one worker-count grammar."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress_router.common.switches import MAX_WORKERS, OFF, ON, parse_switch, parse_workers


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (None, False),
        ("", False),
        (" \t\r\n", False),
        ("0", False),
        ("false", False),
        ("FALSE", False),
        ("no", False),
        ("off", False),
        (" Off \r\n", False),
        ("1", True),
        ("true", True),
        ("True", True),
        ("yes", True),
        ("on", True),
        ("\ton\n", True),
    ],
)
def test_switch(text: str | None, value: bool) -> None:
    assert parse_switch(text) is value


def test_switch_default_is_for_blank_only() -> None:
    assert parse_switch(None, default=True) is True
    assert parse_switch(" ", default=True) is True
    assert parse_switch("off", default=True) is False


@pytest.mark.parametrize(
    "text",
    ["2", "-1", "debug", "enabled", "y", "n", "none", "tru", "o n", "on\nyes", "on\x00",
     "\u00a0on", "on\u2028", "١", "１", "ｏｎ", "on" * 10_000],
)  # fmt: skip
def test_switch_refuses_everything_else(text: str) -> None:
    with pytest.raises(ValueError, match="expected on or off"):
        parse_switch(text)


def test_on_and_off_do_not_overlap() -> None:
    assert not ON & OFF


@pytest.mark.parametrize(
    ("text", "per_cpu", "count"),
    [
        ("1", False, 1),
        ("16", False, 16),
        (" 4\n", False, 4),
        ("04", False, 4),
        ("0", True, 0),
        ("16", True, 16),
    ],
)
def test_workers(text: str, per_cpu: bool, count: int) -> None:
    assert parse_workers(text, per_cpu=per_cpu) == count


@pytest.mark.parametrize(
    ("text", "per_cpu", "reason"),
    [
        ("0", False, "must be 1 to 16"),
        ("17", False, "must be 1 to 16"),
        ("17", True, "must be 0 (one per CPU) to 16"),
        ("9" * 5000, True, "must be 0"),  # overlong: never int() of it
        ("", True, "not a whole number"),
        ("-1", True, "not a whole number"),
        ("+4", False, "not a whole number"),
        ("2.5", False, "not a whole number"),
        ("1_0", False, "not a whole number"),
        ("٤", False, "not a whole number"),  # Arabic-Indic four
        ("²", False, "not a whole number"),
        ("4\n4", False, "not a whole number"),
    ],
)
def test_workers_refused(text: str, per_cpu: bool, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_workers(text, per_cpu=per_cpu)


@given(st.text(max_size=8), st.booleans())
def test_any_text_is_a_count_or_a_value_error(text: str, per_cpu: bool) -> None:
    try:
        count = parse_workers(text, per_cpu=per_cpu)
    except ValueError:
        return
    assert (0 if per_cpu else 1) <= count <= MAX_WORKERS
