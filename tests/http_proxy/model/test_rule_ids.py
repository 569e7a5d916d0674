"""Metric labels come from structured rule ids (rules.Fixed, Rule.label), never from the text
of a message: the same labels as docs/metrics.md names, and rewording changes none."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress_router.http_proxy.model import rules
from egress_router.http_proxy.model.rules import DEFAULT_DENY, PROTECTED, Fixed, parse_destinations
from tests.http_proxy.model.helpers import connection, head

TABLE = parse_destinations("!*.example.com\n203.0.113.0/24\n*\n")


@pytest.mark.parametrize(
    ("rule", "label"),
    [
        (TABLE.rules[0], "rule 1: !*.example.com"),
        (TABLE.rules[2], "rule 3: *"),
        (DEFAULT_DENY, "default"),
        (PROTECTED, "loopback"),
    ],
)
def test_labels(rule: rules.Rule, label: str) -> None:
    assert rule.label == label


def test_the_fixed_words_are_those_the_docs_name() -> None:
    words = {"none", "default", "loopback", "connect-port", "self", "other"}
    assert {f.value for f in Fixed} == words


@given(st.text(min_size=1, max_size=40))
def test_rewording_a_default_changes_no_label(text: str) -> None:
    assert dataclasses.replace(DEFAULT_DENY, text=text).label == "default"
    assert dataclasses.replace(PROTECTED, text=text).label == "loopback"


@pytest.mark.parametrize(
    ("target", "method", "rule_id"),
    [
        (b"web.test:8443", b"CONNECT", "connect-port"),  # the core's own 403
        (b"http://www.example.com/", b"GET", "rule 1: !*.example.com"),  # a name rule's 403
    ],
)
def test_the_core_sets_ids_not_text(target: bytes, method: bytes, rule_id: str) -> None:
    ex, _ = head(connection(), target, method, [] if method == b"CONNECT" else None)
    assert ex.status == 403 and ex.rule_id == rule_id


def test_a_request_that_fails_before_the_policy_is_none() -> None:
    conn = connection()
    ex = conn.message_begin(0.0)
    conn.fail(400, "malformed request")
    assert ex.rule_id == "none"


@pytest.mark.parametrize(
    ("set_by_dial", "rule_id"),
    [(None, "other"), (Fixed.SELF, "self")],  # a 403 of ours: the dial's id is kept
)
def test_a_403_from_the_dial_keeps_its_id(set_by_dial: Fixed | None, rule_id: str) -> None:
    conn = connection()
    ex, _ = head(conn, b"http://web.test/")
    if set_by_dial is not None:
        ex.rule_id = set_by_dial
    conn.dial_failed(ex, 403, "any wording at all")
    assert (ex.status, ex.rule, ex.rule_id) == (403, "any wording at all", rule_id)
