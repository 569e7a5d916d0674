"""When names are looked up again: TTL floor/ceiling, back-off, what a failure keeps."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress_router.common.dns_schedule import NameState, RefreshPolicy, on_answer, on_failure

IP = ipaddress.IPv4Address
A, B = IP("203.0.113.25"), IP("203.0.113.26")
POLICY = RefreshPolicy(ttl_min_s=5, ttl_max_s=1800, retry_base_s=1, retry_cap_s=30)


@pytest.mark.parametrize(
    ("ttl", "after"), [(0, 5), (1, 5), (5, 5), (60, 60), (1800, 1800), (86400, 1800)]
)
def test_ttl_is_clamped(ttl: int, after: float) -> None:
    assert POLICY.refresh_after(ttl) == after


@pytest.mark.parametrize(
    ("failures", "after"), [(1, 1), (2, 2), (3, 4), (5, 16), (6, 30), (99, 30)]
)
def test_backoff_doubles_to_a_cap(failures: int, after: float) -> None:
    assert POLICY.retry_after(failures) == after


@given(st.integers(min_value=-5, max_value=10**9))
def test_backoff_always_bounded(failures: int) -> None:
    assert 0 < POLICY.retry_after(failures) <= POLICY.retry_cap_s


def test_first_answer_is_a_change_and_schedules_by_ttl() -> None:
    out = on_answer(NameState("example.com"), [B, A], 60, 100.0, POLICY)
    assert out.changed and out.state.addresses == (A, B)  # canonical order
    assert out.state.next_lookup == 160.0
    assert out.message and "example.com -> 203.0.113.25, 203.0.113.26" in out.message


def test_same_answer_in_another_order_is_no_change() -> None:
    state = on_answer(NameState("n.example"), [A, B], 60, 0.0, POLICY).state
    out = on_answer(state, [B, A, A], 60, 60.0, POLICY)
    assert not out.changed and out.message is None


def test_failure_keeps_last_good_addresses_and_backs_off() -> None:
    state = on_answer(NameState("n.example"), [A], 60, 0.0, POLICY).state
    first = on_failure(state, "timed out", 60.0, POLICY)
    assert not first.changed and first.state.addresses == (A,)
    assert first.state.next_lookup == 61.0
    second = on_failure(first.state, "timed out", 61.0, POLICY)
    assert second.state.next_lookup == 63.0
    assert second.message and "keeping 203.0.113.25" in second.message
    back = on_answer(second.state, [A], 60, 63.0, POLICY)
    assert not back.changed and back.state.failures == 0
    assert back.message and "resolves again" in back.message


def test_failure_at_start_refuses() -> None:
    out = on_failure(NameState("late.example"), "no server answered", 0.0, POLICY)
    assert out.state.addresses == () and not out.changed
    assert out.message and "refuse" in out.message


def test_negative_answer_clears_and_retries_with_backoff() -> None:
    state = on_answer(NameState("gone.example"), [A], 60, 0.0, POLICY).state
    out = on_answer(state, [], 300, 60.0, POLICY)
    assert out.changed and out.state.addresses == ()
    assert out.state.next_lookup == 61.0  # not the negative TTL: come back quickly
    again = on_answer(out.state, [], 300, 61.0, POLICY)
    assert not again.changed and again.message is None  # logged once, not every retry


def test_answers_that_cannot_be_peers_are_dropped() -> None:
    out = on_answer(NameState("n.example"), [IP("127.0.0.1"), A, IP("0.0.0.0")], 60, 0.0, POLICY)
    assert out.state.addresses == (A,)
    only_loopback = on_answer(NameState("n.example"), [IP("127.0.0.1")], 60, 0.0, POLICY)
    assert only_loopback.state.addresses == () and only_loopback.state.failures == 1
