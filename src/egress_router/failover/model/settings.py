"""The failover variables (EGRESS_ROUTER_FAILOVER and friends) parsed into typed settings.

Owns: the grammar of every failover variable, its unit and default, and the timing invariant
that makes fencing safe, checked here so a bad combination is refused before anything runs.
Must not: read the environment itself or do I/O (the setup command passes the variables in).

The timing argument (why two instances never hold the reserved address at once):

* The active sends each lease renewal at monotonic time ``s`` (before the write reaches the
  store). If the renewal succeeds it may hold the address until ``s + renew_deadline``; when
  that passes without a newer successful renewal, the instance (or, if the process is frozen
  or dead, its guard process) deletes the address and its rules, which takes at most
  ``withdraw_budget``. So the address is gone by ``s + renew_deadline + withdraw_budget``.
* A standby may take the lease only after it has seen the same lease record, unchanged, for
  ``lease_duration`` on its own clock. It can only see the record after it was written, i.e.
  after ``s``, so it takes over no earlier than ``s + lease_duration``.
* Hence ``lease_duration > renew_deadline + withdraw_budget`` means the old holder has dropped
  the address before the new one can even win the lease. The lease write is a
  compare-and-swap (a version), so two candidates cannot both win one expiry.
  Only elapsed times are compared (no wall clocks), so clock offsets between nodes do not
  matter, only clock rates, which ``CLOCK_SKEW_MARGIN`` covers.

A released lease (holder empty: written by the guard after it withdrew a dead instance's
address) may be taken at once; heartbeats only make detection fast and never make it unsafe.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from egress_router.errors import VariableError

CLOCK_SKEW_MARGIN = 0.05  # seconds of slack for clock rate differences over one lease
HEARTBEAT_PORT = 7946  # UDP, on the cluster-side interface
MAX_PEERS = 16  # heartbeats are sent to every peer each interval; a bounded fan-out
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?\Z")
_DURATION = re.compile(r"([0-9]{1,6})(ms|s)\Z")


class Backend(StrEnum):
    LEASE = "lease"  # a coordination.k8s.io/v1 Lease on the API server
    FILE = "file"  # a lease record in a local file (the lab, without Kubernetes)


@dataclass(frozen=True)
class Timing:
    """Every interval of the failover loop, in seconds (defaults give sub-second takeover)."""

    heartbeat_interval: float = 0.05  # a heartbeat to every peer this often
    heartbeat_timeout: float = 0.15  # no heartbeat from the active this long: it is lost
    renew_interval: float = 0.1  # the active renews the lease this often
    renew_deadline: float = 0.5  # no successful renewal this long: withdraw the address
    # the longest a withdrawal of the address may take; measured up to 0.2 s on a loaded
    # 2-core machine (docs/failover.md), so half as much again
    withdraw_budget: float = 0.3
    lease_duration: float = 0.9  # a record unchanged this long is expired for a standby

    def check(self) -> None:
        """Refuse combinations that would break fencing or detection (VariableError)."""
        if self.lease_duration <= self.renew_deadline + self.withdraw_budget + CLOCK_SKEW_MARGIN:
            raise VariableError(
                "EGRESS_ROUTER_LEASE_DURATION",
                f"must exceed renew deadline + withdraw budget + {CLOCK_SKEW_MARGIN}s "
                f"({self.renew_deadline + self.withdraw_budget + CLOCK_SKEW_MARGIN:.3f}s)",
            )
        if self.renew_deadline < 2 * self.renew_interval:
            raise VariableError(
                "EGRESS_ROUTER_RENEW_DEADLINE", "must be at least twice the renew interval"
            )
        if self.heartbeat_timeout < 2 * self.heartbeat_interval:
            raise VariableError(
                "EGRESS_ROUTER_HEARTBEAT_TIMEOUT", "must be at least twice the heartbeat interval"
            )


# An API server round trip (a loaded one, behind the pod network) takes far longer than a file
# write: the Lease backend's defaults give a renewal (and a takeover) a second.
LEASE_TIMING = Timing(renew_deadline=1.0, lease_duration=1.4)


@dataclass(frozen=True)
class FailoverSettings:
    """What the failover variables say; ``None`` from ``parse`` when failover is off."""

    backend: Backend
    identity: str  # this instance's name in the lease (default: the host name)
    lease_name: str
    lease_namespace: str  # lease backend only
    lease_file: str  # file backend only
    peers: tuple[ipaddress.IPv4Address, ...]  # where heartbeats go
    heartbeat_port: int
    timing: Timing


def _duration(variables: Mapping[str, str], name: str, default: float) -> float:
    text = variables.get(name, "").strip()
    if not text:
        return default
    match = _DURATION.match(text)
    if match is None:
        raise VariableError(name, f"expected a duration such as 300ms or 2s, got {text!r}")
    value = int(match.group(1)) / (1000.0 if match.group(2) == "ms" else 1.0)
    if not 0.01 <= value <= 60.0:
        raise VariableError(name, "must be between 10ms and 60s")
    return value


def _peers(text: str) -> tuple[ipaddress.IPv4Address, ...]:
    peers: list[ipaddress.IPv4Address] = []
    for item in text.replace(",", " ").split():
        try:
            address = ipaddress.ip_address(item)
        except ValueError:
            raise VariableError("EGRESS_ROUTER_PEERS", f"{item!r} is not an IP address") from None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # normalise before deciding
        if not isinstance(address, ipaddress.IPv4Address):
            raise VariableError("EGRESS_ROUTER_PEERS", f"{item} is not an IPv4 address")
        if address in peers:
            raise VariableError("EGRESS_ROUTER_PEERS", f"{item} is listed twice")
        peers.append(address)
    if len(peers) > MAX_PEERS:
        raise VariableError("EGRESS_ROUTER_PEERS", f"at most {MAX_PEERS} peers")
    return tuple(peers)


def _name(variables: Mapping[str, str], name: str, default: str) -> str:
    value = variables.get(name, "").strip() or default
    if not _NAME.match(value):
        raise VariableError(name, f"expected a DNS-1123 name, got {value!r}")
    return value


def parse(variables: Mapping[str, str], hostname: str) -> FailoverSettings | None:
    """The failover settings, or ``None`` when EGRESS_ROUTER_FAILOVER is unset or empty."""
    text = variables.get("EGRESS_ROUTER_FAILOVER", "").strip()
    if not text:
        return None
    try:
        backend = Backend(text)
    except ValueError:
        raise VariableError("EGRESS_ROUTER_FAILOVER", "expected lease or file") from None
    lease_file = variables.get("EGRESS_ROUTER_LEASE_FILE", "").strip()
    if backend is Backend.FILE and not lease_file.startswith("/"):
        raise VariableError("EGRESS_ROUTER_LEASE_FILE", "the file backend needs an absolute path")
    port_text = variables.get("EGRESS_ROUTER_HEARTBEAT_PORT", "").strip() or str(HEARTBEAT_PORT)
    if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
        raise VariableError("EGRESS_ROUTER_HEARTBEAT_PORT", "expected a port 1-65535")
    base = Timing() if backend is Backend.FILE else LEASE_TIMING
    timing = Timing(
        heartbeat_interval=_duration(
            variables, "EGRESS_ROUTER_HEARTBEAT_INTERVAL", base.heartbeat_interval
        ),
        heartbeat_timeout=_duration(
            variables, "EGRESS_ROUTER_HEARTBEAT_TIMEOUT", base.heartbeat_timeout
        ),
        renew_interval=_duration(variables, "EGRESS_ROUTER_RENEW_INTERVAL", base.renew_interval),
        renew_deadline=_duration(variables, "EGRESS_ROUTER_RENEW_DEADLINE", base.renew_deadline),
        withdraw_budget=_duration(variables, "EGRESS_ROUTER_WITHDRAW_BUDGET", base.withdraw_budget),
        lease_duration=_duration(variables, "EGRESS_ROUTER_LEASE_DURATION", base.lease_duration),
    )
    timing.check()
    return FailoverSettings(
        backend=backend,
        identity=_name(variables, "EGRESS_ROUTER_IDENTITY", hostname.lower()[:63] or "router"),
        lease_name=_name(variables, "EGRESS_ROUTER_LEASE_NAME", "egress-router"),
        lease_namespace=_name(variables, "EGRESS_ROUTER_LEASE_NAMESPACE", "default"),
        lease_file=lease_file,
        peers=_peers(variables.get("EGRESS_ROUTER_PEERS", "")),
        heartbeat_port=int(port_text),
        timing=timing,
    )
