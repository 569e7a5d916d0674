"""The Kubernetes Lease backend of failover (coordination.k8s.io/v1, via ``egress_router.kube``).

Owns: mapping a Lease to the failover ``LeaseRecord`` (holder = spec.holderIdentity, version =
metadata.resourceVersion, token = the ``egress-router.openshift.io/incarnation`` annotation)
and the compare-and-swap write (a replace carrying the version read is refused with 409
Conflict when another instance wrote first).
Must not: import the ``kubernetes`` library itself (``egress_router.kube`` does).
"""

from __future__ import annotations

from egress_router.errors import DataplaneError
from egress_router.failover.model.machine import LeaseRecord
from egress_router.failover.store import release_by_token
from egress_router.kube.client import Kube, KubeError, Lease


class KubeLeaseStore:
    """The lease as a coordination.k8s.io/v1 Lease (its holderIdentity is the active)."""

    def __init__(self, kube: Kube, namespace: str, name: str, duration_s: float) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.duration_s = duration_s
        self.last: tuple[str, str] | None = None  # (holder, version) of our own last write
        self.seen: Lease | None = None  # the Lease last read (its transitions count)

    def read(self) -> LeaseRecord | None:
        try:
            lease = self.kube.read_lease(self.namespace, self.name)
        except KubeError as exc:
            raise DataplaneError(str(exc)) from exc
        self.seen = lease
        if lease is None:
            return None
        return LeaseRecord(holder=lease.holder, version=lease.version, token=lease.token)

    def write(self, expected: str, holder: str, token: str = "") -> str | None:
        """A renewal of our own last write is one conditional patch; a write at the version
        just read (taking, releasing) is one conditional replace; anything else reads first."""
        seen = self.seen if self.seen is not None and self.seen.version == expected else None
        try:
            if holder and self.last == (holder, expected):
                version = self.kube.renew_lease(self.namespace, self.name, holder, expected)
            else:
                version = self.kube.write_lease(
                    self.namespace, self.name, holder, expected, self.duration_s, token, seen
                )
        except KubeError as exc:
            raise DataplaneError(str(exc)) from exc
        self.last = (holder, version) if version is not None else None
        return version

    def release(self, token: str) -> bool:
        return release_by_token(self, token)
