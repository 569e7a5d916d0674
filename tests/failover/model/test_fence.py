"""The kernel switch's nft text: both tables, the timeout rounded down, never past the deadline."""

from __future__ import annotations

import ipaddress

import pytest

from egress_router.failover.model import fence

ADDRESS = ipaddress.IPv4Address("198.19.123.99")


def test_tables_drop_what_carries_the_address_unless_alive() -> None:
    text = fence.tables(ADDRESS)
    assert text.startswith("add table arp egress_router_fence\ndelete table arp")
    assert "arp saddr ip 198.19.123.99 arp saddr ip != @alive counter drop" in text
    assert "ip saddr 198.19.123.99 ip saddr != @alive counter drop" in text
    assert "hook postrouting priority 200" in text  # after source NAT
    assert text.count("flags timeout") == 2


@pytest.mark.parametrize(
    ("remaining", "expected"),
    [
        (0.4999, "timeout 499ms"),  # rounded down: never audible past the deadline
        (0.001, "timeout 1ms"),
        (120.0, "timeout 60000ms"),
    ],
)
def test_open_until(remaining: float, expected: str) -> None:
    text = fence.open_until(ADDRESS, remaining)
    assert text is not None
    assert text.count(expected) == 2
    assert text.index("flush set arp") < text.index("add element arp")


@pytest.mark.parametrize("remaining", [0.0, 0.0009, -1.0])
def test_nothing_left_means_no_refresh(remaining: float) -> None:
    assert fence.open_until(ADDRESS, remaining) is None


def test_silence_and_remove() -> None:
    assert fence.silence() == (
        "flush set arp egress_router_fence alive\nflush set ip egress_router_fence alive\n"
    )
    assert "delete table ip egress_router_fence" in fence.remove()
