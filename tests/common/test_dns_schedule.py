"""When names are looked up again: TTL floor/ceiling, back-off, what a failure keeps, how long
kept addresses stay valid; every transition, under the dns proxy's and the firewall's policies,
and properties over any sequence of them."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress_router.common.dns_schedule import (
    Event,
    NameState,
    RefreshPolicy,
    on_answer,
    on_failure,
    on_slow,
)

IP = ipaddress.IPv4Address
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
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


# -- the firewall's policy: steady retries, grace, negative answers are failures ---------------

FIREWALL = RefreshPolicy(
    ttl_min_s=5,
    ttl_max_s=1800,
    retry_base_s=5,
    retry_cap_s=120,
    retry_steady=10,
    grace_s=5,
    believe_negative=False,
    peers_only=False,
)
V6 = ipaddress.IPv6Address("2001:db8::7")


@pytest.mark.parametrize(
    ("failures", "after"),
    [(1, 5), (10, 5), (11, 10), (12, 20), (13, 40), (14, 80), (15, 120), (1000, 120)],
)
def test_steady_retries_then_doubling_to_a_cap(failures: int, after: float) -> None:
    assert FIREWALL.retry_after(failures) == after


def test_an_answer_is_valid_until_its_refresh_plus_grace() -> None:
    out = on_answer(NameState[Address]("n.example"), [V6, A], 60, 100.0, FIREWALL)
    assert out.event is Event.ANSWER and out.state.addresses == (A, V6)  # IPv4 first
    assert out.state.next_lookup == 160.0 and out.state.valid_until == 165.0
    assert out.state.kept(100.0) == [(A, 65.0), (V6, 65.0)]
    assert FIREWALL.lifetime(60) == 65.0


def test_a_negative_answer_is_a_failure_that_keeps_the_last_good() -> None:
    state = on_answer(NameState[Address]("n.example"), [A], 60, 0.0, FIREWALL).state
    out = on_answer(state, [], 0, 60.0, FIREWALL, "no such name (NXDOMAIN)")
    assert out.event is Event.FAILURE and not out.changed
    assert out.state.addresses == (A,) and out.state.last_error == "no such name (NXDOMAIN)"
    assert out.state.next_lookup == 65.0 and out.state.valid_until == 70.0  # retry + grace
    assert out.state.kept(60.0) == [(A, 10.0)]


def test_every_address_counts_without_peers_only() -> None:
    out = on_answer(NameState[Address]("n.example"), [IP("127.0.0.1")], 60, 0.0, FIREWALL)
    assert out.state.addresses == (IP("127.0.0.1"),)


def test_the_first_failure_has_nothing_to_keep() -> None:
    out = on_failure(NameState[Address]("late.example"), "timed out", 10.0, FIREWALL)
    assert out.event is Event.FAILURE and out.state.failures == 1 and out.previous_failures == 0
    assert out.state.kept(10.0) == [] and out.state.next_lookup == 15.0


def test_recovery_reports_the_failures_before_it() -> None:
    state = on_failure(NameState[Address]("n.example"), "x", 0.0, FIREWALL).state
    state = on_failure(state, "x", 5.0, FIREWALL).state
    out = on_answer(state, [A], 30, 10.0, FIREWALL)
    assert out.event is Event.ANSWER and out.previous_failures == 2 and out.state.failures == 0


def test_a_slow_lookup_extends_the_kept_addresses_by_its_budget() -> None:
    state = on_answer(NameState[Address]("n.example"), [A], 60, 0.0, FIREWALL).state
    assert FIREWALL.slow_after == 2.5
    out = on_slow(state, 62.5, 10.0, FIREWALL)
    assert out.event is Event.SLOW and not out.changed and out.message is None
    assert out.state.valid_until == 77.5 and out.state.next_lookup == 60.0  # still running
    assert out.state.kept(62.5) == [(A, 15.0)]
    # never shortened: a later failure keeps the longer of the two
    failed = on_failure(out.state, "timed out", 63.0, FIREWALL)
    assert failed.state.valid_until == 77.5
    assert on_slow(failed.state, 63.0, 0.0, FIREWALL).state.valid_until == 77.5


def test_a_slow_lookup_without_addresses_changes_nothing_but_the_clock() -> None:
    out = on_slow(NameState[Address]("n.example"), 3.0, 10.0, FIREWALL)
    assert out.state == NameState[Address]("n.example", seen=3.0)


def test_addresses_past_their_validity_are_not_kept() -> None:
    state = on_answer(NameState[Address]("n.example"), [A], 60, 0.0, FIREWALL).state
    assert state.kept(65.0) == [] and state.kept(64.0) == [(A, 1.0)]


def test_the_clock_never_runs_backwards() -> None:
    state = on_answer(NameState[Address]("n.example"), [A], 60, 100.0, FIREWALL).state
    earlier = on_failure(state, "x", 50.0, FIREWALL).state  # as if given 100.0
    assert earlier.seen == 100.0 and earlier.next_lookup == 105.0
    assert on_answer(earlier, [A], 60, 0.0, FIREWALL).state.next_lookup == 160.0


# -- properties: over any sequence of transitions ----------------------------------------------

POLICIES = st.builds(
    RefreshPolicy,
    ttl_min_s=st.floats(0.001, 60),
    ttl_max_s=st.floats(60, 86400),
    retry_base_s=st.floats(0.001, 10),
    retry_cap_s=st.floats(10, 600),
    retry_steady=st.integers(1, 20),
    grace_s=st.floats(0, 30),
    believe_negative=st.booleans(),
    peers_only=st.booleans(),
)
ADDRESSES = st.lists(
    st.sampled_from([A, B, IP("127.0.0.1"), IP("0.0.0.0"), V6, ipaddress.IPv6Address("::1")]),
    max_size=4,
)
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["answer", "failure", "slow"]),
        st.floats(-100, 10**6),  # time moved by this (backwards too: the state must not follow)
        ADDRESSES,
        st.integers(0, 2**31 - 1),  # a TTL or a budget
    ),
    max_size=40,
)


@given(POLICIES, STEPS)
def test_time_only_moves_forward_and_the_next_lookup_is_bounded(
    policy: RefreshPolicy, steps: list[tuple[str, float, list[Address], int]]
) -> None:
    state = NameState[Address]("n.example")
    now = 1000.0
    for kind, delta, addresses, number in steps:
        now += delta
        before = state
        if kind == "answer":
            out = on_answer(state, addresses, number, now, policy)
        elif kind == "failure":
            out = on_failure(state, "timed out", now, policy)
        else:
            out = on_slow(state, now, min(number, 60), policy)
        state = out.state
        clock = max(now, before.seen)
        assert state.seen == clock  # the state's clock: never behind, never ahead
        assert state.valid_until >= min(before.valid_until, clock) or not state.addresses
        if out.event is Event.SLOW:
            assert state.next_lookup == before.next_lookup and state.addresses == before.addresses
            assert state.valid_until >= before.valid_until
        else:
            assert clock < state.next_lookup <= clock + policy.longest_wait
        if out.event is Event.FAILURE:
            assert state.addresses == before.addresses  # the last good kept
            if state.addresses:
                assert state.valid_until >= state.next_lookup + policy.grace_s
        if state.addresses:
            assert list(state.addresses) == sorted(
                set(state.addresses), key=lambda a: (a.version, int(a))
            )
        for _, left in state.kept(clock):
            assert 0 < left <= policy.longest_wait + policy.grace_s + 60
        assert out.changed == (state.addresses != before.addresses)
