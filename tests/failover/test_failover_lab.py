"""Two failover instances in two router namespaces sharing the node's macvlan parent (real
kernel, real nftables, real nginx): exactly one holds the address; a killed active is replaced
and comes back as standby; a clean stop hands over at once."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from egress_router.failover.store import FileStore
from egress_router.lab import procs
from egress_router.lab.failover import ROUTER2_IP, add_router2, router_env
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import Lab
from tests.conftest import EGRESS_ROUTER

pytestmark = pytest.mark.lab

ROLES = {"r1": "router", "r2": "router2"}


@pytest.fixture
def lab2(tmp_path: Path) -> Iterator[Lab]:
    with Lab(extra_roles=("router2",), workdir=tmp_path / "lab") as lab:
        add_router2(lab)
        Nginx(lab, "web", ["203.0.113.25:80"]).start()
        yield lab


def start(lab: Lab, name: str, lease: Path, n: int = 1) -> procs.Background:
    peers = [str(ROUTER2_IP)] if name == "r1" else [str(lab.addr.router_pod_ip)]
    env = router_env(lab, name, peers, str(lease), "80 tcp 203.0.113.25")
    return lab.spawn(ROLES[name], [EGRESS_ROUTER, "setup"], name=f"{name}-{n}", env=env)


def holder(lease: Path) -> str:
    record = FileStore(str(lease)).read()
    return record.holder if record is not None else ""


def has_address(lab: Lab, name: str) -> bool:
    out = lab.exec(ROLES[name], ["ip", "-4", "-o", "addr", "show", "dev", "macvlan0"]).stdout
    return "198.19.123.99/24" in out


def fetch(lab: Lab, router_ip: str) -> subprocess.CompletedProcess[str]:
    return lab.exec("client", ["curl", "-sS", "-m", "3", f"http://{router_ip}/ip"])


def last_status(bg: procs.Background) -> str:
    lines = [ln for ln in bg.output().splitlines() if ln.startswith("failover:")]
    return lines[-1] if lines else ""


def test_one_active_takeover_no_flap_back_and_clean_handover(lab2: Lab, tmp_path: Path) -> None:
    lease = tmp_path / "lease.json"
    r1 = start(lab2, "r1", lease)
    assert procs.wait_for(lambda: holder(lease) == "r1" and has_address(lab2, "r1"), 20), (
        r1.output()
    )
    r2 = start(lab2, "r2", lease)
    assert procs.wait_for(lambda: " is standby " in last_status(r2), 20), r2.output()
    assert not has_address(lab2, "r2")
    assert fetch(lab2, str(lab2.addr.router_pod_ip)).stdout == "198.19.123.99\n"
    assert " is active " in last_status(r1)

    os.kill(r1.pid, signal.SIGKILL)  # the instance only: its guard withdraws and releases
    assert procs.wait_for(lambda: " is active " in last_status(r2), 10), r2.output()
    assert holder(lease) == "r2" and has_address(lab2, "r2")
    assert not has_address(lab2, "r1")
    assert fetch(lab2, str(ROUTER2_IP)).stdout == "198.19.123.99\n"
    assert "lease released" in last_status(r2)

    r1 = start(lab2, "r1", lease, 2)  # comes back: standby, r2 stays active
    assert procs.wait_for(lambda: " is standby " in last_status(r1), 20), r1.output()
    assert not procs.wait_for(lambda: holder(lease) != "r2", 2.0)
    assert not has_address(lab2, "r1")

    r2.stop(signal.SIGTERM)  # a clean stop withdraws and releases: r1 takes over at once
    assert procs.wait_for(lambda: " is active " in last_status(r1), 10), r1.output()
    assert holder(lease) == "r1" and has_address(lab2, "r1")
    assert not has_address(lab2, "r2")
    assert fetch(lab2, str(lab2.addr.router_pod_ip)).stdout == "198.19.123.99\n"


def test_bad_failover_variable_is_one_line_and_nothing_applied(lab2: Lab) -> None:
    env = router_env(lab2, "r1", [], "relative/lease.json", "80 tcp 203.0.113.25")
    result = lab2.exec("router", [EGRESS_ROUTER, "setup"], env=env)
    assert result.returncode != 0
    assert "EGRESS_ROUTER_LEASE_FILE" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not has_address(lab2, "r1")


def test_failover_outside_legacy_mode_is_refused(lab2: Lab, tmp_path: Path) -> None:
    env = router_env(lab2, "r1", [], str(tmp_path / "lease.json"), "80 tcp 203.0.113.25")
    env["EGRESS_ROUTER_MODE"] = "init"
    result = lab2.exec("router", [EGRESS_ROUTER, "setup"], env=env)
    assert result.returncode != 0
    assert "EGRESS_ROUTER_FAILOVER" in result.stderr and "legacy" in result.stderr
    assert not has_address(lab2, "r1")


def readyz(lab: Lab, name: str) -> str:
    """``/readyz`` of an instance, asked from inside its own namespace: its first word and the
    status code."""
    out = lab.exec(
        ROLES[name],
        ["curl", "-s", "-m", "3", "-w", " %{http_code}", "http://127.0.0.1:8081/readyz"],
    ).stdout
    words = out.split()  # "ready", "reloads ok N failed M", the status code
    return f"{words[0]} {words[-1]}" if words else ""


def test_readiness_says_which_instance_is_active(lab2: Lab, tmp_path: Path) -> None:
    lease = tmp_path / "lease.json"

    def start_probed(name: str) -> procs.Background:
        peers = [str(ROUTER2_IP)] if name == "r1" else [str(lab2.addr.router_pod_ip)]
        env = router_env(lab2, name, peers, str(lease), "80 tcp 203.0.113.25")
        env["EGRESS_ROUTER_HEALTH_PORT"] = "8081"
        return lab2.spawn(ROLES[name], [EGRESS_ROUTER, "setup"], name=f"{name}-probed", env=env)

    r1 = start_probed("r1")
    assert procs.wait_for(
        lambda: holder(lease) == "r1" and readyz(lab2, "r1") == "ready 200", 20
    ), r1.output()
    r2 = start_probed("r2")
    assert procs.wait_for(lambda: readyz(lab2, "r2") == "standby 503", 20), r2.output()
    os.kill(r1.pid, signal.SIGKILL)
    assert procs.wait_for(lambda: readyz(lab2, "r2") == "ready 200", 10), r2.output()


def test_reload_on_sighup_and_file_change_active_and_standby(lab2: Lab, tmp_path: Path) -> None:
    """SIGHUP or a changed EGRESS_DESTINATION_FILE reloads like legacy mode: the active applies
    at once, the standby keeps it for its takeover; a bad file is one line, counted, old kept."""
    lease = tmp_path / "lease.json"
    rules = tmp_path / "destinations"
    rules.write_text("80 tcp 203.0.113.25\n")

    def start_watched(name: str) -> procs.Background:
        peers = [str(ROUTER2_IP)] if name == "r1" else [str(lab2.addr.router_pod_ip)]
        env = router_env(lab2, name, peers, str(lease), "")
        env.update(EGRESS_DESTINATION_FILE=str(rules), EGRESS_ROUTER_HEALTH_PORT="8081")
        return lab2.spawn(ROLES[name], [EGRESS_ROUTER, "setup"], name=f"{name}-rl", env=env)

    def port_8080(router_ip: str) -> str:
        url = f"http://{router_ip}:8080/ip"
        return str(lab2.exec("client", ["curl", "-sS", "-m", "3", url]).stdout)

    r1 = start_watched("r1")
    assert procs.wait_for(lambda: holder(lease) == "r1" and has_address(lab2, "r1"), 20)
    r2 = start_watched("r2")
    assert procs.wait_for(lambda: " is standby " in last_status(r2), 20), r2.output()
    first = fetch(lab2, str(lab2.addr.router_pod_ip))
    assert first.stdout == "198.19.123.99\n", (first.stderr, r1.output())

    rules.write_text("80 tcp 203.0.113.25\n8080 tcp nonsense\n")  # bad: refused, old kept
    r1.send(signal.SIGHUP)
    assert procs.wait_for(lambda: "reload refused" in r1.output(), 10), r1.output()
    refused = [ln for ln in r1.output().splitlines() if "reload refused" in ln]
    assert len(refused) == 1 and "Traceback" not in r1.output()
    assert readyz(lab2, "r1") == "ready 200"
    body = lab2.exec("router", ["curl", "-s", "-m", "3", "http://127.0.0.1:8081/readyz"]).stdout
    assert "reloads ok 0 failed 1" in body
    assert fetch(lab2, str(lab2.addr.router_pod_ip)).stdout == "198.19.123.99\n"

    rules.write_text("80 tcp 203.0.113.25\n8080 tcp 203.0.113.25 80\n")  # good: the file poll
    assert procs.wait_for(lambda: "reloaded (active)" in r1.output(), 10), r1.output()
    assert procs.wait_for(lambda: "reloaded (standby)" in r2.output(), 10), r2.output()
    assert port_8080(str(lab2.addr.router_pod_ip)) == "198.19.123.99\n"
    assert " is active " in last_status(r1) and " is standby " in last_status(r2)

    os.kill(r1.pid, signal.SIGKILL)  # the standby takes over with the reloaded rules
    assert procs.wait_for(lambda: " is active " in last_status(r2), 10), r2.output()
    assert procs.wait_for(lambda: port_8080(str(ROUTER2_IP)) == "198.19.123.99\n", 10)
