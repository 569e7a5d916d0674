"""The CNI plugin for real: run in the lab's node namespace, configuring a container namespace."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from egress_router.lab.ipv6 import enable_ipv6
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import Lab
from tests.cni.helpers import (
    CONTAINER,
    CONTAINER_IP,
    LAB_CONFIG,
    attach_cluster_side,
    container_state,
    run_plugin,
)

pytestmark = pytest.mark.lab

LOG_RE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d) \[(panic|error|verbose|debug)\] "
)


@pytest.fixture
def cni_lab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(workdir=tmp_path / "lab", extra_roles=(CONTAINER,)) as built:
        attach_cluster_side(built)
        yield built


def _messages(log_file: Path) -> list[str]:
    lines = log_file.read_text().splitlines()
    assert all(LOG_RE.match(line) for line in lines), lines
    return [LOG_RE.sub("", line) for line in lines if "[verbose]" not in line]


def test_add_configures_the_pod_and_traffic_leaves_from_the_egress_ip(
    cni_lab: Lab, tmp_path: Path
) -> None:
    log_file = tmp_path / "egress-router-log"
    result = run_plugin(cni_lab, "ADD", LAB_CONFIG, log_file)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["cniVersion"] == "0.4.0"
    assert doc["interfaces"][0]["name"] == "net1"
    assert doc["interfaces"][0]["sandbox"].endswith(cni_lab.ns(CONTAINER))
    assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", doc["interfaces"][0]["mac"])
    assert doc["ips"] == [
        {"version": "4", "interface": 0, "address": "198.19.123.99/24", "gateway": "198.19.123.1"}
    ]
    assert doc["dns"] == {}

    state = container_state(cni_lab)
    net1 = next(link for link in state["links"] if link["ifname"] == "net1")
    assert net1["linkinfo"]["info_kind"] == "macvlan"
    routes = [" ".join(r.split()) for r in state["routes"].splitlines()]
    assert "default via 198.19.123.1 dev net1" in routes[0]
    assert any(r.startswith("198.18.0.0/24 dev eth0 proto kernel scope link src") for r in routes)
    assert any(
        r.startswith("198.19.123.0/24 dev net1 proto kernel scope link src 198.19.123.99")
        for r in routes
    )
    assert any(r.startswith("198.19.123.1 dev net1") for r in routes)
    assert not any("via 198.18.0.1" in r for r in routes)  # the pod's old default is gone
    assert cni_lab.exec(CONTAINER, ["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip() == "1"
    assert "table ip egress_router" in state["ruleset"]

    messages = _messages(log_file)
    assert messages[:4] == [
        "Called CNI ADD",
        "Gateway: 198.19.123.1",
        "IP Source Addresses: [198.19.123.99/24]",
        "IP Destinations: [8080 TCP 203.0.113.25 80 5353 udp 203.0.113.26]",
    ]
    assert "Created macvlan interface" in messages
    assert 'Renamed macvlan to "net1"' in messages
    assert "Adding IPv4 route to gateway 198.19.123.1 on macvlan interface" in messages
    assert any(m.startswith("deleted default route {Ifindex: ") for m in messages)
    assert "Added new default route with gateway 198.19.123.1" in messages
    assert "Added nftables rule: iif eth0 tcp dport 8080 dnat to 203.0.113.25:80" in messages

    web = Nginx(cni_lab, "web", ["203.0.113.25:80"]).start()
    proc = cni_lab.exec("client", ["curl", "-sS", "-m", "5", f"http://{CONTAINER_IP}:8080/ip"])
    assert proc.returncode == 0, proc.stderr
    assert "198.19.123.99" in proc.stdout
    assert web.client_addresses()[-1] == "198.19.123.99"

    # ADD again: same state, no second interface, no error.
    again = run_plugin(cni_lab, "ADD", LAB_CONFIG, log_file)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["interfaces"][0]["mac"] == doc["interfaces"][0]["mac"]
    assert [r for r in container_state(cni_lab)["routes"].splitlines()] == state[
        "routes"
    ].splitlines()

    # CHECK passes on a configured pod.
    check = run_plugin(cni_lab, "CHECK", LAB_CONFIG, log_file)
    assert (check.returncode, check.stdout) == (0, "")

    # DEL removes the interface and our table; a second DEL is a no-op.
    for _ in range(2):
        gone = run_plugin(cni_lab, "DEL", LAB_CONFIG, log_file)
        assert (gone.returncode, gone.stdout) == (0, "")
        after = container_state(cni_lab)
        assert not any(link["ifname"] == "net1" for link in after["links"])
        assert "egress_router" not in after["ruleset"]
    check = run_plugin(cni_lab, "CHECK", LAB_CONFIG, log_file)
    assert check.returncode == 1
    assert json.loads(check.stdout)["code"] == 100


def test_bad_config_changes_nothing(cni_lab: Lab, tmp_path: Path) -> None:
    log_file = tmp_path / "log"
    before = container_state(cni_lab)
    bad = {**LAB_CONFIG, "ip": {**LAB_CONFIG["ip"], "destinations": ["80 icmp 203.0.113.25"]}}
    result = run_plugin(cni_lab, "ADD", bad, log_file)
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert doc["code"] == 7
    assert doc["msg"].startswith("ip.destinations[0]: ")
    assert "icmp" in doc["msg"]
    assert container_state(cni_lab) == before
    with_node = cni_lab.exec("node", ["ip", "-o", "link"]).stdout
    assert "egr" not in with_node  # no temporary macvlan left on the node


def test_del_without_namespace_or_interface_succeeds(cni_lab: Lab, tmp_path: Path) -> None:
    log_file = tmp_path / "log"
    for netns in ("", "/var/run/netns/does-not-exist"):
        result = run_plugin(cni_lab, "DEL", LAB_CONFIG, log_file, netns=netns)
        assert (result.returncode, result.stdout) == (0, "")
    result = run_plugin(cni_lab, "DEL", LAB_CONFIG, log_file)
    assert (result.returncode, result.stdout) == (0, "")


def test_add_into_missing_namespace_fails_cleanly(cni_lab: Lab, tmp_path: Path) -> None:
    result = run_plugin(
        cni_lab, "ADD", LAB_CONFIG, tmp_path / "log", netns="/var/run/netns/does-not-exist"
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["code"] == 100
    assert "egr" not in cni_lab.exec("node", ["ip", "-o", "link"]).stdout


def test_fallback_ip_catches_unlisted_ports_and_sctp_rules_load(
    cni_lab: Lab, tmp_path: Path
) -> None:
    config = {
        **LAB_CONFIG,
        "cniVersion": "0.3.1",
        "ip": {
            "addresses": ["198.19.123.99/24"],
            "destinations": ["5353 udp 203.0.113.26", "9 SCTP 203.0.113.27 9"],
            "fallbackIP": "203.0.113.25",
            "gateway": "198.19.123.1",
        },
    }
    result = run_plugin(cni_lab, "ADD", config, tmp_path / "log", ifname="eg0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["cniVersion"] == "0.3.1"
    ruleset = container_state(cni_lab)["ruleset"]
    assert "dnat_sctp_addr" in ruleset and "203.0.113.27" in ruleset
    web = Nginx(cni_lab, "web", ["203.0.113.25:80"]).start()
    proc = cni_lab.exec("client", ["curl", "-sS", "-m", "5", f"http://{CONTAINER_IP}/ip"])
    assert proc.returncode == 0, proc.stderr
    assert web.client_addresses()[-1] == "198.19.123.99"
    messages = _messages(tmp_path / "log")
    assert "Added nftables rule: iif eth0 dnat to 203.0.113.25" in messages
    assert 'Renamed macvlan to "eg0"' in messages


def test_master_defaults_to_the_default_route_interface(cni_lab: Lab, tmp_path: Path) -> None:
    log_file = tmp_path / "log"
    bad = {**LAB_CONFIG, "interfaceArgs": {"master": "nope0"}}
    failed = run_plugin(cni_lab, "ADD", bad, log_file)
    assert failed.returncode == 1
    assert json.loads(failed.stdout) == {
        "cniVersion": "0.4.0",
        "code": 100,
        "msg": 'failed to lookup master "nope0"',
    }
    assert not any(link["ifname"] == "net1" for link in container_state(cni_lab)["links"])

    inferred = {k: v for k, v in LAB_CONFIG.items() if k != "interfaceArgs"}
    result = run_plugin(cni_lab, "ADD", inferred, log_file)
    assert result.returncode == 0, result.stdout + result.stderr
    links = container_state(cni_lab)["links"]
    net1 = next(link for link in links if link["ifname"] == "net1")
    node_links = json.loads(cni_lab.exec("node", ["ip", "-j", "link", "show", "ext0"]).stdout)
    assert net1["link_index"] == node_links[0]["ifindex"]  # the node's ext0 carries it
    assert net1["linkinfo"]["info_data"]["mode"] == "bridge"


def test_spec_1_1_0_lifecycle_status_add_check_gc_del(cni_lab: Lab, tmp_path: Path) -> None:
    """A current runtime's sequence with a 1.1.0 configuration (issue 8, item 10)."""
    log_file = tmp_path / "log"
    config = {**LAB_CONFIG, "cniVersion": "1.1.0"}
    status = run_plugin(cni_lab, "STATUS", config, log_file)
    assert (status.returncode, status.stdout) == (0, ""), status.stdout + status.stderr
    added = run_plugin(cni_lab, "ADD", config, log_file)
    assert added.returncode == 0, added.stdout + added.stderr
    doc = json.loads(added.stdout)
    assert doc["cniVersion"] == "1.1.0"
    assert doc["ips"] == [
        {"interface": 0, "address": "198.19.123.99/24", "gateway": "198.19.123.1"}
    ]
    assert doc["interfaces"][0]["name"] == "net1"
    check = run_plugin(cni_lab, "CHECK", config, log_file)
    assert (check.returncode, check.stdout) == (0, ""), check.stdout
    before = container_state(cni_lab)
    gc = run_plugin(
        cni_lab,
        "GC",
        {**config, "cni.dev/valid-attachments": [{"containerID": "c0ffee", "ifname": "net1"}]},
        log_file,
    )
    assert (gc.returncode, gc.stdout) == (0, ""), gc.stdout
    assert container_state(cni_lab)["links"] == before["links"]  # GC never touches a live pod
    gone = run_plugin(cni_lab, "DEL", config, log_file)
    assert (gone.returncode, gone.stdout) == (0, "")
    # STATUS when the master is gone from the node: code 50, not available.
    missing = run_plugin(
        cni_lab, "STATUS", {**config, "interfaceArgs": {"master": "nosuch0"}}, log_file
    )
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["code"] == 50


# -- several reserved addresses -----------------------------------------------------------------

TWO_ADDRESSES = ["198.19.123.99/24", "198.19.123.100/24"]
WEBS = ["203.0.113.25", "203.0.113.26", "203.0.113.27"]
# Client sources (aliases on the client pod's eth0): the SNAT hash is over (client, destination),
# so several pairs are needed to see the flows spread over both reserved addresses.
CLIENT_SOURCES = [f"198.18.0.{i}" for i in range(30, 36)]


def test_add_with_two_addresses_spreads_flows_over_both(cni_lab: Lab, tmp_path: Path) -> None:
    log_file = tmp_path / "egress-router-log"
    config = {
        **LAB_CONFIG,
        "ip": {
            "addresses": TWO_ADDRESSES,
            "destinations": [f"{8080 + i} TCP {web} 80" for i, web in enumerate(WEBS)],
            "gateway": "198.19.123.1",
        },
    }
    result = run_plugin(cni_lab, "ADD", config, log_file)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert [ip["address"] for ip in doc["ips"]] == TWO_ADDRESSES
    assert "IP Source Addresses: [198.19.123.99/24 198.19.123.100/24]" in _messages(log_file)

    listed = json.loads(cni_lab.exec(CONTAINER, ["ip", "-j", "addr", "show", "net1"]).stdout)
    on_net1 = [f"{a['local']}/{a['prefixlen']}" for a in listed[0]["addr_info"]]
    assert [a for a in on_net1 if a.startswith("198.19.")] == TWO_ADDRESSES
    routes = [" ".join(r.split()) for r in container_state(cni_lab)["routes"].splitlines()]
    assert "default via 198.19.123.1 dev net1" in routes[0]
    assert any(r.startswith("198.19.123.1 dev net1") for r in routes)
    ruleset = container_state(cni_lab)["ruleset"]
    assert "jhash ip saddr . ip daddr mod 2" in ruleset
    assert "0 : 198.19.123.99, 1 : 198.19.123.100" in ruleset

    for source in CLIENT_SOURCES:
        cni_lab.exec("client", ["ip", "addr", "add", f"{source}/24", "dev", "eth0"], check=True)
    cni_lab.set_web_firewall([a.split("/")[0] for a in TWO_ADDRESSES])
    Nginx(cni_lab, "web", [f"{web}:80" for web in WEBS]).start()
    seen: dict[tuple[str, str], str] = {}
    for _round in range(2):  # every (client, destination) pair twice: the same address again
        for source in CLIENT_SOURCES:
            for port in (8080, 8081, 8082):
                url = f"http://{CONTAINER_IP}:{port}/ip"
                argv = ["curl", "-sS", "-m", "5", "--interface", source, url]
                proc = cni_lab.exec("client", argv)
                assert proc.returncode == 0, proc.stderr
                arrived = proc.stdout.strip()
                assert seen.setdefault((source, url), arrived) == arrived
    assert set(seen.values()) == {"198.19.123.99", "198.19.123.100"}

    check = run_plugin(cni_lab, "CHECK", config, log_file)
    assert (check.returncode, check.stdout) == (0, "")
    gone = run_plugin(cni_lab, "DEL", config, log_file)
    assert (gone.returncode, gone.stdout) == (0, "")
    after = container_state(cni_lab)
    assert not any(link["ifname"] == "net1" for link in after["links"])
    assert "egress_router" not in after["ruleset"]


# -- IPv6 (the reference's IPv6 mode, repaired) -----------------------------------------

CONTAINER_IP6 = "2001:db8:c::4"
V6_CONFIG: dict[str, Any] = {
    **LAB_CONFIG,
    "ip": {
        "addresses": ["2001:db8:1::99/64"],
        "destinations": ["8080 TCP 2001:db8:2::25 80", "8081 tcp 2001:db8:2::26"],
        "gateway": "2001:db8:1::1",
    },
}


@pytest.fixture
def dual_lab(cni_lab: Lab) -> Lab:
    enable_ipv6(cni_lab, {CONTAINER: ipaddress.IPv6Address(CONTAINER_IP6)})
    return cni_lab


def _neighbours(lab: Lab, role: str, dev: str) -> str:
    return str(lab.exec(role, ["ip", "-6", "neigh", "show", "dev", dev]).stdout)


def test_ipv6_add_redirects_and_leaves_from_the_reserved_ipv6_address(
    dual_lab: Lab, tmp_path: Path
) -> None:
    log_file = tmp_path / "egress-router-log"
    # the gateway knows the address at a stale MAC: the advertisement must correct it
    dual_lab.exec(
        "gw",
        ["ip", "-6", "neigh", "replace", "2001:db8:1::99", "lladdr", "02:00:00:00:00:99",
         "dev", "lan0", "nud", "stale"],
        check=True,
    )  # fmt: skip
    result = run_plugin(dual_lab, "ADD", V6_CONFIG, log_file)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["ips"] == [
        {"version": "6", "interface": 0, "address": "2001:db8:1::99/64", "gateway": "2001:db8:1::1"}
    ]
    mac = doc["interfaces"][0]["mac"]
    assert f"2001:db8:1::99 lladdr {mac}" in _neighbours(dual_lab, "gw", "lan0")

    routes6 = str(dual_lab.exec(CONTAINER, ["ip", "-6", "route"]).stdout)
    assert "default via 2001:db8:1::1 dev net1" in routes6
    assert "2001:db8:1::1 dev net1" in routes6
    assert "via 2001:db8:c::1" not in routes6  # the pod's old IPv6 default is gone
    assert "default via 198.18.0.1 dev eth0" in str(
        dual_lab.exec(CONTAINER, ["ip", "route"]).stdout
    )
    forwarding = ["cat", "/proc/sys/net/ipv6/conf/all/forwarding"]
    assert dual_lab.exec(CONTAINER, forwarding).stdout.strip() == "1"
    ruleset = container_state(dual_lab)["ruleset"]
    assert "table ip6 egress_router" in ruleset
    assert "table ip egress_router" not in ruleset  # no IPv4 address: no IPv4 table
    messages = _messages(log_file)
    assert "Adding IPv6 route to gateway 2001:db8:1::1 on macvlan interface" in messages
    assert "Added new default route with gateway 2001:db8:1::1" in messages
    assert "Added nftables rule: iif eth0 tcp dport 8080 dnat to [2001:db8:2::25]:80" in messages

    web = Nginx(dual_lab, "web", ["[2001:db8:2::25]:80", "[2001:db8:2::26]:8081"]).start()
    for port in (8080, 8081):
        url = f"http://[{CONTAINER_IP6}]:{port}/ip"
        proc = dual_lab.exec("client", ["curl", "-sS", "-m", "5", url])
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "2001:db8:1::99"
    assert web.client_addresses()[-2:] == ["2001:db8:1::99", "2001:db8:1::99"]
    # an unmapped port is refused at once, over IPv6 too
    refused = dual_lab.exec("client", ["curl", "-sS", "-m", "5", f"http://[{CONTAINER_IP6}]:9999/"])
    assert refused.returncode == 7, refused.stderr  # connection refused (TCP reset)

    again = run_plugin(dual_lab, "ADD", V6_CONFIG, log_file)
    assert again.returncode == 0, again.stdout + again.stderr
    assert str(dual_lab.exec(CONTAINER, ["ip", "-6", "route"]).stdout) == routes6
    check = run_plugin(dual_lab, "CHECK", V6_CONFIG, log_file)
    assert (check.returncode, check.stdout) == (0, "")
    gone = run_plugin(dual_lab, "DEL", V6_CONFIG, log_file)
    assert (gone.returncode, gone.stdout) == (0, "")
    assert "egress_router" not in container_state(dual_lab)["ruleset"]


def test_dual_stack_router_serves_both_families_from_their_reserved_addresses(
    dual_lab: Lab, tmp_path: Path
) -> None:
    log_file = tmp_path / "egress-router-log"
    config = {
        **LAB_CONFIG,
        "cniVersion": "0.2.0",
        "ip": {
            "addresses": ["198.19.123.99/24", "2001:db8:1::99/64"],
            "gateways": ["198.19.123.1", "2001:db8:1::1"],
            "destinations": ["8080 tcp 203.0.113.25 80", "8080 tcp 2001:db8:2::25 80"],
        },
    }
    result = run_plugin(dual_lab, "ADD", config, log_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == {
        "cniVersion": "0.2.0",
        "ip4": {"ip": "198.19.123.99/24", "gateway": "198.19.123.1"},
        "ip6": {"ip": "2001:db8:1::99/64", "gateway": "2001:db8:1::1"},
        "dns": {},
    }
    ruleset = container_state(dual_lab)["ruleset"]
    assert "table ip egress_router" in ruleset and "table ip6 egress_router" in ruleset
    Nginx(dual_lab, "web", ["203.0.113.25:80", "[2001:db8:2::25]:80"]).start()
    for target, source in (
        (CONTAINER_IP, "198.19.123.99"),
        (f"[{CONTAINER_IP6}]", "2001:db8:1::99"),
    ):
        proc = dual_lab.exec("client", ["curl", "-sS", "-m", "5", f"http://{target}:8080/ip"])
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == source
    gone = run_plugin(dual_lab, "DEL", config, log_file)
    assert (gone.returncode, gone.stdout) == (0, "")
    assert "egress_router" not in container_state(dual_lab)["ruleset"]


def test_ipv6_address_held_by_another_host_fails_add_and_leaves_nothing(
    dual_lab: Lab, tmp_path: Path
) -> None:
    """Duplicate address detection is on for the router's addresses: the gateway already
    holds 2001:db8:1::99, so ADD fails naming it and removes the interface it made."""
    dual_lab.exec("gw", ["ip", "-6", "addr", "add", "2001:db8:1::99/64", "dev", "lan0", "nodad"])
    dual_lab.sysctl(CONTAINER, "net.ipv6.conf.default.accept_dad", "1")
    log_file = tmp_path / "egress-router-log"
    result = run_plugin(dual_lab, "ADD", V6_CONFIG, log_file)
    assert result.returncode == 1, result.stdout
    error = json.loads(result.stdout)
    assert error["code"] == 100
    assert "2001:db8:1::99 is already in use" in error["msg"]
    state = container_state(dual_lab)
    assert not any(link["ifname"] == "net1" for link in state["links"])
    assert "egress_router" not in state["ruleset"]
