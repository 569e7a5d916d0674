"""``egress-router setup`` on the real kernel: every line form, modes, idempotence, reloads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from egress_router.lab import procs
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import Lab
from tests.conftest import EGRESS_ROUTER, cli, setup_router
from tests.redirect.helpers import (
    ROUTER_IP,
    UDP_ECHO_PORT,
    WEB_LISTEN,
    curl,
    snapshot,
    udp_ask,
    udp_echo,
)
from tests.reference_examples import REDIRECT_CONFIGMAP, REDIRECT_MULTI

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One lab for the module: every test installs the destination it needs (a reload)."""
    with Lab(workdir=tmp_path_factory.mktemp("lab")) as lab:
        Nginx(lab, "web", WEB_LISTEN).start()
        udp_echo(lab, "203.0.113.26", UDP_ECHO_PORT)
        udp_echo(lab, "203.0.113.27", UDP_ECHO_PORT)
        yield lab


def served(lab: Lab, port: int) -> str:
    """Which server address:port answered the client's request to the router, and from whom."""
    status, body, err = curl(lab, f"http://{ROUTER_IP}:{port}/server")
    assert status == 0, err
    return body


@pytest.mark.parametrize(
    "value", [REDIRECT_MULTI, REDIRECT_CONFIGMAP, REDIRECT_CONFIGMAP.replace("\n", "\r\n")]
)
def test_documented_multi_destination_example(shared: Lab, value: str) -> None:
    setup_router(shared, destination=value)
    assert served(shared, 80) == "203.0.113.25:80 198.19.123.99"
    assert served(shared, 8080) == "203.0.113.26:80 198.19.123.99"
    assert served(shared, 8443) == "203.0.113.26:443 198.19.123.99"
    assert served(shared, 9000) == "203.0.113.27:9000 198.19.123.99"  # fallback, port kept


def test_single_ip_sends_every_port_there(shared: Lab) -> None:
    setup_router(shared, destination="203.0.113.27")
    # as in the blog, the router pod itself reaches the server from the reserved IP
    assert curl(shared, "http://203.0.113.25/ip", role="router")[1] == "198.19.123.99"
    assert served(shared, 80) == "203.0.113.27:80 198.19.123.99"
    assert served(shared, 9000) == "203.0.113.27:9000 198.19.123.99"
    status, answer, err = udp_ask(shared, ROUTER_IP, UDP_ECHO_PORT)
    assert (status, answer) == (0, "from 198.19.123.99"), err


def test_client_cannot_reach_the_server_directly(shared: Lab) -> None:
    setup_router(shared, destination="203.0.113.25")
    status, _, _ = curl(shared, "http://203.0.113.25/ip", timeout=2)
    assert status != 0


def test_port_rules_and_remote_port(shared: Lab) -> None:
    setup_router(shared, destination="80 tcp 203.0.113.25\n9001 tcp 203.0.113.27 9000")
    assert served(shared, 80) == "203.0.113.25:80 198.19.123.99"
    assert served(shared, 9001) == "203.0.113.27:9000 198.19.123.99"


def test_udp_line_and_protocol_separation(shared: Lab) -> None:
    destination = f"{UDP_ECHO_PORT} udp 203.0.113.26\n{UDP_ECHO_PORT} tcp 203.0.113.27 80"
    setup_router(shared, destination=destination)
    status, answer, err = udp_ask(shared, ROUTER_IP, UDP_ECHO_PORT)
    assert (status, answer) == (0, "from 198.19.123.99"), err
    # the same port over TCP goes where the tcp line says, never through the UDP map
    assert served(shared, UDP_ECHO_PORT) == "203.0.113.27:80 198.19.123.99"


def test_udp_remote_port(shared: Lab) -> None:
    setup_router(shared, destination=f"53 udp 203.0.113.26 {UDP_ECHO_PORT}")
    status, answer, err = udp_ask(shared, ROUTER_IP, 53)
    assert (status, answer) == (0, "from 198.19.123.99"), err
    # a port mapped only for UDP is not mapped for TCP: rejected at once
    assert curl(shared, f"http://{ROUTER_IP}:53/", timeout=3)[0] == 7


def test_without_fallback_unmapped_ports_are_rejected_at_once(shared: Lab) -> None:
    setup_router(shared, destination="80 tcp 203.0.113.25")
    # a program listening in the router pod itself must not be reachable either
    listener = shared.spawn(
        "router", ["socat", "TCP4-LISTEN:9000,reuseaddr,fork", "SYSTEM:echo router"], name="l9000"
    )
    try:
        listening = ["ss", "-Hltn", "sport", "9000"]  # else "refused" would prove nothing
        assert procs.wait_for(lambda: shared.exec("router", listening, check=True).stdout, 20)
        # Bounds far below the clients' own timeouts (a drop would end only there), with room
        # for a loaded machine starting the clients.
        started = time.monotonic()
        status, _, err = curl(shared, f"http://{ROUTER_IP}:9000/", timeout=20)
        assert status == 7, err  # connection refused
        assert time.monotonic() - started < 10  # a reset, not a timeout
        started = time.monotonic()
        status, answer, err = udp_ask(shared, ROUTER_IP, UDP_ECHO_PORT, timeout=20)
        assert answer == "" and "refused" in err.lower(), (status, err)
        assert time.monotonic() - started < 10  # ICMP port unreachable, not silence
    finally:
        listener.stop()
    assert served(shared, 80) == "203.0.113.25:80 198.19.123.99"


def test_comments_only_rejects_everything(shared: Lab) -> None:
    setup_router(shared, destination="# nothing routed yet\n\n")
    status, _, err = curl(shared, f"http://{ROUTER_IP}:80/", timeout=5)
    assert status == 7, err


def test_ping_to_router_is_answered_without_fallback(shared: Lab) -> None:
    setup_router(shared, destination="80 tcp 203.0.113.25")
    assert shared.exec("client", ["ping", "-c1", "-W2", ROUTER_IP]).returncode == 0


def test_second_run_changes_nothing(shared: Lab) -> None:
    setup_router(shared, destination=REDIRECT_MULTI)
    before = snapshot(shared)
    result = setup_router(
        shared, destination=REDIRECT_MULTI, extra_env={"EGRESS_ROUTER_DEBUG": "1"}
    )
    assert snapshot(shared) == before  # handles included: the table was not re-created
    steps = [line for line in result.stderr.splitlines() if "debug:" in line]
    assert not any(" add " in s or " del " in s or "replacing" in s for s in steps), steps
    assert any("ruleset already current" in s for s in steps)


def test_new_input_replaces_the_ruleset(shared: Lab) -> None:
    setup_router(shared, destination="80 tcp 203.0.113.25\n203.0.113.27")
    assert served(shared, 80) == "203.0.113.25:80 198.19.123.99"
    setup_router(shared, destination="80 tcp 203.0.113.26\n8443 tcp 203.0.113.26 443")
    assert served(shared, 80) == "203.0.113.26:80 198.19.123.99"
    status, _, _ = curl(shared, f"http://{ROUTER_IP}:9000/", timeout=3)
    assert status == 7  # the fallback is gone
    tables = shared.exec("router", ["nft", "-j", "list", "tables"], check=True).stdout
    names = [t["table"]["name"] for t in json.loads(tables)["nftables"] if "table" in t]
    assert names.count("egress_router") == 1


BAD_INPUTS = [
    pytest.param({"EGRESS_SOURCE": "999.19.123.99"}, "EGRESS_SOURCE", id="source-octet"),
    pytest.param({"EGRESS_SOURCE": "198.19.123.99/33"}, "EGRESS_SOURCE", id="source-prefix"),
    pytest.param({"EGRESS_SOURCE": ""}, "EGRESS_SOURCE", id="source-missing"),
    pytest.param({"EGRESS_GATEWAY": ""}, "EGRESS_GATEWAY", id="gateway-missing"),
    pytest.param({"EGRESS_GATEWAY": "198.19.123.1/24"}, "EGRESS_GATEWAY", id="gateway-cidr"),
    pytest.param({"EGRESS_ROUTER_MODE": "redirect"}, "EGRESS_ROUTER_MODE", id="mode-unknown"),
    pytest.param({"EGRESS_DESTINATION": ""}, "EGRESS_DESTINATION", id="destination-missing"),
    pytest.param(
        {"EGRESS_DESTINATION": "80 tcp 203.0.113.25\n80 tcp 203.0.113.256"},
        "EGRESS_DESTINATION line 2",
        id="destination-octet",
    ),
    pytest.param(
        {"EGRESS_DESTINATION": "80 tcp 203.0.113.25\n70000 tcp 203.0.113.26"},
        "EGRESS_DESTINATION line 2",
        id="destination-port",
    ),
    pytest.param(
        {"EGRESS_DESTINATION": "80 sctp 203.0.113.25"}, "EGRESS_DESTINATION line 1", id="proto"
    ),
    pytest.param(
        {"EGRESS_DESTINATION": "203.0.113.27\n80 tcp 203.0.113.25"},
        "EGRESS_DESTINATION line 2",
        id="fallback-not-last",
    ),
    pytest.param(
        {"EGRESS_DESTINATION": "80 tcp 203.0.113.25\n# c\n80 tcp 203.0.113.26"},
        "EGRESS_DESTINATION line 3",
        id="duplicate-port",
    ),
    pytest.param(
        {"EGRESS_ROUTER_MACVLAN_INTERFACE": "no such/if"},
        "EGRESS_ROUTER_MACVLAN_INTERFACE",
        id="interface-name",
    ),
]

GOOD = {
    "EGRESS_SOURCE": "198.19.123.99/24",
    "EGRESS_GATEWAY": "198.19.123.1",
    "EGRESS_ROUTER_MODE": "init",
    "EGRESS_DESTINATION": "80 tcp 203.0.113.25",
}


@pytest.mark.parametrize(("changes", "named"), BAD_INPUTS)
def test_bad_input_on_a_running_router_keeps_the_last_good_state(
    shared: Lab, changes: dict[str, str], named: str
) -> None:
    setup_router(shared, destination=REDIRECT_MULTI)
    before = snapshot(shared)
    result = cli("setup", env={**GOOD, **changes}, namespace=shared.ns("router"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"egress-router: {named}"), result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(shared) == before
    assert served(shared, 8080) == "203.0.113.26:80 198.19.123.99"


@pytest.mark.parametrize(("changes", "named"), BAD_INPUTS[5:9])
def test_bad_input_on_a_fresh_pod_touches_nothing(
    lab: Lab, changes: dict[str, str], named: str
) -> None:
    before = snapshot(lab)
    result = cli("setup", env={**GOOD, **changes}, namespace=lab.ns("router"))
    assert result.returncode == 1 and named in result.stderr
    assert snapshot(lab) == before


def test_missing_interface_is_reported_before_any_change(lab: Lab) -> None:
    before = snapshot(lab)
    env = {**GOOD, "EGRESS_ROUTER_MACVLAN_INTERFACE": "net1"}
    result = cli("setup", env=env, namespace=lab.ns("router"))
    assert result.returncode == 2
    assert result.stderr.strip() == "egress-router: interface net1 not found"
    assert snapshot(lab) == before


def test_unit_test_mode_prints_the_plan_and_touches_nothing(shared: Lab) -> None:
    before = snapshot(shared)
    env = {**GOOD, "EGRESS_ROUTER_MODE": "unit-test", "EGRESS_DESTINATION": REDIRECT_MULTI}
    result = cli("setup", env=env, namespace=shared.ns("router"))
    assert result.returncode == 0, result.stderr
    assert "address add 198.19.123.99/24 dev macvlan0" in result.stdout
    assert "dnat ip to tcp dport map @dnat_tcp_addr" in result.stdout
    assert snapshot(shared) == before
    ruleset = result.stdout[result.stdout.index("\ntable ip ") :]
    check = shared.exec("router", ["nft", "-c", "-f", "-"], input=ruleset)
    assert check.returncode == 0, check.stderr  # the printed ruleset is valid nft


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_legacy_mode_runs_until_signalled_then_exits_0(
    lab: Lab, tmp_path: Path, sig: signal.Signals
) -> None:
    Nginx(lab, "web", ["203.0.113.25:80"]).start()
    env = {**GOOD, "EGRESS_ROUTER_MODE": "", "EGRESS_DESTINATION": "203.0.113.25"}
    argv = ["ip", "netns", "exec", lab.ns("router"), EGRESS_ROUTER, "setup"]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("EGRESS_")}
    proc = subprocess.Popen(argv, env={**full_env, **env}, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30  # the command starts slowly on a loaded machine
        while curl(lab, f"http://{ROUTER_IP}/ip", timeout=1)[1] != "198.19.123.99":
            assert proc.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert proc.poll() is None  # still running while configured
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("mode", ["http-proxy", "dns-proxy"])
def test_proxy_modes_configure_network_only(lab: Lab, mode: str) -> None:
    Nginx(lab, "web", ["203.0.113.25:80"]).start()
    setup_router(lab, destination="203.0.113.26")  # a redirect table left from before...
    setup_router(lab, mode=mode)  # ...is removed: the proxy's ports must not be DNATed
    assert lab.exec("router", ["nft", "list", "ruleset"]).stdout.strip() == ""
    status, body, err = curl(lab, "http://203.0.113.25/ip", role="router")
    assert (status, body) == (0, "198.19.123.99"), err
    routes = lab.exec("router", ["ip", "route", "show", "default"]).stdout.strip().splitlines()
    assert routes == ["default via 198.19.123.1 dev macvlan0 proto static"]
    assert lab.exec("router", ["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip() == "1"


def test_bare_source_puts_only_the_gateway_on_link(lab: Lab) -> None:
    setup_router(lab, destination="203.0.113.25", source="198.19.123.99")
    addresses = lab.exec("router", ["ip", "-4", "-o", "addr", "show", "macvlan0"]).stdout
    assert "198.19.123.99/32" in addresses
    via = lab.exec("router", ["ip", "route", "get", "198.19.123.50"]).stdout
    assert "via 198.19.123.1 dev macvlan0" in via
    setup_router(lab, destination="203.0.113.25", source="198.19.123.99/24")
    via = lab.exec("router", ["ip", "route", "get", "198.19.123.50"]).stdout
    assert "via" not in via and "dev macvlan0" in via


def test_gratuitous_arp_reaches_the_gateway(lab: Lab) -> None:
    # Linux learns new neighbours from gratuitous ARP only with arp_accept (switches always do)
    lab.sysctl("gw", "net.ipv4.conf.lan0.arp_accept", "1")
    setup_router(lab, destination="203.0.113.25")
    neighbours = lab.exec("gw", ["ip", "neigh", "show", "198.19.123.99"]).stdout
    mac = lab.macvlan_mac()
    assert mac is not None and mac in neighbours.lower()


def test_openshift4_interface_names(tmp_path: Path) -> None:
    with Lab(macvlan_name="net1", workdir=tmp_path / "lab") as lab:
        Nginx(lab, "web", ["203.0.113.25:80"]).start()
        result = cli(
            "setup",
            "--macvlan-interface",
            "net1",
            env={**GOOD, "EGRESS_DESTINATION": "203.0.113.25"},
            namespace=lab.ns("router"),
        )
        assert result.returncode == 0, result.stderr
        assert served(lab, 80) == "203.0.113.25:80 198.19.123.99"
