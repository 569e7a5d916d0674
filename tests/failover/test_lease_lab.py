"""The Lease backend end to end: two instances in two router namespaces fenced by a Lease on the
real kube-apiserver. The API server listens on the machine's loopback; each router namespace
reaches it through a socat relay over a unix socket (the namespaces get no route out)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from egress_router.kube.client import Kube
from egress_router.lab import procs
from egress_router.lab.failover import ROUTER2_IP, add_router2, router_env
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import Lab
from tests.conftest import EGRESS_ROUTER

pytestmark = pytest.mark.lab

ROLES = {"r1": "router", "r2": "router2"}


@pytest.fixture
def relayed(control_plane: Any, tmp_path: Path) -> Iterator[tuple[Lab, Kube, str]]:
    port = int(control_plane.server.rsplit(":", 1)[1])
    sock = tmp_path / "apiserver.sock"
    host_side = subprocess.Popen(
        ["socat", f"UNIX-LISTEN:{sock},fork", f"TCP:127.0.0.1:{port}"],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    kube = Kube(str(control_plane.kubeconfig("admin")))
    try:
        with Lab(extra_roles=("router2",), workdir=tmp_path / "lab") as lab:
            add_router2(lab)
            Nginx(lab, "web", ["203.0.113.25:80"]).start()
            for role in ROLES.values():
                relay = f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"
                lab.spawn(role, ["socat", relay, f"UNIX-CONNECT:{sock}"], name=f"relay-{role}")
            yield lab, kube, str(control_plane.kubeconfig("admin"))
    finally:
        kube.close()
        host_side.terminate()
        host_side.wait(5)


def holder(kube: Kube, namespace: str) -> str:
    lease = kube.read_lease(namespace, "egress-router")
    return lease.holder if lease is not None else ""


def last_status(bg: procs.Background) -> str:
    lines = [ln for ln in bg.output().splitlines() if ln.startswith("failover:")]
    return lines[-1] if lines else ""


def test_lease_fenced_pair(relayed: tuple[Lab, Kube, str], kube_namespace: str) -> None:
    lab, kube, kubeconfig = relayed
    started = {}
    for name in ("r1", "r2"):
        peers = [str(ROUTER2_IP)] if name == "r1" else [str(lab.addr.router_pod_ip)]
        env = router_env(lab, name, peers, "", "80 tcp 203.0.113.25")
        env.update(
            EGRESS_ROUTER_FAILOVER="lease",
            EGRESS_ROUTER_LEASE_NAMESPACE=kube_namespace,
            KUBECONFIG=kubeconfig,
        )
        started[name] = lab.spawn(ROLES[name], [EGRESS_ROUTER, "setup"], name=name, env=env)
        assert procs.wait_for(lambda n=name: last_status(started[n]) != "", 30), started[
            name
        ].output()
    assert procs.wait_for(lambda: holder(kube, kube_namespace) in ("r1", "r2"), 30)
    first = holder(kube, kube_namespace)
    other = "r2" if first == "r1" else "r1"
    assert procs.wait_for(lambda: " is active " in last_status(started[first]), 10)
    assert " is standby " in last_status(started[other])

    os.kill(started[first].pid, signal.SIGKILL)  # the guard withdraws, then releases the Lease
    assert procs.wait_for(lambda: " is active " in last_status(started[other]), 15), started[
        other
    ].output()
    assert "lease released" in last_status(started[other])
    assert holder(kube, kube_namespace) == other
    lease = kube.read_lease(kube_namespace, "egress-router")
    assert lease is not None and lease.transitions >= 1
