"""deploy/failover-pair.yaml's RBAC is enough for the Lease backend and nothing more: the
instances' store (and the guard's release) runs against the real API server as the
ServiceAccount that manifest binds, and the API server refuses that account everything else."""

from __future__ import annotations

from typing import Any

import pytest

from egress_router.errors import DataplaneError
from egress_router.failover.kube_store import KubeLeaseStore
from egress_router.kube.client import Kube
from egress_router.lab.controlplane import ControlPlane
from tests.deploy.helpers import DEPLOY, apply, documents
from tests.deploy.test_manifests import can, egress_router_namespace

__all__ = ["egress_router_namespace"]
pytestmark = pytest.mark.timeout(300)
NAMESPACE = "egress-router"
LEASE = "egress-1"


@pytest.fixture(scope="module")
def failover_rbac(kube_api: Any, egress_router_namespace: str) -> None:
    kinds = ("ServiceAccount", "Role", "RoleBinding")
    for doc in documents(DEPLOY / "failover-pair.yaml"):
        if doc["kind"] in kinds:
            apply(kube_api, doc, egress_router_namespace)


def test_the_pair_uses_that_account_and_that_lease() -> None:
    docs = {d["kind"]: d for d in documents(DEPLOY / "failover-pair.yaml")}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "egress-router-failover"
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert (env["EGRESS_ROUTER_FAILOVER"], env["EGRESS_ROUTER_LEASE_NAME"]) == ("lease", LEASE)
    assert docs["Deployment"]["spec"]["replicas"] == 2


def test_the_lease_backend_runs_with_exactly_the_granted_rights(
    control_plane: ControlPlane, kube_api: Any, failover_rbac: None
) -> None:
    from kubernetes import client

    coordination = client.CoordinationV1Api(kube_api)
    try:  # a lease left by an earlier run of this module
        coordination.delete_namespaced_lease(LEASE, NAMESPACE)
    except client.ApiException as exc:
        assert exc.status == 404
    kube = Kube(str(control_plane.kubeconfig("failover")))
    guard_kube = Kube(str(control_plane.kubeconfig("failover")))
    try:
        a = KubeLeaseStore(kube, NAMESPACE, LEASE, 1.4)
        guard = KubeLeaseStore(guard_kube, NAMESPACE, LEASE, 1.4)
        assert a.read() is None  # get (404)
        first = a.write("", "egress-1-a", "run-1")  # create
        assert first is not None
        renewed = a.write(first, "egress-1-a", "run-1")  # patch
        assert renewed is not None
        assert guard.release("run-1")  # get + update
        record = a.read()
        assert record is not None and record.holder == ""
        assert a.write(record.version, "egress-1-b", "run-2") is not None  # update
        other = KubeLeaseStore(kube, NAMESPACE, "another-lease", 1.4)
        with pytest.raises(DataplaneError, match="forbidden"):
            other.read()  # any other Lease: refused
    finally:
        kube.close()
        guard_kube.close()


@pytest.mark.parametrize(
    ("verb", "resource", "attrs", "allowed"),
    [
        ("get", "coordination.k8s.io/leases", {"name": LEASE}, True),
        ("update", "coordination.k8s.io/leases", {"name": LEASE}, True),
        ("patch", "coordination.k8s.io/leases", {"name": LEASE}, True),
        ("create", "coordination.k8s.io/leases", {}, True),
        ("get", "coordination.k8s.io/leases", {"name": "kube-scheduler"}, False),
        ("update", "coordination.k8s.io/leases", {"name": "other"}, False),
        ("delete", "coordination.k8s.io/leases", {"name": LEASE}, False),
        ("list", "coordination.k8s.io/leases", {}, False),
        ("watch", "coordination.k8s.io/leases", {}, False),
        ("get", "coordination.k8s.io/leases", {"name": LEASE, "namespace": "default"}, False),
        ("get", "secrets", {}, False),
        ("create", "pods", {}, False),
        ("get", "configmaps", {}, False),
    ],
)
def test_least_privilege(
    control_plane: ControlPlane,
    failover_rbac: None,
    verb: str,
    resource: str,
    attrs: dict[str, str],
    allowed: bool,
) -> None:
    attrs = {"namespace": NAMESPACE, **attrs}
    assert can(control_plane, "failover", verb, resource, **attrs) is allowed
