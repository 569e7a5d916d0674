"""The watch adapter against the real API server, logged in as the firewall agent's
ServiceAccount (exactly the RBAC of deploy/firewall-agent.yaml): list then changes, pods of one
node only, reconnect with back-off after the connection is cut, status written per node."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from egress_router.kube.client import Kube, KubeError
from egress_router.kube.watch import SYNC, Backoff, Resource, Watcher, WatchEvent, start
from egress_router.lab.controlplane import ControlPlane
from tests.firewall.kube_helpers import (
    EF,
    ApiBridge,
    create_pod,
    create_policy,
    get_status,
    install_agent_rbac,
    until,
)

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]


@pytest.fixture
def bridge(control_plane: ControlPlane, kube_api: Any, tmp_path: Path) -> Iterator[ApiBridge]:
    install_agent_rbac(kube_api)
    with ApiBridge(control_plane, tmp_path) as b:
        yield b


class Recorder:
    def __init__(self) -> None:
        self.events: list[WatchEvent] = []
        self.lines: list[str] = []
        self.lock = threading.Lock()

    def sink(self, event: WatchEvent) -> None:
        with self.lock:
            self.events.append(event)

    def names(self, kind: str) -> list[str]:
        with self.lock:
            out = []
            for e in self.events:
                if e.type != kind:
                    continue
                items = e.object["items"] if kind == SYNC else [e.object]
                out += [i["metadata"]["name"] for i in items]
            return out


def test_pods_of_one_node_listed_watched_and_resynced_after_a_cut(
    bridge: ApiBridge, kube_api: Any, kube_namespace: str, tmp_path: Path
) -> None:
    node = f"n-{uuid.uuid4().hex[:8]}"
    create_pod(kube_api, kube_namespace, "before", node, "198.18.7.1")
    create_pod(kube_api, kube_namespace, "elsewhere", "other-node", "198.18.7.2")
    kube = Kube(str(bridge.kubeconfig("agent", tmp_path / "agent.kubeconfig")))
    rec = Recorder()
    resource = Resource("", "v1", "pods", field_selector=f"spec.nodeName={node}")
    watcher = Watcher(
        kube, resource, rec.sink, report=rec.lines.append, backoff=Backoff(first=0.2, cap=1.0)
    )
    stop = threading.Event()
    start([watcher], stop)
    try:
        until(lambda: "before" in rec.names(SYNC), what="the first listing")
        assert "elsewhere" not in rec.names(SYNC)
        create_pod(kube_api, kube_namespace, "after", node, "198.18.7.3")
        until(lambda: "after" in rec.names("ADDED"), what="the ADDED event")

        bridge.cut()
        until(lambda: any("retrying" in line for line in rec.lines), what="a retry line")
        create_pod(kube_api, kube_namespace, "while-cut", node, "198.18.7.4")
        time.sleep(1.0)
        assert "while-cut" not in rec.names(SYNC) + rec.names("ADDED")
        bridge.restore()
        until(lambda: "while-cut" in rec.names(SYNC), what="a new listing after reconnecting")
        until(lambda: any("connected again" in line for line in rec.lines), what="recovery line")
    finally:
        stop.set()
        watcher.stop()
        kube.close()


def test_agent_rbac_reads_policies_and_writes_only_status(
    bridge: ApiBridge, kube_api: Any, kube_namespace: str, tmp_path: Path
) -> None:
    create_policy(
        kube_api,
        EF,
        kube_namespace,
        "default",
        [{"type": "Deny", "to": {"cidrSelector": "0.0.0.0/0"}}],
    )
    kube = Kube(str(bridge.kubeconfig("agent", tmp_path / "agent.kubeconfig")))
    try:
        for node in ("n1", "n2"):
            kube.apply_status(
                "k8s.ovn.org/v1",
                "EgressFirewall",
                "egressfirewalls",
                kube_namespace,
                "default",
                {
                    "messages": [f"{node}: EgressFirewall Rules applied"],
                    "status": "EgressFirewall Rules applied",
                },
                f"egress-router-firewall/{node}",
            )
        status = get_status(kube_api, EF, kube_namespace, "default")
        # each node owns its own entry: the second write did not remove the first
        assert sorted(status["messages"]) == [
            "n1: EgressFirewall Rules applied",
            "n2: EgressFirewall Rules applied",
        ]
        with pytest.raises(KubeError) as refused:
            kube.apply(
                {
                    "apiVersion": "k8s.ovn.org/v1",
                    "kind": "EgressFirewall",
                    "metadata": {"name": "default", "namespace": kube_namespace},
                    "spec": {"egress": []},
                }
            )
        assert refused.value.status == 403
    finally:
        kube.close()
