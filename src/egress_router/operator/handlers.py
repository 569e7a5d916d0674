"""The kopf adapter of the EgressRouter operator: watches, reconciles, writes status.

Owns: the kopf registry (event handlers for EgressRouters and for the Deployments, Services and
NetworkAttachmentDefinitions they own), one ``reconcile`` that applies the model's desired
objects through ``egress_router.kube`` and writes the router's conditions, warnings posted as
Kubernetes events on failure, and ``run`` (standalone, cluster-wide, no CRD scanning).
Must not: decide what a router wants (``operator.model`` does) or call the client library.

Level-triggered: every event of a router or of something it owns re-applies the whole desired
state (server-side apply, so an unchanged object is not written again) and recomputes the
status; nothing runs on a timer. Handlers return nothing: kopf keeps no progress in the router's
strict status, and with only event handlers it writes no annotations or finalizers either, so
deleting a router never waits for the operator: the garbage collector removes what it owned.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any

import kopf

from egress_router.cni.model.egressrouter import API_VERSION, DEFAULT_IMAGE, KIND
from egress_router.errors import PolicyError
from egress_router.kube.client import Kube, KubeError
from egress_router.operator import model

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "egressrouters"
OWNED_SELECTOR = {model.APP_LABEL: model.APP_VALUE}

registry = kopf.OperatorRegistry()


@dataclass
class Memo:
    """What every handler needs: the API client and the router pods' image."""

    kube: Kube
    image: str = DEFAULT_IMAGE


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reconcile(kube: Kube, router: dict[str, Any], image: str) -> str | None:
    """Apply what ``router`` wants and write its status; the failure text, if any."""
    meta = router["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    problem = apply_error = None
    deployment: dict[str, Any] | None = None
    try:
        parsed = model.parse(router)
    except PolicyError as exc:
        problem = exc.one_line()
    else:
        try:
            for obj in model.desired_objects(router, parsed, image):
                stored = kube.apply(obj)
                if obj["kind"] == "Deployment":
                    deployment = stored
            if model.desired_service(router, parsed) is None:
                _delete_owned(kube, "v1", "Service", namespace, name)
        except KubeError as exc:
            apply_error = exc.one_line()
    conditions = model.conditions_for(problem, deployment, apply_error=apply_error)
    previous = (router.get("status") or {}).get("conditions") or []
    status = model.status_for(conditions, int(meta.get("generation") or 0), previous, now())
    if _comparable(status) != _comparable(router.get("status") or {}):
        kube.patch_status(API_VERSION, PLURAL, namespace, name, status)
    return problem or apply_error


def _comparable(status: dict[str, Any]) -> Any:
    keys = ("type", "status", "reason", "message", "observedGeneration")
    conditions = sorted(str([c.get(k) for k in keys]) for c in status.get("conditions") or [])
    return status.get("observedGeneration"), conditions


def _delete_owned(kube: Kube, api_version: str, kind: str, namespace: str, name: str) -> None:
    existing = kube.get(api_version, kind, namespace, name)
    if existing is not None and model.owner_name(existing) == name:
        kube.delete(api_version, kind, namespace, name)


def _handle(router: dict[str, Any], memo: Memo, body: Any, logger: kopf.Logger) -> None:
    if router.get("metadata", {}).get("deletionTimestamp"):
        return  # the garbage collector removes what it owns
    try:
        failure = reconcile(memo.kube, router, memo.image)
    except KubeError as exc:
        # e.g. the router or its namespace went away meanwhile; the next event retries
        logger.warning("cannot write the status: %s", exc.one_line())
        return
    if failure is not None:
        kopf.warn(body, reason="ReconcileFailed", message=failure)


@kopf.on.login(registry=registry)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod its service account, else $KUBECONFIG (``run`` sets it from --kubeconfig)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
def router_event(
    event: kopf.RawEvent, body: kopf.Body, memo: Memo, logger: kopf.Logger, **_: Any
) -> None:
    """Any change of an EgressRouter (and the initial listing): reconcile it."""
    if event.get("type") == "DELETED":
        return
    _handle(dict(body), memo, body, logger)


def owned_event(body: kopf.Body, memo: Memo, logger: kopf.Logger, **_: Any) -> None:
    """Something a router owns changed or went away: reconcile its router again."""
    obj = dict(body)
    owner = model.owner_name(obj)
    if owner is None or body.metadata.namespace is None:
        return
    try:
        router = memo.kube.get(API_VERSION, KIND, body.metadata.namespace, owner)
    except KubeError as exc:
        logger.warning("cannot read EgressRouter %s: %s", owner, exc.one_line())
        return
    if router is not None:
        _handle(router, memo, router, logger)


for _resource in (
    ("apps", "v1", "deployments"),
    ("v1", "services"),  # the core group: kopf's "v1" prefix
    ("k8s.cni.cncf.io", "v1", "network-attachment-definitions"),
):
    kopf.on.event(*_resource, labels=OWNED_SELECTOR, registry=registry)(owned_event)


def settings() -> kopf.OperatorSettings:
    """Standalone and strict: no CRD or namespace scanning, only warnings posted as events."""
    result = kopf.OperatorSettings()
    result.scanning.disabled = True
    result.posting.level = logging.WARNING
    result.watching.reconnect_backoff = 1.0
    return result


def run(kubeconfig: str | None, image: str) -> None:
    """Run the operator until SIGINT/SIGTERM (blocks)."""
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig  # kopf's own login reads it too
    kopf.configure(log_format=kopf.LogFormat.PLAIN)  # INFO and up on stderr
    kube = Kube(kubeconfig)
    try:
        kopf.run(
            registry=registry,
            settings=settings(),
            standalone=True,
            clusterwide=True,
            memo=Memo(kube=kube, image=image),
        )
    finally:
        kube.close()
