"""The DNS proxy on the real lab: both forwarding paths, real dnsmasq, real nginx, real curl.

The web servers admit only the reserved source 198.19.123.99, so every successful request also
proves the source address; one nginx per server address tells which address a request reached.
"""

from __future__ import annotations

import signal
import time

import pytest

from egress_router.lab.dns import DnsServer
from egress_router.lab.topology import Lab
from tests.conftest import cli
from tests.dns_proxy.helpers import (
    SOURCE,
    curl,
    eventually,
    hits,
    router_network,
    start_proxy,
    web,
)
from tests.reference_examples import DNS_PROXY

pytestmark = pytest.mark.lab

PATHS = ["kernel", "relay"]
S25, S26, S27 = "203.0.113.25", "203.0.113.26", "203.0.113.27"


@pytest.fixture
def net(lab: Lab) -> Lab:
    router_network(lab)
    return lab


@pytest.mark.parametrize("forwarding", PATHS)
def test_reference_example_unchanged(net: Lab, forwarding: str) -> None:
    dns = DnsServer(net, {"example.com": [S26], "foobar.com": [S27]}, ttl=30).start()
    dns.use_from("router")
    servers = {ip: web(net, ip, (80, 100, 443)) for ip in (S25, S26, S27)}
    proxy = start_proxy(net, DNS_PROXY, forwarding=forwarding)

    for port in (80, 100, 8080, 8443):
        result = curl(net, port)
        assert result.returncode == 0, (port, result.stderr)
        assert result.stdout.strip() == SOURCE

    # 80 -> .25:80, 100 -> example.com (.26):100, 8080 -> .26:80, 8443 -> foobar.com (.27):443
    expected_logs = {S25: [SOURCE], S26: [SOURCE, SOURCE], S27: [SOURCE]}
    assert eventually(  # nginx writes its access log just after answering
        lambda: {ip: s.client_addresses() for ip, s in servers.items()} == expected_logs, 5
    ), {ip: s.client_addresses() for ip, s in servers.items()}
    assert eventually(lambda: "port 8443 -> foobar.com 203.0.113.27:443" in proxy.output(), 5)
    log = proxy.output()
    for expected in (
        "port 80 -> 203.0.113.25 203.0.113.25:80",
        "port 100 -> example.com 203.0.113.26:100",
        "port 8080 -> 203.0.113.26 203.0.113.26:80",
    ):
        assert expected in log, log
    assert "connection 198.18.0.3:" in log


@pytest.mark.parametrize("forwarding", PATHS)
def test_not_reachable_from_the_external_side(net: Lab, forwarding: str) -> None:
    web(net, S25)
    start_proxy(net, "80 203.0.113.25\n", forwarding=forwarding)
    assert curl(net, 80).returncode == 0
    outside = net.exec("gw", ["curl", "-sS", "-m", "3", f"http://{SOURCE}:80/ip"])
    assert outside.returncode == 7, outside.stdout  # refused: nothing is offered on macvlan0


@pytest.mark.parametrize("forwarding", PATHS)
def test_unresolvable_name_refuses_then_recovers(net: Lab, forwarding: str) -> None:
    dns = DnsServer(net, {"other.example": [S25]}, ttl=1).start()
    dns.use_from("router")
    late = web(net, S26)
    web(net, S25)
    proxy = start_proxy(net, "80 203.0.113.25\n81 late.example 80\n", forwarding=forwarding)

    assert curl(net, 80).returncode == 0  # the other destination works meanwhile
    started = time.monotonic()
    refused = curl(net, 81, timeout=20)
    assert refused.returncode == 7, refused.stderr  # connection refused, at once
    assert time.monotonic() - started < 10  # far below a dropped SYN's 20 s, room for load
    assert "cannot resolve late.example" in proxy.output() or "late.example has no" in (
        proxy.output()
    )

    dns.set_records({"other.example": [S25], "late.example": [S26]})
    assert eventually(lambda: curl(net, 81, timeout=2).returncode == 0, 15), proxy.output()
    assert late.client_addresses()[-1] == SOURCE


@pytest.mark.parametrize("forwarding", PATHS)
def test_moving_name_followed_within_ttl_established_kept(
    net: Lab, forwarding: str, tmp_path: object
) -> None:
    dns = DnsServer(net, {"moving.example": [S25]}, ttl=1).start()
    dns.use_from("router")
    old, new = web(net, S25), web(net, S26)
    proxy = start_proxy(net, "80 moving.example\n", forwarding=forwarding)

    # An established keep-alive connection, made before the move.
    go = net.work / "go"
    keeper = net.spawn(
        "client",
        ["python3", "-c", _KEEPALIVE_CLIENT, str(go)],
        name=f"keeper-{forwarding}",
    )
    assert eventually(lambda: "first 200" in keeper.output(), 10), keeper.output()
    assert eventually(lambda: hits(old) == 1, 5)

    dns.set_records({"moving.example": [S26]})
    moved_at = time.monotonic()
    assert eventually(lambda: curl(net, 80, timeout=2).returncode == 0 and hits(new) > 0, 10)
    assert time.monotonic() - moved_at < 1 + 3  # TTL 1 s (+ lookup and apply slack)
    assert "moving.example -> 203.0.113.26" in proxy.output()

    time.sleep(0.3)  # let nginx finish writing its access logs
    before = hits(old)  # curls that raced the move may have reached the old address
    assert curl(net, 80).returncode == 0
    time.sleep(0.3)
    assert hits(old) == before  # new connections: only the new address now
    go.write_text("go")
    assert eventually(lambda: "second 200" in keeper.output(), 10), keeper.output()
    # The established connection stayed with the old address.
    assert eventually(lambda: hits(old) == before + 1, 5), hits(old)


_KEEPALIVE_CLIENT = r"""
import os, socket, sys, time
go = sys.argv[1]
s = socket.create_connection(("198.18.0.2", 80), timeout=10)
req = b"GET /ip HTTP/1.1\r\nHost: x\r\n\r\n"
def one(label):
    s.sendall(req)
    data = b""
    while not data.endswith(b"198.19.123.99\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    print(label, data.split(b" ")[1].decode(), flush=True)
one("first")
while not os.path.exists(go):
    time.sleep(0.05)
one("second")
"""


@pytest.mark.parametrize("forwarding", PATHS)
def test_several_addresses_spread(net: Lab, forwarding: str) -> None:
    dns = DnsServer(net, {"many.example": [S25, S26, S27]}, ttl=30).start()
    dns.use_from("router")
    servers = [web(net, ip) for ip in (S25, S26, S27)]
    start_proxy(net, "80 many.example\n", forwarding=forwarding, debug=False)
    for _ in range(9):
        assert curl(net, 80).returncode == 0
    assert eventually(lambda: sum(hits(s) for s in servers) == 9, 5)
    counts = [hits(s) for s in servers]
    if forwarding == "kernel":
        assert counts == [3, 3, 3]  # numgen inc: strict rotation
    else:  # one rotation per relay worker; the kernel spreads connections over workers
        assert sum(counts) == 9 and min(counts) > 0, counts


def test_relay_skips_a_refusing_address(net: Lab) -> None:
    dns = DnsServer(net, {"half.example": [S25, S26]}, ttl=30).start()
    dns.use_from("router")
    alive = web(net, S26)  # nothing listens on .25:80, so .25 answers with a reset
    proxy = start_proxy(net, "80 half.example\n", forwarding="relay")
    for _ in range(4):
        result = curl(net, 80)
        assert result.returncode == 0, result.stderr
    assert eventually(lambda: hits(alive) == 4, 5)
    assert "skip half.example 203.0.113.25:80" in proxy.output()


@pytest.mark.parametrize("forwarding", PATHS)
def test_debug_off_logs_no_connections(net: Lab, forwarding: str) -> None:
    web(net, S25)
    proxy = start_proxy(net, "80 203.0.113.25\n", forwarding=forwarding, debug=False)
    assert curl(net, 80).returncode == 0
    time.sleep(0.3)
    assert "connection " not in proxy.output()


def test_sigterm_removes_forwarding(net: Lab) -> None:
    web(net, S25)
    proxy = start_proxy(net, "80 203.0.113.25\n")
    assert curl(net, 80).returncode == 0
    assert proxy.stop() == 0
    assert "egress_dns_proxy" not in net.exec("router", ["nft", "list", "tables"]).stdout
    assert curl(net, 80).returncode == 7


def test_bad_input_applies_nothing(net: Lab) -> None:
    result = cli(
        "dns-proxy",
        env={"EGRESS_DNS_PROXY_DESTINATION": "80 203.0.113.25\n81 bad_name.example\n"},
        namespace=net.ns("router"),
    )
    assert result.returncode == 1
    assert "line 2: Bad destination '81 bad_name.example'" in result.stderr
    assert "egress_dns_proxy" not in net.exec("router", ["nft", "list", "tables"]).stdout


@pytest.mark.parametrize("forwarding", PATHS)
def test_name_removed_refuses_then_returns(net: Lab, forwarding: str) -> None:
    dns = DnsServer(net, {"gone.example": [S25]}, ttl=1, local_domains=["example"]).start()
    dns.use_from("router")
    web(net, S25)
    proxy = start_proxy(net, "80 gone.example\n", forwarding=forwarding, debug=False)
    assert curl(net, 80).returncode == 0
    dns.set_records({})  # NXDOMAIN from now on
    assert eventually(lambda: curl(net, 80, timeout=2).returncode == 7, 10), proxy.output()
    assert "gone.example has no IPv4 address" in proxy.output()
    dns.set_records({"gone.example": [S25]})
    assert eventually(lambda: curl(net, 80, timeout=2).returncode == 0, 10), proxy.output()


@pytest.mark.parametrize("forwarding", PATHS)
def test_no_traffic_to_destinations_when_idle(net: Lab, forwarding: str) -> None:
    dns = DnsServer(net, {"idle.example": [S26]}, ttl=1).start()
    dns.use_from("router")
    web(net, S25)
    web(net, S26)
    start_proxy(net, "80 203.0.113.25\n81 idle.example 80\n", forwarding=forwarding)
    time.sleep(2.5)  # haproxy's `check` would have connected to both by now (inter 2 s)
    tracked = net.exec("web", ["conntrack", "-L", "-p", "tcp", "-s", SOURCE])
    assert tracked.stdout.strip() == "", tracked.stdout  # no connection ever reached the web
    assert curl(net, 81).returncode == 0  # and the method does see a connection when one is made
    tracked = net.exec("web", ["conntrack", "-L", "-p", "tcp", "-s", SOURCE])
    assert "dport=80" in tracked.stdout


def test_switching_kernel_to_relay_removes_the_kernel_table(net: Lab) -> None:
    web(net, S25)
    target = web(net, S26)
    kernel = start_proxy(net, "80 203.0.113.25\n", name="kernel")
    kernel.stop(signal.SIGKILL)  # no clean-up: the table stays behind
    assert "egress_dns_proxy" in net.exec("router", ["nft", "list", "tables"]).stdout
    start_proxy(net, "80 203.0.113.26\n", forwarding="relay", name="relay")
    assert "egress_dns_proxy" not in net.exec("router", ["nft", "list", "tables"]).stdout
    assert curl(net, 80).returncode == 0
    assert eventually(lambda: hits(target) == 1, 5)
