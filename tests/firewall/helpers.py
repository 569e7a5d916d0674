"""Shared helpers of the firewall lab tests: policy files, reachability, ruleset snapshots."""

from __future__ import annotations

import json
import re
from pathlib import Path

from egress_router.lab import procs
from egress_router.lab.topology import Lab
from tests.conftest import EGRESS_ROUTER, cli

CLIENT = "198.18.0.3"
CLIENT2 = "198.18.0.4"


def policy(
    path: Path, rules: list[dict], namespace: str | None = "myproj", kind: str = "EgressFirewall"
) -> Path:
    api = "k8s.ovn.org/v1" if kind == "EgressFirewall" else "network.openshift.io/v1"
    meta = {"name": "default"}
    if namespace:
        meta["namespace"] = namespace
    path.write_text(
        json.dumps({"kind": kind, "apiVersion": api, "metadata": meta, "spec": {"egress": rules}})
    )
    return path


def deny(cidr: str) -> dict:
    return {"type": "Deny", "to": {"cidrSelector": cidr}}


def allow(cidr: str) -> dict:
    return {"type": "Allow", "to": {"cidrSelector": cidr}}


def allow_name(name: str) -> dict:
    return {"type": "Allow", "to": {"dnsName": name}}


def reach(lab: Lab, role: str, host: str, timeout: float = 2.0) -> bool:
    url = f"http://[{host}]/" if ":" in host else f"http://{host}/"
    result = lab.exec(role, ["curl", "-sS", "-o", "/dev/null", "-m", str(timeout), url])
    return result.returncode == 0


def fw(lab: Lab, *args: str):
    return cli("firewall", *args, namespace=lab.ns("node"))


def ruleset(lab: Lab) -> str:
    text = lab.exec("node", ["nft", "list", "ruleset"], check=True).stdout
    return re.sub(r" expires \S+", "", text)


def start_agent(lab: Lab, *args: str, name: str = "fw") -> procs.Background:
    agent = lab.spawn("node", [EGRESS_ROUTER, "firewall", "run", *args], name=name)
    assert procs.wait_for(lambda: "running" in agent.output() or not agent.alive(), 15), (
        agent.output()
    )
    assert agent.alive(), agent.output()
    return agent


def eventually(predicate, timeout: float = 8.0) -> bool:
    return procs.wait_for(predicate, timeout, interval=0.2)
