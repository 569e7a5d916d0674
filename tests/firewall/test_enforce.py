"""The firewall in real namespaces: the node forwards pod traffic and our table decides."""

from __future__ import annotations

import json

import pytest

from egress_router.lab.dns import DnsServer
from egress_router.lab.firewall import ADDR6, add_ipv6, add_pod
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import Lab
from tests.reference_examples import EGRESS_NETWORK_POLICY

from .helpers import (
    CLIENT,
    CLIENT2,
    allow,
    deny,
    eventually,
    fw,
    policy,
    reach,
    ruleset,
    start_agent,
)

pytestmark = pytest.mark.lab

WEB = ["203.0.113.25", "203.0.113.26", "203.0.113.27"]


@pytest.fixture
def fwlab(tmp_path):
    with Lab(workdir=tmp_path / "lab", web_firewall=False, extra_roles=("client2",)) as lab:
        add_pod(lab, "client2", CLIENT2)
        add_ipv6(lab)
        Nginx(lab, "web", [*(f"{ip}:80" for ip in WEB), f"[{ADDR6.server_ip}]:80"]).start()
        yield lab


def test_document_example_verbatim(fwlab, tmp_path):
    lab = fwlab
    path = tmp_path / "policy.json"
    path.write_text(EGRESS_NETWORK_POLICY)
    dns = DnsServer(lab, {"www.foo.com": ["203.0.113.26"]}, ttl=5).start()
    dns.use_from("node", "client")
    assert reach(lab, "client", WEB[0])
    start_agent(
        lab, "-n", "myproj", f"--pods=myproj={CLIENT}/32", "--cluster-cidr=198.18.0.0/24", str(path)
    )
    assert eventually(lambda: reach(lab, "client", "www.foo.com"))
    assert not reach(lab, "client", WEB[0])  # denied by rule 3 (0.0.0.0/0)
    assert reach(lab, "client2", WEB[0])  # another pod: not in myproj, not filtered
    out = fw(
        lab,
        "explain",
        "-n",
        "myproj",
        f"--pods=myproj={CLIENT}/32",
        str(path),
        "--from",
        CLIENT,
        "--to",
        "1.2.3.4",
    )
    assert out.stdout.strip() == "allow: namespace myproj rule 1 (Allow 1.2.3.0/24)"
    args = ["-n", "myproj", f"--pods=myproj={CLIENT}/32", str(path), "--from", CLIENT]
    by_name = fw(lab, "explain", *args, "--to", "www.foo.com")
    assert by_name.stdout.strip() == (
        "203.0.113.26: allow: namespace myproj rule 2 (Allow dnsName www.foo.com)"
    )
    # by address: the agent has learned 203.0.113.26 for rule 2 (read from the kernel's set)
    assert fw(lab, "explain", *args, "--to", "203.0.113.26").stdout.strip() == (
        "allow: namespace myproj rule 2 (Allow dnsName www.foo.com)"
    )
    assert fw(lab, "explain", *args, "--no-live", "--to", "203.0.113.26").stdout.strip() == (
        "deny: namespace myproj rule 3 (Deny 0.0.0.0/0)"
    )


def test_namespace_isolation_ordering_default_allow_and_exemption(fwlab, tmp_path):
    lab = fwlab
    a = policy(tmp_path / "a.json", [allow(f"{WEB[0]}/32"), deny("203.0.113.0/24")], "myproj")
    b = policy(tmp_path / "b.json", [deny(f"{WEB[0]}/32")], "other")
    out = fw(
        lab,
        "apply",
        f"--pods=myproj={CLIENT}",
        f"--pods=other={CLIENT2}/32",
        "--service-cidr",
        f"{WEB[2]}/32",
        str(a),
        str(b),
    )
    assert out.returncode == 0, out.stderr
    assert reach(lab, "client", WEB[0])  # rule 1 allows, before rule 2's deny (ordering)
    assert not reach(lab, "client", WEB[1])  # rule 2
    assert reach(lab, "client", WEB[2])  # service network exempt despite rule 2
    assert not reach(lab, "client2", WEB[0])  # the other namespace's own policy
    assert reach(lab, "client2", WEB[1])  # no rule matched: default allow
    # replies to inbound connections are never filtered: web -> client pod works
    Nginx(lab, "client", [f"{CLIENT}:80"]).start()
    assert (
        lab.exec(
            "gw", ["ip", "route", "replace", "198.18.0.0/24", "via", "198.19.123.10"]
        ).returncode
        == 0
    )
    lab.nft(
        "node",
        [
            {"add": {"table": {"family": "ip", "name": "lab_node"}}},
            {"flush": {"table": {"family": "ip", "name": "lab_node"}}},
        ],
    )
    assert reach(lab, "web", CLIENT)


def test_dual_stack_deny_all_covers_ipv6(fwlab, tmp_path):
    lab = fwlab
    v6 = str(ADDR6.server_ip)
    pods = f"--pods=myproj={CLIENT},{ADDR6.client_pod_ip}"
    assert reach(lab, "client", v6)
    only4 = policy(tmp_path / "v4.json", [deny("0.0.0.0/0")])
    assert fw(lab, "apply", pods, str(only4)).returncode == 0
    assert not reach(lab, "client", WEB[0])
    assert reach(lab, "client", v6)  # as documented: a v4 deny-all does not cover IPv6
    both = policy(tmp_path / "both.json", [deny("0.0.0.0/0"), deny("::/0")])
    assert fw(lab, "apply", pods, str(both)).returncode == 0
    assert not reach(lab, "client", WEB[0])
    assert not reach(lab, "client", v6)
    explained = fw(lab, "explain", pods, str(both), "--from", str(ADDR6.client_pod_ip), "--to", v6)
    assert explained.stdout.strip() == "deny: namespace myproj rule 2 (Deny ::/0)"


BAD_RULES = {
    "AllowX": (
        [{"type": "AllowX", "to": {"cidrSelector": "203.0.113.0/24"}}],
        "rule 1, type: must be Allow or Deny",
    ),
    "prefix33": (
        [deny("203.0.113.0/33")],
        "rule 1, to.cidrSelector: the prefix length must be 0-32",
    ),
    "both": (
        [{"type": "Deny", "to": {"cidrSelector": "1.2.3.0/24", "dnsName": "a.b"}}],
        "rule 1, to: exactly one",
    ),
    "neither": ([{"type": "Deny", "to": {}}], "rule 1, to: exactly one"),
    "too_many": (
        [deny(f"10.{i // 256}.{i % 256}.0/24") for i in range(8000)],
        "spec.egress: 8001 rules exceed the limit of 8000",
    ),
}


def test_bad_input_changes_nothing(fwlab, tmp_path):
    lab = fwlab
    good = policy(tmp_path / "good.json", [deny(f"{WEB[0]}/32")])
    pods = f"--pods=myproj={CLIENT}"
    assert fw(lab, "apply", pods, str(good)).returncode == 0
    before = ruleset(lab)
    for label, (rules, message) in BAD_RULES.items():
        bad = policy(tmp_path / f"{label}.json", [allow(f"{WEB[1]}/32"), *rules])
        out = fw(lab, "apply", pods, str(bad))
        assert out.returncode == 1, label
        [line] = out.stderr.splitlines()
        assert line.startswith(f"egress-router: {bad}, namespace myproj, "), line
        assert message.replace("rule 1", "rule 2") in line or message in line, line
        assert ruleset(lab) == before, label
    twin = policy(tmp_path / "twin.json", [])
    out = fw(lab, "apply", pods, str(good), str(twin))
    assert out.returncode == 1 and "only one policy per namespace" in out.stderr
    assert ruleset(lab) == before
    assert not reach(lab, "client", WEB[0])  # the previous rules are still in force


def test_8000_rules_apply_and_last_rule_decides(fwlab, tmp_path):
    lab = fwlab
    rules = [deny(f"10.{i // 250}.{i % 250}.{i % 7}/32") for i in range(7999)] + [
        allow(f"{WEB[0]}/32")
    ]
    big = policy(tmp_path / "big.json", rules)
    assert fw(lab, "apply", f"--pods=myproj={CLIENT}", str(big)).returncode == 0
    assert reach(lab, "client", WEB[0])
    assert json.loads(
        lab.exec(
            "node", ["nft", "-j", "list", "chain", "inet", "egress_firewall", "ns_myproj"]
        ).stdout
    )


def test_ports_rules_keep_their_order(fwlab, tmp_path):
    lab = fwlab
    rules = [
        {
            "type": "Allow",
            "to": {"cidrSelector": f"{WEB[0]}/32"},
            "ports": [{"protocol": "TCP", "port": 80}],
        },
        deny("203.0.113.0/24"),
    ]
    path = policy(tmp_path / "ports.json", rules)
    assert fw(lab, "apply", f"--pods=myproj={CLIENT}", str(path)).returncode == 0
    assert reach(lab, "client", WEB[0])  # tcp/80: rule 1
    probe = (
        "import errno, socket\ns = socket.socket(); s.settimeout(2)\n"
        f"print(errno.errorcode[s.connect_ex(('{WEB[0]}', 81))])"
    )
    # rule 2 rejects (ICMP admin-prohibited), rather than the server refusing port 81
    assert lab.exec("client", ["python3", "-c", probe]).stdout.strip() == "EHOSTUNREACH"
    assert not reach(lab, "client", WEB[1])
