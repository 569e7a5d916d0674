"""The one adapter to the Kubernetes API (the ``kubernetes`` client library).

Owns: logging in (a kubeconfig file, else the pod's service account), server-side apply of an
object, reading one, deleting one, patching (or server-side applying, per field manager) a
custom resource's status subresource, and posting a core/v1 Event about an object once by name
(watching is in ``kube.watch``); every
library error wrapped into ``KubeError`` with the HTTP status and the API server's message.
Must not: decide anything (the operator's model does) or be imported by a pure ``model``.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError
from urllib3.exceptions import HTTPError

from egress_router.errors import EgressRouterError

FIELD_MANAGER = "egress-router-operator"
STATUS_TIMEOUT = (5.0, 15.0)  # s: connect, read; a status write never hangs its caller for long
LEASE_TIMEOUT_S = 1.0  # a Lease call that takes longer is useless to failover: fail it


class KubeError(EgressRouterError):
    """The API server refused a request (``status`` is its HTTP status, 0 if unreachable)."""

    def __init__(self, message: str, status: int = 0) -> None:
        self.status = status
        super().__init__(message)


def _wrap(action: str, exc: Exception) -> KubeError:
    status = int(getattr(exc, "status", 0) or 0)
    body = getattr(exc, "body", None)
    message = str(exc)
    if body:
        try:
            message = str(json.loads(body).get("message", message))
        except (ValueError, AttributeError):
            message = str(body)[:300]
    return KubeError(f"{action}: {message}", status)


@dataclass(frozen=True)
class Lease:
    """A coordination.k8s.io/v1 Lease as failover reads it."""

    holder: str  # spec.holderIdentity, "" when released
    version: str  # metadata.resourceVersion
    transitions: int  # spec.leaseTransitions


def _lease_body(
    namespace: str, name: str, holder: str, version: str, duration_s: float, transitions: int
) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if version:
        metadata["resourceVersion"] = version
    spec: dict[str, Any] = {
        "holderIdentity": holder,
        # The field counts whole seconds; the instances use their own (sub-second) setting.
        "leaseDurationSeconds": max(1, math.ceil(duration_s)),
        "renewTime": now,
        "leaseTransitions": transitions,
    }
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": spec,
    }


class Kube:
    """A logged-in client; ``kubeconfig`` None means in-cluster, then ``~/.kube/config``."""

    def __init__(self, kubeconfig: str | None = None) -> None:
        try:
            if kubeconfig:
                self.api = config.new_client_from_config(config_file=kubeconfig)
            else:
                try:
                    config.load_incluster_config()
                except config.ConfigException:
                    config.load_kube_config()
                self.api = client.ApiClient()
        except (config.ConfigException, OSError) as exc:
            raise KubeError(f"cannot log in to the API server: {exc}") from exc
        self._dynamic: DynamicClient | None = None

    @property
    def dynamic(self) -> DynamicClient:
        if self._dynamic is None:
            try:
                self._dynamic = DynamicClient(self.api)
            except (ApiException, DynamicApiError, OSError) as exc:
                raise _wrap("API discovery", exc) from exc
        return self._dynamic

    def _resource(self, api_version: str, kind: str) -> Any:
        try:
            return self.dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError as exc:
            raise KubeError(f"the API server does not serve {kind} {api_version}", 404) from exc

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply ``obj`` (our field manager, conflicts forced); the stored object."""
        meta = obj["metadata"]
        what = f"apply {obj['kind']} {meta.get('namespace', '')}/{meta['name']}"
        resource = self._resource(obj["apiVersion"], obj["kind"])
        try:
            stored = resource.server_side_apply(
                body=dict(obj),
                name=meta["name"],
                namespace=meta.get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
        except (ApiException, DynamicApiError, OSError) as exc:
            raise _wrap(what, exc) from exc
        return dict(stored.to_dict())

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One object, or ``None`` when it does not exist."""
        resource = self._resource(api_version, kind)
        try:
            return dict(resource.get(name=name, namespace=namespace).to_dict())
        except (ApiException, DynamicApiError) as exc:
            if getattr(exc, "status", 0) == 404:
                return None
            raise _wrap(f"get {kind} {namespace}/{name}", exc) from exc
        except OSError as exc:
            raise _wrap(f"get {kind} {namespace}/{name}", exc) from exc

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete one object; ``False`` when it was already gone."""
        resource = self._resource(api_version, kind)
        try:
            resource.delete(name=name, namespace=namespace)
        except (ApiException, DynamicApiError) as exc:
            if getattr(exc, "status", 0) == 404:
                return False
            raise _wrap(f"delete {kind} {namespace}/{name}", exc) from exc
        except OSError as exc:
            raise _wrap(f"delete {kind} {namespace}/{name}", exc) from exc
        return True

    def patch_status(
        self, api_version: str, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        """Merge-patch the status subresource of a namespaced custom resource."""
        group, _, version = api_version.partition("/")
        api = client.CustomObjectsApi(self.api)
        try:
            api.patch_namespaced_custom_object_status(
                group, version, namespace, plural, name, {"status": dict(status)}
            )
        except (ApiException, OSError) as exc:
            raise _wrap(f"update the status of {plural} {namespace}/{name}", exc) from exc

    def apply_status(
        self,
        api_version: str,
        kind: str,
        plural: str,
        namespace: str,
        name: str,
        status: Mapping[str, Any],
        field_manager: str,
    ) -> None:
        """Server-side apply of fields of a custom resource's status as ``field_manager``.

        Each manager owns only what it applies: in a ``set`` list (as ``status.messages``)
        every node keeps its own entry, and an entry it no longer applies is removed.
        """
        group, _, version = api_version.partition("/")
        api = client.CustomObjectsApi(self.api)
        body = {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
            "status": dict(status),
        }
        try:
            api.patch_namespaced_custom_object_status(
                group,
                version,
                namespace,
                plural,
                name,
                body,
                field_manager=field_manager,
                force=True,
                _content_type="application/apply-patch+yaml",
                _request_timeout=STATUS_TIMEOUT,
            )
        except (ApiException, HTTPError, OSError) as exc:
            raise _wrap(f"update the status of {plural} {namespace}/{name}", exc) from exc

    def post_event(
        self,
        involved: Mapping[str, str],
        name: str,
        reason: str,
        message: str,
        component: str,
        host: str,
    ) -> bool:
        """Create the Warning Event ``name`` about ``involved`` (its apiVersion, kind,
        namespace, name, uid); ``False`` when an Event of that name already exists.

        One create, never a read or an update: an Event's name says which problem it reports,
        so a second post of the same problem is the API server's 409 and costs nothing more.
        """
        namespace = involved["namespace"]
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": dict(involved),
            "type": "Warning",
            "reason": reason,
            "message": message,
            "source": {"component": component, "host": host},
            "reportingComponent": component,
            "reportingInstance": host,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            client.CoreV1Api(self.api).create_namespaced_event(
                namespace, body, _preload_content=False, _request_timeout=STATUS_TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise _wrap(f"post an event on {involved['kind']} {namespace}", exc) from exc
        except (HTTPError, OSError) as exc:
            raise _wrap(f"post an event on {involved['kind']} {namespace}", exc) from exc
        return True

    def read_lease(self, namespace: str, name: str) -> Lease | None:
        """The Lease ``namespace/name``, or ``None`` when there is none."""
        api = client.CoordinationV1Api(self.api)
        try:
            raw = api.read_namespaced_lease(
                name, namespace, _preload_content=False, _request_timeout=LEASE_TIMEOUT_S
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _wrap(f"read Lease {namespace}/{name}", exc) from exc
        except OSError as exc:
            raise _wrap(f"read Lease {namespace}/{name}", exc) from exc
        data = json.loads(raw.data)
        spec = data.get("spec") or {}
        return Lease(
            holder=str(spec.get("holderIdentity") or ""),
            version=str(data["metadata"]["resourceVersion"]),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def renew_lease(self, namespace: str, name: str, holder: str, expected: str) -> str | None:
        """Renew in one request: a merge patch carrying ``expected`` as resourceVersion (the
        API server applies it only if the Lease is still at that version); the new version,
        or ``None`` on 409 Conflict."""
        api = client.CoordinationV1Api(self.api)
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {
            "metadata": {"resourceVersion": expected},
            "spec": {"holderIdentity": holder, "renewTime": now},
        }
        try:
            raw = api.patch_namespaced_lease(
                name, namespace, body, _preload_content=False, _request_timeout=LEASE_TIMEOUT_S
            )
        except ApiException as exc:
            if exc.status == 409:
                return None
            raise _wrap(f"renew Lease {namespace}/{name}", exc) from exc
        except OSError as exc:
            raise _wrap(f"renew Lease {namespace}/{name}", exc) from exc
        return str(json.loads(raw.data)["metadata"]["resourceVersion"])

    def write_lease(
        self, namespace: str, name: str, holder: str, expected: str, duration_s: float
    ) -> str | None:
        """Set the holder if the Lease is still at ``expected`` ("" = create it); the new
        resourceVersion, or ``None`` on a lost race (409 Conflict, or it already exists)."""
        api = client.CoordinationV1Api(self.api)
        try:
            if not expected:
                body = _lease_body(namespace, name, holder, "", duration_s, 0)
                raw = api.create_namespaced_lease(
                    namespace, body, _preload_content=False, _request_timeout=LEASE_TIMEOUT_S
                )
                return str(json.loads(raw.data)["metadata"]["resourceVersion"])
            current = self.read_lease(namespace, name)
            if current is None or current.version != expected:
                return None
            moved = int(current.holder != holder and holder != "")
            body = _lease_body(
                namespace, name, holder, expected, duration_s, current.transitions + moved
            )
            raw = api.replace_namespaced_lease(
                name, namespace, body, _preload_content=False, _request_timeout=LEASE_TIMEOUT_S
            )
            return str(json.loads(raw.data)["metadata"]["resourceVersion"])
        except ApiException as exc:
            if exc.status == 409:
                return None
            raise _wrap(f"write Lease {namespace}/{name}", exc) from exc
        except OSError as exc:
            raise _wrap(f"write Lease {namespace}/{name}", exc) from exc

    def close(self) -> None:
        self.api.close()
