"""What the operator wants for one EgressRouter: the objects it owns and the router's status.

Owns: turning an EgressRouter (as read from the API) into the desired
NetworkAttachmentDefinition, Deployment and Service, each named after the router (so several
routers coexist in one namespace), labelled ``app=egress-router-cni`` (the reference's label)
and ``network.operator.openshift.io/egress-router=<name>``, owned by the router (controller
owner reference: the garbage collector deletes them with it); and the status conditions
(Available, Progressing, Degraded) with ``observedGeneration``, from the router's validity and
its Deployment's status. Must not: talk to the API (``operator.handlers`` does) or read clocks
(the time is passed in).

Over the reference network operator: names per router instead of fixed ones; a Service for the
redirect ports (its CRD text promised one); ``networkInterface.macvlan`` mode and master
rendered; every address passed on (not only the first); ``fallbackIP`` passed on; an invalid
router marked Degraded on its own status with the field named, instead of a silent empty string
and a cluster-wide Degraded two minutes later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from egress_router.cni.model.egressrouter import (
    API_VERSION,
    DEFAULT_IMAGE,
    KIND,
    EgressRouter,
    cni_config,
    parse_egressrouter,
)

APP_LABEL = "app"
APP_VALUE = "egress-router-cni"
ROUTER_LABEL = "network.operator.openshift.io/egress-router"
NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
NAD_API = "k8s.cni.cncf.io/v1"
CONDITION_TYPES = ("Available", "Progressing", "Degraded")


@dataclass(frozen=True)
class Condition:
    """One status condition; ``status`` is "True", "False" or "Unknown"."""

    type: str
    status: str
    reason: str
    message: str


def labels(name: str) -> dict[str, str]:
    return {APP_LABEL: APP_VALUE, ROUTER_LABEL: name}


def owner_reference(router: Mapping[str, Any]) -> dict[str, Any]:
    meta = router["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def parse(router: Mapping[str, Any]) -> EgressRouter:
    """The router's spec checked beyond the CRD schema; ``PolicyError`` names the field
    (e.g. ``spec.addresses[1].gateway`` when a second address names another gateway)."""
    return parse_egressrouter(dict(router), source=None)


def _meta(router: Mapping[str, Any]) -> dict[str, Any]:
    name = router["metadata"]["name"]
    return {
        "name": name,
        "namespace": router["metadata"]["namespace"],
        "labels": labels(name),
        "ownerReferences": [owner_reference(router)],
    }


def desired_objects(
    router: Mapping[str, Any], parsed: EgressRouter, image: str = DEFAULT_IMAGE
) -> list[dict[str, Any]]:
    """The NAD, the Deployment and (when there are port rules) the Service, in apply order."""
    name = router["metadata"]["name"]
    config = cni_config(parsed) | {"name": name}
    nad = {
        "apiVersion": NAD_API,
        "kind": "NetworkAttachmentDefinition",
        "metadata": _meta(router),
        "spec": {"config": json.dumps(config, indent=2) + "\n"},
    }
    networks = [{"name": name, "default-route": list(parsed.gateways)}]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(router),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels(name)},
            "template": {
                "metadata": {
                    "labels": labels(name),
                    "annotations": {NETWORKS_ANNOTATION: json.dumps(networks)},
                },
                "spec": {
                    "containers": [
                        {
                            "name": "egress-router-cni-pod",
                            "image": image,
                            "command": ["/bin/sh", "-c", "sleep infinity"],
                            "resources": {"requests": {"cpu": "100m"}},
                        }
                    ]
                },
            },
        },
    }
    objects = [nad, deployment]
    service = desired_service(router, parsed)
    if service is not None:
        objects.append(service)
    return objects


def desired_service(router: Mapping[str, Any], parsed: EgressRouter) -> dict[str, Any] | None:
    """A ClusterIP Service with one port per redirect port; ``None`` without port rules.

    A dual-stack router may redirect one port in each family (to an IPv4 and an IPv6
    destination): the Service lists it once. With any IPv6 rule the Service asks for both
    families (``PreferDualStack``: a single-stack cluster gives it its one family), since an
    IPv6 rule is only reached by clients connecting over IPv6.
    """
    if not parsed.rules:
        return None
    ports: dict[tuple[str, int], dict[str, Any]] = {}
    for rule in parsed.rules:
        ports.setdefault(
            (rule.protocol, rule.port),
            {
                "name": f"{rule.protocol.lower()}-{rule.port}",
                "protocol": rule.protocol,
                "port": rule.port,
                "targetPort": rule.port,
            },
        )
    spec: dict[str, Any] = {
        "type": "ClusterIP",
        "selector": labels(router["metadata"]["name"]),
        "ports": list(ports.values()),
    }
    if any(":" in rule.destination_ip for rule in parsed.rules):
        spec["ipFamilyPolicy"] = "PreferDualStack"
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(router), "spec": spec}


def conditions_for(
    problem: str | None, deployment: Mapping[str, Any] | None, *, apply_error: str | None = None
) -> list[Condition]:
    """The three conditions, from the spec problem, an apply error, or the Deployment's status."""
    if problem is not None:
        return [
            Condition("Available", "False", "InvalidSpec", problem),
            Condition("Progressing", "False", "InvalidSpec", problem),
            Condition("Degraded", "True", "InvalidSpec", problem),
        ]
    if apply_error is not None:
        return [
            Condition("Available", "False", "ApplyFailed", apply_error),
            Condition("Progressing", "False", "ApplyFailed", apply_error),
            Condition("Degraded", "True", "ApplyFailed", apply_error),
        ]
    status = (deployment or {}).get("status") or {}
    available = int(status.get("availableReplicas") or 0) >= 1
    if available:
        return [
            Condition("Available", "True", "RouterPodAvailable", "the router pod is available"),
            Condition("Progressing", "False", "Deployed", "the router pod is running"),
            Condition("Degraded", "False", "AsExpected", ""),
        ]
    waiting = "waiting for the router pod to become available"
    return [
        Condition("Available", "False", "RouterPodNotAvailable", waiting),
        Condition("Progressing", "True", "Deploying", waiting),
        Condition("Degraded", "False", "AsExpected", ""),
    ]


def status_for(
    conditions: Sequence[Condition],
    generation: int,
    previous: Sequence[Mapping[str, Any]],
    now: str,
) -> dict[str, Any]:
    """The status to write: ``lastTransitionTime`` kept for conditions whose status is unchanged."""
    before = {c.get("type"): c for c in previous}
    out = []
    for condition in conditions:
        old = before.get(condition.type)
        since = now
        if old is not None and old.get("status") == condition.status:
            since = old.get("lastTransitionTime") or now
        entry: dict[str, Any] = {
            "type": condition.type,
            "status": condition.status,
            "lastTransitionTime": since,
            "observedGeneration": generation,
            "reason": condition.reason,
            "message": condition.message,
        }
        out.append(entry)
    return {"observedGeneration": generation, "conditions": out}


def owner_name(obj: Mapping[str, Any]) -> str | None:
    """The name of the EgressRouter that controls ``obj``, if one does."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if (
            ref.get("kind") == KIND
            and ref.get("apiVersion") == API_VERSION
            and ref.get("controller")
        ):
            return str(ref.get("name"))
    return None
