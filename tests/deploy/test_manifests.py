"""Every manifest in deploy/ is accepted by the real API server (server-side dry-run apply), and
the RBAC in it grants the operator and the firewall agent what they need and nothing more."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from egress_router.lab.controlplane import ControlPlane
from tests.deploy.helpers import DEPLOY, apply, apply_file, documents, manifests

# The session control plane may start inside the first test here (20-90 s on a busy machine).
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def egress_router_namespace(kube_api: Any) -> Iterator[str]:
    """The namespace deploy/ installs into, created for real so namespaced dry-runs resolve."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(kube_api)
    try:
        core.create_namespace({"metadata": {"name": "egress-router"}})
    except ApiException as exc:
        if exc.status != 409:
            raise
    yield "egress-router"


def test_every_manifest_is_found() -> None:
    names = {p.relative_to(DEPLOY).as_posix() for p in manifests()}
    assert {"operator.yaml", "firewall-agent.yaml", "crds/egressrouters.yaml"} <= names


@pytest.mark.parametrize("path", manifests(), ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_manifest_server_side_dry_run(
    kube_api: Any, kube_namespace: str, egress_router_namespace: str, path: Path
) -> None:
    applied = apply_file(kube_api, path, kube_namespace, dry_run=True)
    assert len(applied) == len(documents(path))
    for obj, doc in zip(applied, documents(path), strict=True):
        assert obj.kind == doc["kind"] and obj.metadata.name == doc["metadata"]["name"]


def can(plane: ControlPlane, role: str, verb: str, resource: str, **attrs: str) -> bool:
    """Ask the API server, as ``role``'s token, whether it may do ``verb`` on ``resource``."""
    from kubernetes import client, config

    group, _, plural = resource.rpartition("/") if "/" in resource else ("", "", resource)
    sub = attrs.pop("subresource", "")
    review = {
        "spec": {
            "resourceAttributes": {
                "group": group,
                "resource": plural,
                "verb": verb,
                "namespace": attrs.pop("namespace", "some-namespace"),
                "subresource": sub,
            }
        }
    }
    with config.new_client_from_config(config_file=str(plane.kubeconfig(role))) as api:
        answer = client.AuthorizationV1Api(api).create_self_subject_access_review(review)
    return bool(answer.status.allowed)


@pytest.fixture(scope="module")
def rbac_applied(kube_api: Any, egress_router_namespace: str) -> None:
    for name in ("operator.yaml", "firewall-agent.yaml"):
        for doc in documents(DEPLOY / name):
            if doc["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding"):
                apply(kube_api, doc, egress_router_namespace)


OPERATOR_ALLOWED = [
    ("watch", "network.operator.openshift.io/egressrouters", {}),
    ("patch", "network.operator.openshift.io/egressrouters", {"subresource": "status"}),
    ("create", "k8s.cni.cncf.io/network-attachment-definitions", {}),
    ("patch", "apps/deployments", {}),
    ("create", "services", {}),
    ("create", "events", {}),
]
OPERATOR_DENIED = [
    ("get", "secrets", {}),
    ("create", "pods", {}),
    ("delete", "network.operator.openshift.io/egressrouters", {}),
    ("create", "network.operator.openshift.io/egressrouters", {}),
    ("patch", "k8s.ovn.org/egressfirewalls", {}),
    ("create", "rbac.authorization.k8s.io/clusterroles", {}),
    ("patch", "nodes", {}),
    ("patch", "network.operator.openshift.io/egressrouters", {}),
    ("list", "apiextensions.k8s.io/customresourcedefinitions", {}),
]
AGENT_ALLOWED = [
    ("watch", "pods", {}),
    ("list", "namespaces", {}),
    ("watch", "k8s.ovn.org/egressfirewalls", {}),
    ("watch", "network.openshift.io/egressnetworkpolicies", {}),
    ("patch", "k8s.ovn.org/egressfirewalls", {"subresource": "status"}),
    ("patch", "network.openshift.io/egressnetworkpolicies", {"subresource": "status"}),
    ("create", "events", {}),
]
AGENT_DENIED = [
    ("patch", "k8s.ovn.org/egressfirewalls", {}),
    ("delete", "network.openshift.io/egressnetworkpolicies", {}),
    ("patch", "pods", {}),
    ("get", "secrets", {}),
    ("get", "network.operator.openshift.io/egressrouters", {}),
    ("create", "apps/deployments", {}),
    ("list", "events", {}),
    ("patch", "events", {}),
]


@pytest.mark.parametrize(
    ("role", "verb", "resource", "attrs", "allowed"),
    [("operator", *case, True) for case in OPERATOR_ALLOWED]
    + [("operator", *case, False) for case in OPERATOR_DENIED]
    + [("agent", *case, True) for case in AGENT_ALLOWED]
    + [("agent", *case, False) for case in AGENT_DENIED],
)
def test_least_privilege(
    control_plane: ControlPlane,
    rbac_applied: None,
    role: str,
    verb: str,
    resource: str,
    attrs: dict[str, str],
    allowed: bool,
) -> None:
    assert can(control_plane, role, verb, resource, **dict(attrs)) is allowed
