"""``firewall apply`` and DNS: dnsName rules resolved once at apply time (a real dnsmasq), and
IPv4-mapped spellings (``AAAA ::ffff:a.b.c.d``, ``cidrSelector: ::ffff:a.b.c.d/128``) enforced
on the IPv4 packets the kernel really sends."""

from __future__ import annotations

import time

import pytest

from egress_router.lab.dns import DnsServer
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import Lab

from .helpers import CLIENT, allow, allow_name, deny, eventually, fw, policy, reach, start_agent

pytestmark = pytest.mark.lab
WEB = ["203.0.113.25", "203.0.113.26", "203.0.113.27"]
PODS = f"--pods=myproj={CLIENT}"


def deny_name(name: str) -> dict:
    return {"type": "Deny", "to": {"dnsName": name}}


@pytest.fixture
def dnslab(tmp_path):
    with Lab(workdir=tmp_path / "lab", web_firewall=False) as lab:
        Nginx(lab, "web", [f"{ip}:80" for ip in WEB]).start()
        dns = DnsServer(
            lab,
            {"app.example.test": [WEB[0]], "mapped.example.test": [f"::ffff:{WEB[1]}"]},
            ttl=1,
            local_domains=("example.test",),
        ).start()
        dns.use_from("node")
        yield lab, dns


def test_apply_resolves_dns_names_once_and_says_so(dnslab, tmp_path):
    lab, dns = dnslab
    rules = [allow_name("app.example.test"), allow_name("gone.example.test"), deny("0.0.0.0/0")]
    path = policy(tmp_path / "p.json", rules)
    result = fw(lab, "apply", PODS, str(path))
    assert result.returncode == 0, result.stderr
    assert "will not follow DNS changes without `firewall run`" in result.stderr
    assert "cannot resolve gone.example.test" in result.stderr
    assert reach(lab, "client", WEB[0])  # learned at apply time
    assert not reach(lab, "client", WEB[2])
    nft = lab.exec("node", ["nft", "list", "ruleset"], check=True).stdout
    assert WEB[0] in nft and "timeout" not in nft.split(WEB[0])[1].split("\n")[0]
    # The name moves: without `run` the rule stays on the address resolved at apply time ...
    dns.set_records({"app.example.test": [WEB[1]]})
    time.sleep(2.5)  # the TTL (1 s) twice over
    assert reach(lab, "client", WEB[0])
    assert not reach(lab, "client", WEB[1])
    # ... `run` takes over (adopting them meanwhile) and follows the change.
    agent = start_agent(lab, PODS, "--ttl-floor=1", "--grace=1", str(path))
    assert reach(lab, "client", WEB[0])  # adopted: no gap while the first lookup runs
    assert eventually(lambda: reach(lab, "client", WEB[1]))
    agent.stop()


def test_mapped_aaaa_answer_is_enforced_on_ipv4(dnslab, tmp_path):
    lab, _ = dnslab
    rules = [deny_name("mapped.example.test"), allow("0.0.0.0/0")]
    result = fw(lab, "apply", PODS, str(policy(tmp_path / "p.json", rules)))
    assert result.returncode == 0, result.stderr
    assert not reach(lab, "client", WEB[1])  # a pod dialling ::ffff:203.0.113.26 sends IPv4
    assert reach(lab, "client", WEB[0])


def test_mapped_cidr_selector_is_enforced_on_ipv4(dnslab, tmp_path):
    lab, _ = dnslab
    rules = [deny(f"::ffff:{WEB[1]}/128"), deny("::ffff:203.0.113.24/127"), allow("0.0.0.0/0")]
    result = fw(lab, "apply", PODS, str(policy(tmp_path / "p.json", rules)))
    assert result.returncode == 0, result.stderr
    assert not reach(lab, "client", WEB[1])
    assert not reach(lab, "client", WEB[0])  # 203.0.113.24/31 holds .25
    assert reach(lab, "client", WEB[2])
