"""The DNS proxy reloads without a restart: a ConfigMap update or SIGHUP, under load.

Both forwarding paths (relay with two worker processes: SIGHUP is passed on, each polls the
file). A client keeps one connection open and opens new ones the whole time: no request
fails; the kept connection stays on its old destination, new ones follow the file; a bad file
is refused with one line and the forwarding stays as it was.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from egress_router.lab import procs
from egress_router.lab.topology import Lab
from tests.configmap import ConfigMapVolume
from tests.dns_proxy.helpers import ROUTER, curl, eventually, router_network, start_proxy, web
from tests.load_client import Load

pytestmark = pytest.mark.lab

S25, S26, S27 = "203.0.113.25", "203.0.113.26", "203.0.113.27"
FIRST = f"8080 {S25} 80\n"
SECOND = f"8080 {S26} 80\n9090 {S27} 80\n"
BAD = f"8080 {S26} 80\n9090 {S27} 99999\n"
EXTRA = {"EGRESS_DNS_PROXY_RELAY_WORKERS": "2"}


def server_of(lab: Lab, port: int) -> str:
    result = curl(lab, port, "/server", timeout=2)
    return result.stdout.split(":")[0] if result.returncode == 0 else f"failed: {result.stderr}"


def start(lab: Lab, tmp_path: Path, forwarding: str) -> tuple[procs.Background, ConfigMapVolume]:
    router_network(lab)
    for ip in (S25, S26, S27):
        web(lab, ip)
    volume = ConfigMapVolume(tmp_path / "config", "destination", FIRST)
    extra = {"EGRESS_DNS_PROXY_DESTINATION_FILE": volume.path, **EXTRA}
    proxy = start_proxy(lab, "", forwarding=forwarding, debug=False, extra=extra)
    if forwarding == "relay":  # both workers listening
        assert eventually(lambda: proxy.output().count("ready:") == 2, 20), proxy.output()
    assert server_of(lab, 8080) == S25
    return proxy, volume


def nft_table(lab: Lab) -> object:
    result = lab.exec("router", ["nft", "-j", "list", "ruleset"], check=True)
    return json.loads(result.stdout)


@pytest.mark.parametrize("forwarding", ["kernel", "relay"])
def test_configmap_update_under_load_fails_no_request(
    lab: Lab, tmp_path: Path, forwarding: str
) -> None:
    proxy, volume = start(lab, tmp_path, forwarding)
    load = Load(lab.ns("client"), ROUTER, 8080, "/server", seconds=6.0)
    time.sleep(1.5)
    volume.update(SECOND)
    assert eventually(lambda: server_of(lab, 9090) == S27, 15), proxy.output()
    assert eventually(lambda: server_of(lab, 8080) == S26, 15), proxy.output()
    result = load.result()
    assert result["kept"]["failed"] == 0 and result["fresh"]["failed"] == 0, result
    kept = result["kept"]["bodies"]
    assert isinstance(kept, dict) and list(kept) == [f"{S25}:80 198.19.123.99"], kept
    fresh = result["fresh"]["bodies"]
    assert isinstance(fresh, dict) and f"{S26}:80 198.19.123.99" in fresh, fresh
    assert proxy.output().count("reloaded: 2 port(s)") == 1, proxy.output()  # worker 0 reports


@pytest.mark.parametrize("forwarding", ["kernel", "relay"])
def test_bad_file_is_refused_and_forwarding_stays(
    lab: Lab, tmp_path: Path, forwarding: str
) -> None:
    proxy, volume = start(lab, tmp_path, forwarding)
    before = nft_table(lab)
    volume.update(BAD)
    assert eventually(lambda: "reload refused" in proxy.output(), 10), proxy.output()
    time.sleep(1.5)
    refused = [line for line in proxy.output().splitlines() if "reload refused" in line]
    assert len(refused) == 1, refused
    assert "EGRESS_DNS_PROXY_DESTINATION" in refused[0] and "line 2" in refused[0], refused
    assert nft_table(lab) == before
    assert server_of(lab, 8080) == S25
    assert curl(lab, 9090, "/server", timeout=2).returncode != 0


@pytest.mark.parametrize("forwarding", ["kernel", "relay"])
def test_sighup_rereads_the_file(lab: Lab, tmp_path: Path, forwarding: str) -> None:
    proxy, volume = start(lab, tmp_path, forwarding)
    target = Path(volume.path).resolve()
    stat = target.stat()
    target.write_text(FIRST.replace(S25, S27))  # same size and mtime: the poll cannot see it
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    time.sleep(2.5)
    assert server_of(lab, 8080) == S25
    os.kill(proxy.pid, signal.SIGHUP)  # the main process only, as `kill -HUP 1` in a pod
    assert eventually(lambda: server_of(lab, 8080) == S27, 10), proxy.output()
    assert proxy.alive()


@pytest.mark.parametrize("forwarding", ["kernel", "relay"])
def test_health_endpoints(lab: Lab, forwarding: str) -> None:
    router_network(lab)
    web(lab, S25)
    extra = {"EGRESS_ROUTER_HEALTH_PORT": "8081", **EXTRA}
    proxy = start_proxy(lab, FIRST, forwarding=forwarding, debug=False, extra=extra)
    assert curl(lab, 8081, "/healthz").stdout == "ok\n"

    def ready() -> bool:
        return bool(curl(lab, 8081, "/readyz").stdout == "ready\n")

    assert eventually(ready, 20), (curl(lab, 8081, "/readyz").stdout, proxy.output())
    assert server_of(lab, 8080) == S25


def test_health_port_must_not_be_a_destination_port(lab: Lab) -> None:
    from tests.conftest import cli

    env = {"EGRESS_DNS_PROXY_DESTINATION": FIRST, "EGRESS_ROUTER_HEALTH_PORT": "8080"}
    result = cli("dns-proxy", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("egress-router: EGRESS_ROUTER_HEALTH_PORT"), result.stderr
