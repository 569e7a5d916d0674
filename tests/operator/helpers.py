"""Helpers for the operator's API tests: polling, reading routers and the objects they own."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import yaml

from tests import reference_examples as ref

T = TypeVar("T")
GROUP, VERSION, PLURAL = "network.operator.openshift.io", "v1", "egressrouters"
NAD = ("k8s.cni.cncf.io", "v1", "network-attachment-definitions")


def eventually(probe: Callable[[], T | None], timeout: float = 30.0, what: str = "") -> T:
    """Poll ``probe`` until it returns something truthy (generous: the machine is shared)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.2)


def custom(api: Any) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(api)


def create_router(api: Any, namespace: str, name: str, text: str = ref.EGRESS_ROUTER) -> None:
    body = yaml.safe_load(text)
    body["metadata"] = {"name": name}
    custom(api).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def get_router(api: Any, namespace: str, name: str) -> dict[str, Any]:
    return dict(custom(api).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))


def owned(api: Any, namespace: str, name: str) -> dict[str, Any]:
    """The NAD, Deployment and Service named ``name`` that exist now (by kind)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    found: dict[str, Any] = {}
    readers: dict[str, Callable[[], Any]] = {
        "NetworkAttachmentDefinition": lambda: custom(api).get_namespaced_custom_object(
            *NAD[:2], namespace, NAD[2], name
        ),
        "Deployment": lambda: (
            client.AppsV1Api(api).read_namespaced_deployment(name, namespace).to_dict()
        ),
        "Service": lambda: client.CoreV1Api(api).read_namespaced_service(name, namespace).to_dict(),
    }
    for kind, read in readers.items():
        try:
            found[kind] = read()
        except ApiException as exc:
            if exc.status != 404:
                raise
    return found


def condition(router: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for entry in (router.get("status") or {}).get("conditions") or []:
        if entry["type"] == kind:
            return dict(entry)
    return None
