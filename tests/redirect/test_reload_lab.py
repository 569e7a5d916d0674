"""Legacy mode reloads without a restart: a ConfigMap update or SIGHUP, under load.

A client keeps one connection open and opens new ones through the router the whole time:
no request fails; the kept connection stays on its old destination (conntrack), new ones
follow the new file; a bad file is refused with one line and the ruleset stays as it was.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from egress_router.lab.servers import Nginx
from egress_router.lab.topology import Lab
from tests.configmap import ConfigMapVolume
from tests.conftest import EGRESS_ROUTER, LAB_GATEWAY, LAB_SOURCE
from tests.load_client import Load
from tests.redirect.helpers import ROUTER_IP, WEB_LISTEN, curl, snapshot

pytestmark = pytest.mark.lab

FIRST = "80 tcp 203.0.113.25\n"
SECOND = "80 tcp 203.0.113.26\n"
BAD = "80 tcp 203.0.113.26\n8080 tcp not-an-address 80\n"


def served(lab: Lab) -> str:
    status, body, err = curl(lab, f"http://{ROUTER_IP}:80/server")
    assert status == 0, err
    return body


def wait_for(lab: Lab, body: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while (seen := curl(lab, f"http://{ROUTER_IP}:80/server", timeout=1)[1]) != body:
        assert time.monotonic() < deadline, f"still {seen!r}, wanted {body!r}"
        time.sleep(0.2)


@pytest.fixture
def router(lab: Lab, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], ConfigMapVolume]]:
    Nginx(lab, "web", WEB_LISTEN).start()
    volume = ConfigMapVolume(tmp_path / "config", "destination", FIRST)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGRESS_")}
    env |= {
        "EGRESS_SOURCE": LAB_SOURCE,
        "EGRESS_GATEWAY": LAB_GATEWAY,
        "EGRESS_ROUTER_MODE": "legacy",
        "EGRESS_DESTINATION_FILE": volume.path,
    }
    argv = ["ip", "netns", "exec", lab.ns("router"), EGRESS_ROUTER, "setup"]
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lab, "203.0.113.25:80 198.19.123.99")
        yield proc, volume
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def stderr_of(proc: subprocess.Popen[str]) -> list[str]:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert proc.stderr is not None
    return proc.stderr.read().splitlines()


def test_configmap_update_applies_under_load_without_a_failed_request(
    lab: Lab, router: tuple[subprocess.Popen[str], ConfigMapVolume]
) -> None:
    proc, volume = router
    load = Load(lab.ns("client"), ROUTER_IP, 80, "/server", seconds=6.0)
    time.sleep(1.5)
    volume.update(SECOND)  # the kubelet's ..data swap
    wait_for(lab, "203.0.113.26:80 198.19.123.99")
    result = load.result()
    assert result["kept"]["failed"] == 0 and result["fresh"]["failed"] == 0, result
    # the kept connection stayed on its destination; new connections moved
    assert result["kept"]["bodies"] == {"203.0.113.25:80 198.19.123.99": result["kept"]["ok"]}
    assert "203.0.113.26:80 198.19.123.99" in result["fresh"]["bodies"]  # type: ignore[operator]
    lines = stderr_of(proc)
    assert "egress-router: reloaded: 1 destination rule(s)" in lines


def test_sighup_rereads_the_file(
    lab: Lab, router: tuple[subprocess.Popen[str], ConfigMapVolume]
) -> None:
    proc, volume = router
    target = Path(volume.path).resolve()
    stat = target.stat()
    target.write_text(
        SECOND.replace("26", "27")
    )  # same size, mtime restored: the poll cannot see it
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    time.sleep(2.5)
    assert served(lab) == "203.0.113.25:80 198.19.123.99"
    proc.send_signal(signal.SIGHUP)
    wait_for(lab, "203.0.113.27:80 198.19.123.99")


def test_bad_file_is_refused_and_the_ruleset_stays(
    lab: Lab, router: tuple[subprocess.Popen[str], ConfigMapVolume]
) -> None:
    proc, volume = router
    before = snapshot(lab)
    load = Load(lab.ns("client"), ROUTER_IP, 80, "/server", seconds=4.0)
    volume.update(BAD)
    time.sleep(2.5)  # more than two poll intervals
    proc.send_signal(signal.SIGHUP)  # and a forced reload of the same bad file
    time.sleep(1.5)
    result = load.result()
    assert result["kept"]["failed"] == 0 and result["fresh"]["failed"] == 0, result
    assert snapshot(lab) == before
    assert served(lab) == "203.0.113.25:80 198.19.123.99"
    refused = [line for line in stderr_of(proc) if "reload refused" in line]
    assert len(refused) == 2, refused  # one line per attempt: the change, then the SIGHUP
    assert refused[0].startswith(
        "egress-router: reload refused, keeping the previous configuration: EGRESS_DESTINATION"
    ), refused
    assert "line 2" in refused[0]


def test_health_endpoints_answer_through_a_fallback_redirect(lab: Lab) -> None:
    """The probes' port is exempt from the redirect (a fallback would DNAT every port)."""
    Nginx(lab, "web", WEB_LISTEN).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGRESS_")}
    env |= {
        "EGRESS_SOURCE": LAB_SOURCE,
        "EGRESS_GATEWAY": LAB_GATEWAY,
        "EGRESS_DESTINATION": "203.0.113.25",
        "EGRESS_ROUTER_HEALTH_PORT": "8081",
    }
    argv = ["ip", "netns", "exec", lab.ns("router"), EGRESS_ROUTER, "setup"]
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for(lab, "203.0.113.25:80 198.19.123.99")
        assert curl(lab, f"http://{ROUTER_IP}:8081/healthz")[1] == "ok"
        deadline = time.monotonic() + 10  # ready a moment after the ruleset is in place
        while (body := curl(lab, f"http://{ROUTER_IP}:8081/readyz")[1]).startswith("starting"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert body.splitlines() == ["ready", "reloads ok 0 failed 0"]
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "reloads ok 1" not in curl(lab, f"http://{ROUTER_IP}:8081/readyz")[1]:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
