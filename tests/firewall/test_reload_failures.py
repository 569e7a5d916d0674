"""``firewall run`` survives a failed reload of ANY kind (issue 8, item 6): the running rules,
the DNS proxy and the agent stay, one line is logged and the failure is counted.

The unit part drives ``loop._reload`` with errors no parser should raise (a bug must not end
the agent either); the lab part writes each hostile file of ``tests.hostile_documents`` over
a running agent's policy and checks rules, DNS proxy and metrics after each."""

from __future__ import annotations

import os

import pytest

from egress_router.errors import PolicyError
from egress_router.firewall import loop
from egress_router.lab.dns import DnsServer
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import Lab
from tests.hostile_documents import POLICY_BOMBS
from tests.http_proxy.test_metrics_lab import sample

from .helpers import CLIENT, allow_name, deny, eventually, policy, reach, ruleset, start_agent


class _Failing:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.failed_reloads = 0

    def apply(self) -> None:
        raise self.exc


@pytest.mark.parametrize(
    "exc",
    [
        PolicyError("bad", source="p.json"),
        RecursionError("maximum recursion depth exceeded"),
        MemoryError(),
        TypeError("unhashable type: 'list'"),
        KeyError("spec"),
        ValueError("\x1b[2Jevil\nsecond line"),
    ],
)
def test_reload_survives_any_error_with_one_line(exc: BaseException, monkeypatch) -> None:
    logged: list[str] = []
    monkeypatch.setattr(loop, "log", logged.append)  # the log sink writes asynchronously
    agent = _Failing(exc)
    assert loop._reload(agent) is False  # type: ignore[arg-type]
    assert agent.failed_reloads == 1
    assert len(logged) == 1
    err = logged[0]
    assert "\n" not in err
    assert "previous rules stay in force" in err
    assert "\x1b" not in err


def test_a_bug_in_a_reload_is_reported_with_its_traceback_once(reports, monkeypatch) -> None:
    monkeypatch.setattr(loop, "log", lambda line: None)
    assert loop._reload(_Failing(TypeError("injected fault"))) is False  # type: ignore[arg-type]
    reports.assert_one("firewall", "TypeError: injected fault")


def test_a_refused_policy_is_not_a_bug(reports, monkeypatch) -> None:
    monkeypatch.setattr(loop, "log", lambda line: None)
    assert loop._reload(_Failing(PolicyError("bad", source="p.json"))) is False  # type: ignore[arg-type]
    assert reports.count("firewall") == 0


METRICS = "198.18.0.1:9110"
WEB = "203.0.113.25"


@pytest.mark.lab
def test_run_keeps_rules_and_dns_proxy_through_every_bad_reload(tmp_path):
    with Lab(workdir=tmp_path / "lab", web_firewall=False) as lab:
        Nginx(lab, "web", [f"{WEB}:80"]).start()
        DnsServer(lab, {"app.example.test": [WEB]}, ttl=30).start()
        path = policy(tmp_path / "p.yaml", [allow_name("app.example.test"), deny("0.0.0.0/0")])
        good = path.read_text()
        agent = start_agent(
            lab,
            f"--pods=myproj={CLIENT}",
            "--dns-listen=198.18.0.1:5353",
            "--dns-upstream=198.18.0.1:53",
            "--watch-interval=0.2",
            f"--metrics={METRICS}",
            str(path),
        )
        dig = ["dig", "+short", "+tries=1", "+time=2", "@198.18.0.1", "-p", "5353"]
        assert lab.exec("client", [*dig, "app.example.test"]).stdout.strip() == WEB
        assert reach(lab, "client", WEB)
        before = ruleset(lab)
        bad = {**POLICY_BOMBS, "not-utf8": ("", "cannot read")}
        for count, (name, (text, phrase)) in enumerate(sorted(bad.items()), 1):
            # Written aside and renamed, so the watcher never reads a half-written file.
            staged = path.with_suffix(".new")
            staged.write_bytes(b"kind: \xff\n" if name == "not-utf8" else text.encode())
            os.replace(staged, path)
            assert eventually(
                lambda n=count: agent.output().count("reload failed") >= n, timeout=30
            ), (name, agent.output()[-2000:])
            failed = [ln for ln in agent.output().splitlines() if "reload failed" in ln]
            assert phrase in failed[-1], (name, failed[-1])
            assert agent.alive(), name
            assert ruleset(lab) == before, name
            answer = lab.exec("client", [*dig, "app.example.test"])
            assert answer.stdout.strip() == WEB, name
        assert reach(lab, "client", WEB)
        assert "Traceback" not in agent.output()
        metrics = lab.exec("node", ["curl", "-sS", "-m", "5", f"http://{METRICS}/metrics"])
        assert sample(
            metrics.stdout, "egress_router_firewall_reloads_total", outcome="failed"
        ) == len(bad)
        staged = path.with_suffix(".new")  # a good reload follows
        staged.write_text(good.replace("0.0.0.0/0", "198.51.100.0/24"))
        os.replace(staged, path)
        assert eventually(lambda: "reloaded:" in agent.output(), timeout=30)
        assert agent.stop() == 0
