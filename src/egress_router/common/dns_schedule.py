"""When to look a destination name up again, and what its current addresses are.

Owns: the per-name state machine of the DNS proxy (addresses, next lookup time, failures),
the TTL floor/ceiling and the retry back-off. Pure: time is passed in, nothing sleeps.
Must not: perform lookups or change forwarding (the runtime does, from these decisions).

Rules, chosen for a production forwarder:
  * an answer with addresses is used until ``clamp(ttl, floor, ceiling)`` seconds later;
  * an answer that says the name has no IPv4 address (NXDOMAIN, NODATA) is believed: the
    port refuses connections and the name is retried with back-off, since the TTL of a
    negative answer is often long and an operator fixing DNS wants the port back quickly;
  * a failed lookup (timeout, SERVFAIL, no server reachable) keeps the last good addresses
    (a DNS outage must not cut traffic to a destination that has not moved) and retries with
    back-off: ``retry_base * 2**(failures-1)`` capped at ``retry_cap``;
  * addresses are kept in a canonical (sorted) order, so a reordered answer is "no change";
  * addresses that cannot be a TCP peer (0/8, 127/8, 224/4, 240/4) are dropped from answers,
    so a name pointed at loopback cannot turn the proxy towards the pod itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, replace

from egress_router.common.values import is_peer

RETRY_BASE_S = 1.0  # first retry after a failure
RETRY_CAP_S = 30.0  # never wait longer than this to retry a failing name


@dataclass(frozen=True)
class RefreshPolicy:
    """TTL bounds and back-off (seconds)."""

    ttl_min_s: float = 5.0
    ttl_max_s: float = 1800.0
    retry_base_s: float = RETRY_BASE_S
    retry_cap_s: float = RETRY_CAP_S

    def refresh_after(self, ttl: float) -> float:
        """Seconds until a successful answer with ``ttl`` must be checked again."""
        return min(max(float(ttl), self.ttl_min_s), self.ttl_max_s)

    def retry_after(self, failures: int) -> float:
        """Seconds before retry number ``failures`` (1 = the first failure)."""
        exponent = min(max(failures - 1, 0), 30)  # bound the power, not just the product
        return min(self.retry_base_s * (2.0**exponent), self.retry_cap_s)


@dataclass(frozen=True)
class NameState:
    """What we know about one name. ``addresses`` empty = its ports refuse connections."""

    name: str
    addresses: tuple[ipaddress.IPv4Address, ...] = ()
    next_lookup: float = 0.0
    failures: int = 0
    resolved_once: bool = False
    last_error: str | None = None


@dataclass(frozen=True)
class Outcome:
    """The new state, whether the usable addresses changed, and a log line (None = quiet)."""

    state: NameState
    changed: bool
    message: str | None


def canonical(addresses: Iterable[ipaddress.IPv4Address]) -> tuple[ipaddress.IPv4Address, ...]:
    return tuple(sorted({a for a in addresses if is_peer(a)}))


def _fmt(addresses: tuple[ipaddress.IPv4Address, ...]) -> str:
    return ", ".join(str(a) for a in addresses) or "none"


def on_answer(
    state: NameState,
    addresses: Iterable[ipaddress.IPv4Address],
    ttl: float,
    now: float,
    policy: RefreshPolicy,
) -> Outcome:
    """A lookup answered; ``addresses`` empty means the name has no A record."""
    new = canonical(addresses)
    changed = new != state.addresses
    if not new:
        failures = state.failures + 1
        nxt = replace(
            state,
            addresses=(),
            failures=failures,
            next_lookup=now + policy.retry_after(failures),
            last_error="no IPv4 address",
        )
        msg = None
        if changed or state.failures == 0:
            msg = f"{state.name} has no IPv4 address; its ports refuse connections, retrying"
        return Outcome(nxt, changed, msg)
    delay = policy.refresh_after(ttl)
    nxt = NameState(state.name, new, now + delay, 0, True, None)
    msg = None
    if changed:
        msg = f"{state.name} -> {_fmt(new)} (ttl {int(ttl)}s, next lookup in {delay:g}s)"
    elif state.failures:
        msg = f"{state.name} resolves again -> {_fmt(new)}"
    return Outcome(nxt, changed, msg)


def on_failure(state: NameState, reason: str, now: float, policy: RefreshPolicy) -> Outcome:
    """A lookup failed without an answer; keep what we had and retry with back-off."""
    failures = state.failures + 1
    delay = policy.retry_after(failures)
    nxt = replace(state, failures=failures, next_lookup=now + delay, last_error=reason)
    kept = f"keeping {_fmt(state.addresses)}" if state.addresses else "its ports refuse connections"
    msg = f"cannot resolve {state.name}: {reason}; {kept}; retry in {delay:g}s"
    return Outcome(nxt, False, msg)
