"""The Lease backend against a real kube-apiserver: compare-and-swap, holder visible, release."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from egress_router.failover.kube_store import KubeLeaseStore
from egress_router.kube.client import Kube


@pytest.fixture
def kube(control_plane: Any) -> Iterator[Kube]:
    client = Kube(str(control_plane.kubeconfig("admin")))
    yield client
    client.close()


def test_lease_compare_and_swap(kube: Kube, kube_namespace: str) -> None:
    a = KubeLeaseStore(kube, kube_namespace, "egress-router", 0.65)
    b = KubeLeaseStore(kube, kube_namespace, "egress-router", 0.65)
    assert a.read() is None
    first = a.write("", "router-a")
    assert first is not None
    assert b.write("", "router-b") is None  # it exists now: the create loses
    record = b.read()
    assert record is not None and (record.holder, record.version) == ("router-a", first)
    renewed = a.write(first, "router-a")
    assert renewed is not None and renewed != first
    assert b.write(first, "router-b") is None  # a stale version loses (409 Conflict)
    released = a.write(renewed, "")
    assert released is not None
    taken = b.write(released, "router-b")
    assert taken is not None
    lease = kube.read_lease(kube_namespace, "egress-router")
    assert lease is not None and (lease.holder, lease.transitions) == ("router-b", 1)
    raw = kube.get("coordination.k8s.io/v1", "Lease", kube_namespace, "egress-router")
    assert raw is not None
    assert raw["spec"]["holderIdentity"] == "router-b"  # what `kubectl get lease` shows
    assert raw["spec"]["leaseDurationSeconds"] == 1


def test_lease_release_by_incarnation_token(kube: Kube, kube_namespace: str) -> None:
    a = KubeLeaseStore(kube, kube_namespace, "egress-router", 1.0)
    guard = KubeLeaseStore(kube, kube_namespace, "egress-router", 1.0)
    first = a.write("", "router-a", "run-1")
    assert first is not None
    record = a.read()
    assert record is not None and record.token == "run-1"
    renewed = a.write(first, "router-a", "run-1")  # the guard never heard of this version
    assert renewed is not None and renewed != first
    assert not guard.release("run-0")  # another run's token: untouched
    assert guard.release("run-1")
    lease = kube.read_lease(kube_namespace, "egress-router")
    assert lease is not None and (lease.holder, lease.token) == ("", "")
    assert not guard.release("run-1")  # released already
    b = KubeLeaseStore(kube, kube_namespace, "egress-router", 1.0)
    seen = b.read()
    assert seen is not None
    assert b.write(seen.version, "router-b", "run-2") is not None  # one replace, no re-read
