"""The agent's metrics, for real: agent in the node namespace with --metrics, a DNS-proxy
query from a pod, a failed and a good reload; /metrics fetched with curl in the same namespace."""

from __future__ import annotations

import pytest

from egress_router.lab.dns import DnsServer
from egress_router.lab.topology import Lab
from tests.http_proxy.test_metrics_lab import sample

from .helpers import CLIENT, allow_name, deny, eventually, policy, start_agent

pytestmark = pytest.mark.lab
METRICS = "198.18.0.1:9109"
WEB = "203.0.113.25"


def scrape(lab: Lab) -> str:
    result = lab.exec("node", ["curl", "-sS", "--max-time", "5", f"http://{METRICS}/metrics"])
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def test_agent_metrics_follow_applies_lookups_and_queries(tmp_path):
    with Lab(workdir=tmp_path / "lab", web_firewall=False) as lab:
        dns = DnsServer(lab, {"app.example.test": [WEB]}, ttl=30).start()
        dns.use_from("node")
        rules = [allow_name("app.example.test"), deny("0.0.0.0/0")]
        path = policy(tmp_path / "p.json", rules)
        start_agent(
            lab,
            f"--pods=myproj={CLIENT}",
            "--dns-listen=198.18.0.1:5353",
            "--dns-upstream=198.18.0.1:53",
            f"--metrics={METRICS}",
            str(path),
        )
        text = scrape(lab)
        assert sample(text, "egress_router_firewall_policies") == 1
        assert sample(text, "egress_router_firewall_rules") == 2
        assert sample(text, "egress_router_firewall_reloads_total", outcome="ok") == 1
        assert sample(text, "egress_router_firewall_apply_duration_seconds_count") == 1
        assert eventually(
            lambda: (
                sample(scrape(lab), "egress_router_firewall_dns_lookups_total", outcome="ok") >= 1
            )
        )
        learned = {"namespace": "myproj", "name": "app.example.test"}
        assert sample(scrape(lab), "egress_router_firewall_learned_addresses", **learned) == 1
        # a pod's query through the DNS proxy
        dig = ["dig", "+short", "+tries=1", "+time=2", "@198.18.0.1", "-p", "5353"]
        answer = lab.exec("client", [*dig, "app.example.test"])
        assert answer.stdout.strip() == WEB
        text = scrape(lab)
        assert (
            sample(text, "egress_router_firewall_dns_proxy_queries_total", outcome="answered") == 1
        )
        assert sample(text, "egress_router_firewall_dns_proxy_hold_seconds_count") == 1
        # a bad reload is counted and changes nothing; a good one follows
        path.write_text("{not json")
        assert eventually(
            lambda: (
                sample(scrape(lab), "egress_router_firewall_reloads_total", outcome="failed") == 1
            )
        )
        assert sample(scrape(lab), "egress_router_firewall_rules") == 2
        policy(tmp_path / "p.json", [deny("0.0.0.0/0")])
        assert eventually(
            lambda: sample(scrape(lab), "egress_router_firewall_reloads_total", outcome="ok") == 2
        )
        text = scrape(lab)
        assert sample(text, "egress_router_firewall_rules") == 1
        assert "app.example.test" not in text  # the name left the policies: its gauge too
