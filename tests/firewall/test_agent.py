"""The agent in real namespaces: DNS names followed by polling and by the DNS proxy, reloads,
and the kernel keeping the rules when the agent dies."""

from __future__ import annotations

import os
import signal
import time

import pytest

from egress_router.lab.dns import DnsServer
from egress_router.lab.firewall import add_pod
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import Lab

from .helpers import (
    CLIENT,
    CLIENT2,
    allow,
    allow_name,
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
PODS = [f"--pods=myproj={CLIENT}", f"--pods=other={CLIENT2}"]


@pytest.fixture
def fwlab(tmp_path):
    with Lab(workdir=tmp_path / "lab", web_firewall=False, extra_roles=("client2",)) as lab:
        add_pod(lab, "client2", CLIENT2)
        Nginx(lab, "web", [f"{ip}:80" for ip in WEB]).start()
        yield lab


def test_polling_follows_dns_changes_and_retries_failed_names(fwlab, tmp_path):
    lab = fwlab
    dns = DnsServer(lab, {"app.example.test": [WEB[0]]}, ttl=1).start()
    dns.use_from("node")
    rules = [allow_name("app.example.test"), allow_name("late.example.test"), deny("0.0.0.0/0")]
    path = policy(tmp_path / "p.json", rules)
    agent = start_agent(lab, *PODS, "--ttl-floor=1", "--grace=1", "--retry-first=0.5", str(path))
    assert eventually(lambda: reach(lab, "client", WEB[0]))
    assert not reach(lab, "client", WEB[1])
    assert not reach(lab, "client", WEB[2])  # late.example.test does not resolve yet
    dns.set_records({"app.example.test": [WEB[1]], "late.example.test": [WEB[2]]})
    assert eventually(lambda: reach(lab, "client", WEB[1]))
    assert eventually(lambda: reach(lab, "client", WEB[2]))  # a failed first lookup heals
    assert eventually(lambda: not reach(lab, "client", WEB[0]))  # old address expired
    assert "cannot resolve late.example.test" in agent.output()
    # the DNS server goes away: lookups fail, the last good addresses are kept past their TTL
    assert dns.proc is not None
    dns.proc.stop()
    time.sleep(4)  # TTL 1 s + grace 1 s, twice over
    assert reach(lab, "client", WEB[1])
    assert reach(lab, "client", WEB[2])


def _lookup_then_connect(lab: Lab, role: str, name: str, tcp: bool = False) -> tuple[str, bool]:
    script = (
        f"ip=$(dig +short {'+tcp ' if tcp else ''}+tries=1 +time=2 @198.18.0.1 -p 5353 {name} "
        "| tail -n1); "
        'echo "$ip"; curl -sS -o /dev/null -m 2 "http://$ip/"'
    )
    result = lab.exec(role, ["sh", "-c", script])
    return result.stdout.strip(), result.returncode == 0


def test_dns_proxy_puts_addresses_in_the_set_before_answering(fwlab, tmp_path):
    lab = fwlab
    dns = DnsServer(lab, {"app.example.test": [WEB[0]]}, ttl=30).start()
    mine = policy(tmp_path / "mine.json", [allow_name("app.example.test"), deny("0.0.0.0/0")])
    theirs = policy(tmp_path / "theirs.json", [deny("198.51.100.0/24")], "other")
    agent = start_agent(
        lab,
        *PODS,
        "--dns-listen=198.18.0.1:5353",
        "--dns-upstream=198.18.0.1:53",
        "--ttl-floor=600",  # polling alone would not see a change for ten minutes
        str(mine),
        str(theirs),
    )
    assert "DNS proxy listening on 198.18.0.1:5353" in agent.output()
    for address, tcp in ((WEB[1], False), (WEB[2], True), (WEB[0], False), (WEB[1], False)):
        dns.set_records({"app.example.test": [address]})
        answered, connected = _lookup_then_connect(lab, "client", "app.example.test", tcp)
        assert answered == address
        assert connected, f"{address} denied right after the proxy answered"
    # what the other namespace's pod learns is not added to myproj's sets
    dns.set_records({"app.example.test": ["203.0.113.1"]})
    answered, connected = _lookup_then_connect(lab, "client2", "app.example.test")
    assert answered == "203.0.113.1"
    assert not reach(lab, "client", "203.0.113.1")
    # a restarted agent takes over what the previous one learned (pods may still use it)
    agent.stop(signal.SIGKILL)
    start_agent(lab, *PODS, "--ttl-floor=600", str(mine), str(theirs), name="fw-restarted")
    assert reach(lab, "client", WEB[1])


def test_reload_on_sighup_and_file_change_and_rules_survive_the_agent(fwlab, tmp_path):
    lab = fwlab
    path = policy(tmp_path / "p.json", [deny(f"{WEB[0]}/32")])
    first = start_agent(lab, *PODS, "--watch-interval=3600", str(path), name="fw1")
    assert not reach(lab, "client", WEB[0])
    policy(path, [allow(f"{WEB[0]}/32"), deny("203.0.113.0/24")])
    os.kill(first.pid, signal.SIGHUP)
    assert eventually(lambda: reach(lab, "client", WEB[0]))
    assert not reach(lab, "client", WEB[1])
    before = ruleset(lab)
    first.stop(signal.SIGKILL)  # the agent dies: the kernel keeps the last rules
    assert ruleset(lab) == before
    assert not reach(lab, "client", WEB[1])

    second = start_agent(lab, *PODS, "--watch-interval=0.2", str(path), name="fw2")
    path.write_text(path.read_text().replace('"Deny"', '"DenyX"'))
    assert eventually(lambda: "reload failed, previous rules stay in force" in second.output())
    assert "rule 2, type: must be Allow or Deny, got 'DenyX'" in second.output()
    assert not reach(lab, "client", WEB[1])
    policy(path, [deny(f"{WEB[2]}/32")])
    assert eventually(lambda: reach(lab, "client", WEB[1]))
    assert not reach(lab, "client", WEB[2])
    assert second.stop(signal.SIGTERM) == 0
    assert "stopped; the rules stay in the kernel" in second.output()
    assert not reach(lab, "client", WEB[2])


def test_run_refuses_bad_start_without_touching_the_kernel(fwlab, tmp_path):
    lab = fwlab
    DnsServer(lab, {"app.example.test": [WEB[0]]}).start()  # holds 198.18.0.1:53
    before = ruleset(lab)
    bad = policy(tmp_path / "bad.json", [{"type": "AllowX", "to": {"cidrSelector": "1.2.3.0/24"}}])
    out = fw(lab, "run", *PODS, str(bad))
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        f"egress-router: {bad}, namespace myproj, rule 1, type: must be Allow or Deny, got 'AllowX'"
    ]
    good = policy(tmp_path / "good.json", [deny("0.0.0.0/0")])
    out = fw(lab, "run", *PODS, "--dns-listen=198.18.0.1", str(good))
    assert out.returncode == 2
    assert out.stderr.strip().endswith("--dns-listen 198.18.0.1:53: Address already in use")
    assert ruleset(lab) == before


def test_health_endpoints_ready_once_applied(fwlab, tmp_path):
    lab = fwlab
    path = policy(tmp_path / "p.json", [deny(f"{WEB[0]}/32")])
    agent = start_agent(lab, *PODS, "--health=127.0.0.1:18081", str(path), name="fw-health")

    def probe(path: str) -> str:
        url = f"http://127.0.0.1:18081{path}"
        return lab.exec("node", ["curl", "-sS", "-m", "3", url]).stdout

    assert probe("/healthz") == "ok\n"
    assert probe("/readyz") == "ready\n"
    assert agent.stop(signal.SIGTERM) == 0
