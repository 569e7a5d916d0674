"""``kernel.netlink``: a netlink reply that never comes is an error after the deadline."""

from __future__ import annotations

import asyncio
import ipaddress
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from egress_router.errors import DataplaneError
from egress_router.kernel.netlink import DadState, Netlink, Route, create_netns, remove_netns
from egress_router.lab import procs


class _Silent:
    """Stands in for pyroute2's socket: every request waits for a reply that is lost."""

    async def link_lookup(self, **_: Any) -> list[int]:
        await asyncio.Event().wait()
        return []

    def close(self) -> None:
        pass


def test_a_lost_reply_is_an_error_not_a_hang() -> None:
    nl = Netlink.__new__(Netlink)
    nl.namespace, nl.timeout = "lost", 0.3
    nl._loop = asyncio.new_event_loop()
    nl._ipr = _Silent()
    started = time.monotonic()
    with pytest.raises(DataplaneError, match=r"look up eth0: no reply within 0\.3 s"):
        nl.link("eth0")
    assert time.monotonic() - started < 2
    nl.close()


# -- IPv6 in a scratch namespace (root) ---------------------------------------------------------

V6A = ipaddress.IPv6Interface("2001:db8:1::10/64")
V4A = ipaddress.IPv4Interface("198.18.0.10/24")
GW6 = ipaddress.IPv6Address("2001:db8:1::1")
_DAD_ON = " && ".join(
    f"echo 1 > /proc/sys/net/ipv6/conf/{scope}/accept_dad" for scope in ("all", "default")
)


@pytest.fixture
def namespace() -> Iterator[str]:
    """A namespace with a veth pair ``v6a``/``v6b`` (both up, duplicate address detection on),
    removed afterwards."""
    name = f"erv6nl{uuid.uuid4().hex[:8]}"
    create_netns(name)
    try:
        procs.run(name, ["sh", "-c", _DAD_ON], timeout=30, check=True)  # before the links
        with Netlink(name) as nl:
            nl.set_up("lo")
            nl.add_veth("v6a", "v6b")
            nl.set_up("v6a")
            nl.set_up("v6b")
        yield name
    finally:
        remove_netns(name)


def _wait(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.lab
def test_ipv6_addresses_are_added_listed_and_deleted(namespace: str) -> None:
    with Netlink(namespace) as nl:
        assert nl.addresses6("v6a") == []  # the link-local address is left out
        assert any(a.ip.is_link_local for a, _ in nl._addresses6("v6a"))
        nl.add_address("v6a", V6A)
        nl.add_address("v6a", V4A)
        assert nl.addresses6("v6a") == [V6A]
        assert nl.addresses("v6a") == [V4A]
        assert nl.all_addresses("v6a") == [V4A, V6A]  # IPv4 first
        nl.delete_address("v6a", V6A)
        assert nl.addresses6("v6a") == [] and nl.all_addresses("v6a") == [V4A]
        with pytest.raises(DataplaneError, match=r"netlink delete address 2001:db8:1::10/64"):
            nl.delete_address("v6a", V6A)


@pytest.mark.lab
def test_dad_states_go_from_tentative_to_done(namespace: str) -> None:
    with Netlink(namespace) as nl:
        nl.add_address("v6a", V6A)
        assert nl.dad_states("v6a")[V6A.ip] == DadState.TENTATIVE  # probes take a second
        assert _wait(lambda: nl.dad_states("v6a")[V6A.ip] == DadState.DONE)
        assert _wait(lambda: set(nl.dad_states("v6a").values()) == {DadState.DONE})


@pytest.mark.lab
def test_dad_states_report_a_duplicate(namespace: str) -> None:
    taken = "2001:db8:1::30/64"
    procs.run(namespace, ["ip", "-6", "addr", "add", taken, "dev", "v6b", "nodad"], check=True)
    with Netlink(namespace) as nl:
        nl.add_address("v6a", ipaddress.IPv6Interface(taken))
        address = ipaddress.IPv6Address("2001:db8:1::30")
        assert _wait(lambda: nl.dad_states("v6a")[address] != DadState.TENTATIVE)
        assert nl.dad_states("v6a")[address] == DadState.FAILED
        assert nl.dad_states("v6b")[address] == DadState.DONE


@pytest.mark.lab
def test_ipv6_routes_are_added_listed_and_deleted(namespace: str) -> None:
    with Netlink(namespace) as nl:
        nl.add_address("v6a", V6A)
        index = nl.require_link("v6a").index
        host = ipaddress.IPv6Network(f"{GW6}/128")
        nl.add_route(host, None, "v6a")  # on-link: no gateway (IPv6 has no link scope)
        nl.add_route(None, GW6, "v6a")  # the default route's family is the gateway's
        nl.add_route(ipaddress.IPv6Network("2001:db8:2::/64"), GW6, "v6a")
        mine = {r.dst: r for r in nl.routes(6) if r.proto != 2}  # not the kernel's own
        assert mine == {
            host: Route(host, None, index, 0, mine[host].proto, version=6),
            None: Route(None, GW6, index, 0, mine[None].proto, version=6),
            ipaddress.IPv6Network("2001:db8:2::/64"): Route(
                ipaddress.IPv6Network("2001:db8:2::/64"), GW6, index, 0, mine[None].proto, 6
            ),
        }
        assert mine[None].is_default and mine[None].version == 6
        assert nl.routes() == nl.routes(4) == []
        for route in mine.values():
            nl.delete_route(route)
        assert [r for r in nl.routes(6) if r.proto != 2] == []


@pytest.mark.lab
def test_default_route_link_prefers_ipv4_and_falls_back_to_ipv6(namespace: str) -> None:
    with Netlink(namespace) as nl:
        assert nl.default_route_link() is None
        nl.add_address("v6a", V6A)
        nl.add_route(ipaddress.IPv6Network(f"{GW6}/128"), None, "v6a")
        nl.add_route(None, GW6, "v6a")
        assert nl.default_route_link() == "v6a"  # IPv6 only
        nl.add_address("v6b", V4A)
        nl.add_route(None, ipaddress.IPv4Address("198.18.0.1"), "v6b")
        assert nl.default_route_link() == "v6b"  # an IPv4 default route comes first
