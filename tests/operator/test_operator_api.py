"""The operator against the real API server, running as `egress-router operator` with exactly the
permissions deploy/operator.yaml grants (the token of its ServiceAccount user): routers in, named
objects out, status conditions written, deletion through the controller-manager's garbage
collector, objects repaired when changed or deleted by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests import reference_examples as ref
from tests.operator.helpers import (
    GROUP,
    PLURAL,
    VERSION,
    condition,
    create_router,
    custom,
    eventually,
    get_router,
    owned,
)

# The session control plane may start inside the first test here (20-90 s on a busy machine).
pytestmark = pytest.mark.timeout(300)


def test_router_gets_its_objects_and_status(
    kube_api: Any, kube_namespace: str, operator: None
) -> None:
    create_router(kube_api, kube_namespace, "blue")
    made = eventually(
        lambda: (o := owned(kube_api, kube_namespace, "blue")) and len(o) == 3 and o,
        what="NAD, Deployment and Service named blue",
    )
    for obj in made.values():
        meta = obj["metadata"]
        refs = meta.get("ownerReferences") or meta.get("owner_references")
        assert refs[0]["kind"] == "EgressRouter" and refs[0]["name"] == "blue"
    router = eventually(
        lambda: (r := get_router(kube_api, kube_namespace, "blue")).get("status") and r,
        what="status written",
    )
    assert router["status"]["observedGeneration"] == 1
    # no kubelet runs the pod: progressing, not available, not degraded
    assert condition(router, "Progressing")["status"] == "True"  # type: ignore[index]
    assert condition(router, "Available")["status"] == "False"  # type: ignore[index]
    assert condition(router, "Degraded")["status"] == "False"  # type: ignore[index]


def test_two_routers_coexist_in_one_namespace(
    kube_api: Any, kube_namespace: str, operator: None
) -> None:
    create_router(kube_api, kube_namespace, "a")
    create_router(kube_api, kube_namespace, "b", ref.EGRESS_ROUTER_E2E_V4)
    for name in ("a", "b"):
        eventually(lambda n=name: len(owned(kube_api, kube_namespace, n)) == 3, what=name)  # type: ignore[misc]
    nad_b = owned(kube_api, kube_namespace, "b")["NetworkAttachmentDefinition"]
    assert "192.168.3.10/24" in nad_b["spec"]["config"]


def test_change_is_reconciled(kube_api: Any, kube_namespace: str, operator: None) -> None:
    from kubernetes import client

    create_router(kube_api, kube_namespace, "c")
    eventually(lambda: len(owned(kube_api, kube_namespace, "c")) == 3, what="objects")
    patch = {"spec": {"redirect": {"redirectRules": [
        {"destinationIP": "203.0.113.30", "port": 9000, "protocol": "TCP"}
    ]}}}  # fmt: skip
    custom(kube_api).patch_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, PLURAL, "c", patch
    )
    core = client.CoreV1Api(kube_api)
    eventually(
        lambda: (
            [p.port for p in core.read_namespaced_service("c", kube_namespace).spec.ports] == [9000]
        ),
        what="Service ports follow the rules",
    )
    eventually(
        lambda: get_router(kube_api, kube_namespace, "c")["status"]["observedGeneration"] == 2,
        what="observedGeneration 2",
    )


def test_objects_deleted_by_hand_are_recreated(
    kube_api: Any, kube_namespace: str, operator: None
) -> None:
    from kubernetes import client

    create_router(kube_api, kube_namespace, "d")
    first = eventually(
        lambda: (o := owned(kube_api, kube_namespace, "d")) and len(o) == 3 and o, what="objects"
    )
    client.CoreV1Api(kube_api).delete_namespaced_service("d", kube_namespace)
    again = eventually(
        lambda: (
            (o := owned(kube_api, kube_namespace, "d")).get("Service")
            and o["Service"]["metadata"]["uid"] != first["Service"]["metadata"]["uid"]
            and o
        ),
        what="Service re-created",
    )
    assert again["Service"]["spec"]["ports"]


def test_deleting_the_router_deletes_its_objects(
    kube_api: Any, kube_namespace: str, operator: None
) -> None:
    create_router(kube_api, kube_namespace, "e")
    eventually(lambda: len(owned(kube_api, kube_namespace, "e")) == 3, what="objects")
    custom(kube_api).delete_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, "e")
    # the controller-manager's garbage collector follows the owner references
    eventually(lambda: not owned(kube_api, kube_namespace, "e"), 90, "objects garbage-collected")


def test_ipv6_router_gets_its_objects_and_is_not_degraded(
    kube_api: Any, kube_namespace: str, operator: None
) -> None:
    """The origin e2e suite's IPv6 EgressRouter (once Degraded: the plugin was IPv4-only)."""
    create_router(kube_api, kube_namespace, "v6", ref.EGRESS_ROUTER_E2E_V6)
    made = eventually(
        lambda: (o := owned(kube_api, kube_namespace, "v6")) and len(o) == 3 and o,
        what="NAD, Deployment and Service named v6",
    )
    ip = json.loads(made["NetworkAttachmentDefinition"]["spec"]["config"])["ip"]
    assert ip == {
        "addresses": ["192:168:3::10/64"],
        "destinations": [
            "80 UDP 10:100:3::0",
            "8080 SCTP 203:0:113::26 80",
            "8443 TCP 203:0:113::27 443",
        ],
        "gateway": "192:168:3::1",
    }
    annotations = made["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    networks = json.loads(annotations["k8s.v1.cni.cncf.io/networks"])
    assert networks == [{"name": "v6", "default-route": ["192:168:3::1"]}]
    router = eventually(
        lambda: (r := get_router(kube_api, kube_namespace, "v6")).get("status") and r,
        what="status written",
    )
    assert condition(router, "Degraded")["status"] == "False"  # type: ignore[index]
    assert condition(router, "Progressing")["status"] == "True"  # type: ignore[index]


# One IPv6 address written two ways: the API server's list keys compare the text, the operator
# compares addresses, and refuses the second naming its field.
TWICE_V6 = """\
apiVersion: network.operator.openshift.io/v1
kind: EgressRouter
spec:
  addresses:
  - {ip: "2001:db8:1::99/64", gateway: "2001:db8:1::1"}
  - {ip: "2001:db8:1:0::99/64", gateway: "2001:db8:1::1"}
  mode: Redirect
  redirect:
    redirectRules:
    - {destinationIP: "2001:db8:2::25", port: 8080, targetPort: 80, protocol: TCP}
"""


def test_router_the_plugin_cannot_serve_is_degraded_with_the_field(
    kube_api: Any, kube_namespace: str, operator: None
) -> None:
    from kubernetes import client

    create_router(kube_api, kube_namespace, "mixed", TWICE_V6)
    router = eventually(
        lambda: (r := get_router(kube_api, kube_namespace, "mixed")).get("status") and r,
        what="status written",
    )
    degraded = condition(router, "Degraded")
    assert degraded is not None and degraded["status"] == "True"
    assert degraded["reason"] == "InvalidSpec"
    message = degraded["message"]
    assert "spec.addresses[1].ip" in message, degraded
    assert "is already spec.addresses[0].ip" in message, degraded
    assert not owned(kube_api, kube_namespace, "mixed")
    events = eventually(
        lambda: (
            client.CoreV1Api(kube_api)
            .list_namespaced_event(kube_namespace, field_selector="involvedObject.name=mixed")
            .items
        ),
        what="a warning event",
    )
    assert any(e.reason == "ReconcileFailed" and e.type == "Warning" for e in events)


def test_router_made_invalid_keeps_its_objects_and_is_degraded(
    kube_api: Any, kube_namespace: str, operator: None
) -> None:
    create_router(kube_api, kube_namespace, "f")
    first = eventually(
        lambda: (o := owned(kube_api, kube_namespace, "f")) and len(o) == 3 and o, what="objects"
    )
    # (a second gateway in the family is refused by the API server; this it cannot see)
    second = {"ip": "192.168.12.1/24", "gateway": "192.168.12.1"}
    addresses = [{"ip": "192.168.12.99/24", "gateway": "192.168.12.1"}, second]
    custom(kube_api).patch_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, PLURAL, "f", {"spec": {"addresses": addresses}}
    )
    router = eventually(
        lambda: (
            (r := get_router(kube_api, kube_namespace, "f"))["status"]["observedGeneration"] == 2
            and r
        ),
        what="status for generation 2",
    )
    degraded = condition(router, "Degraded")
    assert degraded is not None and degraded["status"] == "True"
    assert "spec.addresses[1].ip" in degraded["message"], degraded
    assert "is the gateway itself" in degraded["message"], degraded
    # the last good objects stay in place
    now = owned(kube_api, kube_namespace, "f")
    assert {k: v["metadata"]["uid"] for k, v in now.items()} == {
        k: v["metadata"]["uid"] for k, v in first.items()
    }
