"""The failover variables: defaults, each bad value named, the timing invariant enforced."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress_router.errors import VariableError
from egress_router.failover.model.settings import Backend, Timing, parse

BASE = {"EGRESS_ROUTER_FAILOVER": "file", "EGRESS_ROUTER_LEASE_FILE": "/run/lease.json"}


def test_off_unless_asked() -> None:
    assert parse({}, "pod-1") is None
    assert parse({"EGRESS_ROUTER_FAILOVER": " "}, "pod-1") is None


def test_defaults() -> None:
    s = parse({**BASE, "EGRESS_ROUTER_PEERS": "198.18.0.4, ::ffff:198.18.0.5"}, "Pod-1")
    assert s is not None
    assert (s.backend, s.identity, s.lease_name, s.heartbeat_port) == (
        Backend.FILE,
        "pod-1",
        "egress-router",
        7946,
    )
    assert s.peers == (ipaddress.IPv4Address("198.18.0.4"), ipaddress.IPv4Address("198.18.0.5"))
    assert s.timing == Timing()
    t = s.timing
    assert t.lease_duration > t.renew_deadline + t.withdraw_budget


def test_lease_backend_defaults_give_the_api_server_time() -> None:
    s = parse({"EGRESS_ROUTER_FAILOVER": "lease"}, "p")
    assert s is not None and (s.timing.renew_deadline, s.timing.lease_duration) == (1.0, 1.4)
    s.timing.check()


def test_durations() -> None:
    s = parse(
        {**BASE, "EGRESS_ROUTER_LEASE_DURATION": "2s", "EGRESS_ROUTER_RENEW_DEADLINE": "1s"}, "p"
    )
    assert s is not None and (s.timing.lease_duration, s.timing.renew_deadline) == (2.0, 1.0)


@pytest.mark.parametrize(
    ("extra", "variable"),
    [
        ({"EGRESS_ROUTER_FAILOVER": "raft"}, "EGRESS_ROUTER_FAILOVER"),
        ({"EGRESS_ROUTER_LEASE_FILE": "lease.json"}, "EGRESS_ROUTER_LEASE_FILE"),
        ({"EGRESS_ROUTER_PEERS": "198.18.0.4,nope"}, "EGRESS_ROUTER_PEERS"),
        ({"EGRESS_ROUTER_PEERS": "2001:db8::1"}, "EGRESS_ROUTER_PEERS"),
        ({"EGRESS_ROUTER_PEERS": "198.18.0.4 198.18.0.4"}, "EGRESS_ROUTER_PEERS"),
        ({"EGRESS_ROUTER_HEARTBEAT_PORT": "0"}, "EGRESS_ROUTER_HEARTBEAT_PORT"),
        ({"EGRESS_ROUTER_HEARTBEAT_PORT": "٣"}, "EGRESS_ROUTER_HEARTBEAT_PORT"),
        ({"EGRESS_ROUTER_LEASE_DURATION": "500"}, "EGRESS_ROUTER_LEASE_DURATION"),
        ({"EGRESS_ROUTER_LEASE_DURATION": "800ms"}, "EGRESS_ROUTER_LEASE_DURATION"),  # too short
        ({"EGRESS_ROUTER_RENEW_INTERVAL": "300ms"}, "EGRESS_ROUTER_RENEW_DEADLINE"),
        ({"EGRESS_ROUTER_HEARTBEAT_TIMEOUT": "60ms"}, "EGRESS_ROUTER_HEARTBEAT_TIMEOUT"),
        ({"EGRESS_ROUTER_IDENTITY": "Bad_Name"}, "EGRESS_ROUTER_IDENTITY"),
        ({"EGRESS_ROUTER_LEASE_NAME": "x" * 70}, "EGRESS_ROUTER_LEASE_NAME"),
    ],
)
def test_bad_values_name_their_variable(extra: dict[str, str], variable: str) -> None:
    with pytest.raises(VariableError) as caught:
        parse({**BASE, **extra}, "pod-1")
    assert variable in str(caught.value)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                *sorted(BASE),
                "EGRESS_ROUTER_PEERS",
                "EGRESS_ROUTER_LEASE_DURATION",
                "EGRESS_ROUTER_HEARTBEAT_PORT",
                "EGRESS_ROUTER_IDENTITY",
            ]
        ),
        st.text(max_size=30),
    )
)
def test_any_input_parses_or_raises_our_error(variables: dict[str, str]) -> None:
    with contextlib.suppress(VariableError):
        parse(variables, "pod-1")
