"""``egress-router diagnose`` on the real kernel: a healthy router, then each broken lab setup,
each diagnosed with its cause named; and nothing changed by diagnosing."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from egress_router.lab.dns import DnsServer
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import Lab
from tests.conftest import LAB_GATEWAY, LAB_SOURCE, cli, setup_router
from tests.redirect.helpers import ROUTER_IP, curl, snapshot

pytestmark = pytest.mark.lab

DESTINATION = "80 tcp 203.0.113.25\n8080 tcp 203.0.113.26 80"
WEB = ["203.0.113.25:80", "203.0.113.26:80"]


def variables(
    destination: str = DESTINATION, gateway: str = LAB_GATEWAY, mode: str = "init"
) -> dict[str, str]:
    return {
        "EGRESS_SOURCE": LAB_SOURCE,
        "EGRESS_GATEWAY": gateway,
        "EGRESS_ROUTER_MODE": mode,
        "EGRESS_DESTINATION": destination,
    }


def run_diagnose(
    lab: Lab, env: dict[str, str], *args: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``diagnose --json --netns ROUTER`` and its parsed document."""
    result = cli("diagnose", "--json", "--netns", lab.ns("router"), *args, env=env, timeout=60)
    assert result.returncode in (0, 3), result.stderr
    return result, json.loads(result.stdout)


def router(lab: Lab, destination: str = DESTINATION, gateway: str = LAB_GATEWAY) -> None:
    Nginx(lab, "web", WEB).start()
    setup_router(lab, destination=destination, gateway=gateway)


def test_healthy_router_is_ok_and_diagnosing_changes_nothing(lab: Lab) -> None:
    router(lab)
    assert curl(lab, f"http://{ROUTER_IP}:8080/ip")[1] == "198.19.123.99"
    before = snapshot(lab)
    result, doc = run_diagnose(lab, variables())
    assert snapshot(lab) == before  # routes, addresses, the ruleset and its counters
    assert result.returncode == 0, doc["verdict"]
    assert doc["verdict"]["cause"] == "ok" and doc["exit_code"] == 0
    connected = [c["outcome"] for c in doc["observed"]["connections"]]
    assert connected == ["connected", "connected"]
    assert doc["observed"]["ruleset"]["redirected_packets"] >= 1
    assert doc["observed"]["conntrack"]["203.0.113.26"] >= 1  # the client's connection
    assert doc["observed"]["arp"]["mac"] is not None
    # for people: a table and a verdict line; and the same through a process's namespace
    keeper = lab.spawn("router", ["sleep", "60"], name="keeper")
    text = cli("diagnose", "--pid", str(keeper.pid), "-v", env=variables())
    assert text.returncode == 0, text.stdout + text.stderr
    assert "verdict: OK" in text.stdout and "counter packets" in text.stdout


def prohibit_arp(lab: Lab) -> None:
    """The gateway stops answering ARP (all of it, whoever asks)."""
    lab.exec(
        "gw",
        ["nft", "add table arp lab_noarp; add chain arp lab_noarp in "
         "{ type filter hook input priority 0; policy drop; }"],
        check=True,
    )  # fmt: skip


def filter_mac(lab: Lab) -> None:
    """The gateway's port drops every frame from the macvlan's MAC (port security)."""
    mac = lab.macvlan_mac()
    lab.exec(
        "gw",
        ["nft", "add table netdev lab_macf; add chain netdev lab_macf in "
         "{ type filter hook ingress device lan0 priority 0; }; "
         f"add rule netdev lab_macf in ether saddr {mac} drop"],
        check=True,
    )  # fmt: skip


def router_cmd(*argv: str) -> Callable[[Lab], None]:
    return lambda lab: lab.exec("router", list(argv), check=True)


SET_DOWN = router_cmd("ip", "link", "set", "macvlan0", "down")


def gateway_stops_forwarding(lab: Lab) -> None:
    lab.sysctl("gw", "net.ipv4.ip_forward", "0")


def unmapped_port_used(lab: Lab) -> None:
    """Clients use 8080, which no line maps (the destination has port 80 only)."""
    for _ in range(2):
        assert curl(lab, f"http://{ROUTER_IP}:8080/ip", timeout=2)[0] == 7


@pytest.mark.parametrize(
    ("case", "destination", "gateway", "breakage", "cause", "words"),
    [
        ("wrong gateway (typo, outside the subnet)", DESTINATION, "198.19.124.1", None,
         "wrong gateway", "outside the source subnet"),
        ("wrong gateway (a host that does not forward)", DESTINATION, LAB_GATEWAY,
         gateway_stops_forwarding, "wrong gateway", "does not forward"),
        ("gateway not answering ARP", DESTINATION, LAB_GATEWAY, prohibit_arp,
         "gateway not answering ARP", "no ARP answer from 198.19.123.1"),
        ("macvlan down", DESTINATION, LAB_GATEWAY, SET_DOWN, "macvlan down", "macvlan0 is down"),
        ("MAC filtered", DESTINATION, LAB_GATEWAY, filter_mac, "MAC filtered",
         "but not from macvlan0's MAC"),
        ("missing route", DESTINATION, LAB_GATEWAY, router_cmd("ip", "route", "del", "default"),
         "missing route", "no default route"),
        ("rule never hit", "80 tcp 203.0.113.25", LAB_GATEWAY, unmapped_port_used,
         "rule never hit", "no redirect rule was ever hit"),
        ("destination refusing", "80 tcp 203.0.113.25 81\n8080 tcp 203.0.113.26 80", LAB_GATEWAY,
         None, "destination refusing", "203.0.113.25:81: refused"),
    ],
)  # fmt: skip
def test_each_broken_setup_is_diagnosed(
    lab: Lab,
    case: str,
    destination: str,
    gateway: str,
    breakage: Callable[[Lab], None] | None,
    cause: str,
    words: str,
) -> None:
    router(lab, destination=destination, gateway=gateway)
    if breakage is not None:
        breakage(lab)
    before = snapshot(lab)
    result, doc = run_diagnose(lab, variables(destination, gateway))
    assert snapshot(lab) == before
    assert result.returncode == 3, (case, doc["verdict"])
    assert doc["verdict"]["cause"] == cause, (case, doc["verdict"])
    assert words in doc["verdict"]["summary"], (case, doc["verdict"])
    text = cli("diagnose", "--netns", lab.ns("router"), env=variables(destination, gateway))
    assert text.returncode == 3 and f"verdict: {cause}" in " ".join(text.stdout.split())


def test_bad_input_is_one_line_and_exit_1(lab: Lab) -> None:
    env = {**variables(), "EGRESS_GATEWAY": "198.19.123"}
    result = cli("diagnose", "--netns", lab.ns("router"), env=env)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "EGRESS_GATEWAY" in result.stderr
    result = cli("diagnose", "--netns", "no-such-ns-here", env=variables())
    assert result.returncode == 1 and "--netns" in result.stderr


def test_dns_proxy_mode_resolves_names_through_the_pods_resolver(lab: Lab) -> None:
    dns = DnsServer(lab, {"web.example.test": ["203.0.113.25"]}).start()
    dns.use_from("router")
    Nginx(lab, "web", WEB).start()
    setup_router(lab, mode="dns-proxy")
    env = {
        **variables(mode="dns-proxy"),
        "EGRESS_DNS_PROXY_DESTINATION": "8080 web.example.test 80\n8081 203.0.113.26 80",
    }
    result, doc = run_diagnose(lab, env)
    assert result.returncode == 0, doc["verdict"]
    assert doc["observed"]["resolutions"] == [
        {"name": "web.example.test", "addresses": ["203.0.113.25"], "error": None}
    ]
    assert [c["outcome"] for c in doc["observed"]["connections"]] == ["connected", "connected"]
    env["EGRESS_DNS_PROXY_DESTINATION"] += "\n8082 gone.example.test 80"
    result, doc = run_diagnose(lab, env)
    assert result.returncode == 3
    assert doc["verdict"]["cause"] == "name not resolving", doc["verdict"]
    assert "gone.example.test" in doc["verdict"]["summary"]
