"""The Kubernetes Lease backend of failover (coordination.k8s.io/v1, via ``egress_router.kube``).

Owns: mapping a Lease to the failover ``LeaseRecord`` (holder = spec.holderIdentity, version =
metadata.resourceVersion) and the compare-and-swap write (a replace carrying the version read
is refused with 409 Conflict when another instance wrote first).
Must not: import the ``kubernetes`` library itself (``egress_router.kube`` does).
"""

from __future__ import annotations

from egress_router.errors import DataplaneError
from egress_router.failover.model.machine import LeaseRecord
from egress_router.kube.client import Kube, KubeError


class KubeLeaseStore:
    """The lease as a coordination.k8s.io/v1 Lease (its holderIdentity is the active)."""

    def __init__(self, kube: Kube, namespace: str, name: str, duration_s: float) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.duration_s = duration_s
        self.last: tuple[str, str] | None = None  # (holder, version) of our own last write

    def read(self) -> LeaseRecord | None:
        try:
            lease = self.kube.read_lease(self.namespace, self.name)
        except KubeError as exc:
            raise DataplaneError(str(exc)) from exc
        if lease is None:
            return None
        return LeaseRecord(holder=lease.holder, version=lease.version)

    def write(self, expected: str, holder: str) -> str | None:
        """A renewal of our own last write is one conditional patch; anything else (taking,
        releasing) reads the Lease first to count its transitions."""
        try:
            if holder and self.last == (holder, expected):
                version = self.kube.renew_lease(self.namespace, self.name, holder, expected)
            else:
                version = self.kube.write_lease(
                    self.namespace, self.name, holder, expected, self.duration_s
                )
        except KubeError as exc:
            raise DataplaneError(str(exc)) from exc
        self.last = (holder, version) if version is not None else None
        return version
