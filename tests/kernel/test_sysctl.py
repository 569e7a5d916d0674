"""``kernel.sysctl``: network keys only, and per-interface keys of interfaces with dots."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from egress_router.errors import DataplaneError
from egress_router.kernel import sysctl
from egress_router.kernel.netlink import Netlink, create_netns, remove_netns
from egress_router.lab import procs


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("net.ipv4.ip_forward", "net/ipv4/ip_forward"),
        ("net.ipv6.conf.all.forwarding", "net/ipv6/conf/all/forwarding"),
        ("net.ipv6.conf.macvlan0.disable_ipv6", "net/ipv6/conf/macvlan0/disable_ipv6"),
        ("net.ipv6.conf.eth0.100.disable_ipv6", "net/ipv6/conf/eth0.100/disable_ipv6"),
        ("net.ipv4.conf.a.b.c.rp_filter", "net/ipv4/conf/a.b.c/rp_filter"),
        ("net.ipv6.neigh.ens3.100.retrans_time_ms", "net/ipv6/neigh/ens3.100/retrans_time_ms"),
        ("net.ipv4.neigh.default.gc_thresh1", "net/ipv4/neigh/default/gc_thresh1"),
    ],
)
def test_keys_map_to_proc_paths(key: str, path: str) -> None:
    assert sysctl._path(key) == Path("/proc/sys") / path


def test_non_network_keys_are_refused() -> None:
    with pytest.raises(
        DataplaneError, match=r"^refusing to touch non-network sysctl kernel\.pid_max$"
    ):
        sysctl.read("kernel.pid_max")
    with pytest.raises(
        DataplaneError, match=r"^refusing to touch non-network sysctl vm\.swappiness$"
    ):
        sysctl.write("vm.swappiness", "1")


_READ_WRITE = """
import sys
from egress_router.kernel import sysctl
key = sys.argv[1]
before = sysctl.read(key)
changed = sysctl.write(key, "1")
again = sysctl.write(key, "1")
print(before, changed, again, sysctl.read(key))
"""


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"ersys{uuid.uuid4().hex[:8]}"
    create_netns(name)
    try:
        with Netlink(name) as nl:
            nl.add_veth("v6.dot", "v6peer")
        yield name
    finally:
        remove_netns(name)


@pytest.mark.lab
@pytest.mark.parametrize(
    "key", ["net.ipv6.conf.v6.dot.disable_ipv6", "net.ipv4.conf.v6.dot.forwarding"]
)
def test_an_interface_with_a_dot_in_its_name(namespace: str, key: str) -> None:
    """Read and written in the namespace's own /proc/sys/net (the host's is never touched)."""
    result = procs.run(namespace, [sys.executable, "-c", _READ_WRITE, key], timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "True", "False", "1"]
