"""When to look a name up again, what its current addresses are, and how long they stay valid.

Owns: the one per-name state machine of every DNS follower: the dns-proxy mode's destination
names and the firewall's polled dnsName rules. Its transitions are an answer (``on_answer``),
a failed lookup (``on_failure``) and a lookup still running when the addresses are about to
lapse (``on_slow``); the TTL floor/ceiling, the retry back-off and the validity of the kept
addresses are the ``RefreshPolicy``. Pure: time is passed in, nothing sleeps, and a state's
clock never runs backwards (an earlier ``now`` than one already seen counts as that one).
Must not: perform lookups, write sets or change forwarding (the callers do, from these decisions).

Rules, chosen for production followers (each feature's documented timing is a policy):
  * an answer with addresses is used until ``clamp(ttl, floor, ceiling)`` seconds later, and
    its addresses stay valid ``grace`` past that (the firewall's set lifetime);
  * a failed lookup (timeout, SERVFAIL, no server reachable) keeps the last good addresses
    (a DNS outage must not cut traffic to a destination that has not moved), valid until the
    retry plus ``grace``, and retries with back-off: ``retry_base`` for the first
    ``retry_steady`` failures, then doubling, capped at ``retry_cap``;
  * a lookup that has not answered when the addresses have only ``grace/2`` left extends them
    by the whole lookup budget, so a slow resolver never lets known addresses lapse;
  * an answer that says the name has no address (NXDOMAIN, NODATA) is believed when
    ``believe_negative`` (the dns proxy: the port refuses connections and the name is retried
    with back-off, since the TTL of a negative answer is often long and an operator fixing DNS
    wants the port back quickly); otherwise it is a failure like any other (the firewall);
  * addresses are kept in a canonical (sorted) order, so a reordered answer is "no change";
  * with ``peers_only``, addresses that cannot be a TCP peer (0/8, 127/8, 224/4, 240/4) are
    dropped from answers, so a name pointed at loopback cannot turn the proxy towards the pod.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Generic, TypeVar

from egress_router.common.values import is_peer

RETRY_BASE_S = 1.0  # first retry after a failure
RETRY_CAP_S = 30.0  # never wait longer than this to retry a failing name
MAX_EXPONENT = 30  # bound the power of the back-off, not just the product

Addr = TypeVar("Addr", bound=ipaddress.IPv4Address | ipaddress.IPv6Address)
NEVER = float("-inf")


@dataclass(frozen=True)
class RefreshPolicy:
    """TTL bounds, back-off and validity (seconds); the defaults are the dns proxy's."""

    ttl_min_s: float = 5.0  # an answer is not asked again sooner (a zero TTL must not flood)
    ttl_max_s: float = 1800.0  # ... and not later, whatever its TTL
    retry_base_s: float = RETRY_BASE_S  # the delay after a failure
    retry_cap_s: float = RETRY_CAP_S  # the longest delay after failures
    retry_steady: int = 1  # failures retried after retry_base_s before the delays double
    grace_s: float = 0.0  # addresses stay valid this long past their next lookup
    believe_negative: bool = True  # NXDOMAIN/NODATA clears the addresses (False: a failure)
    peers_only: bool = True  # drop addresses that cannot be a TCP peer

    def refresh_after(self, ttl: float) -> float:
        """Seconds until a successful answer with ``ttl`` must be checked again."""
        return min(max(float(ttl), self.ttl_min_s), self.ttl_max_s)

    def lifetime(self, ttl: float) -> float:
        """How long an address answered with ``ttl`` stays valid: its refresh plus grace."""
        return self.refresh_after(ttl) + self.grace_s

    def retry_after(self, failures: int) -> float:
        """Seconds before retry number ``failures`` (1 = the first failure)."""
        exponent = min(max(failures - self.retry_steady, 0), MAX_EXPONENT)
        return min(self.retry_base_s * (2.0**exponent), self.retry_cap_s)

    @property
    def slow_after(self) -> float:
        """Seconds a lookup may run before the kept addresses are extended (``on_slow``)."""
        return self.grace_s / 2

    @property
    def longest_wait(self) -> float:
        """No next lookup is ever further away than this."""
        return max(self.ttl_max_s, self.retry_cap_s)


class Event(StrEnum):
    """What a transition recorded."""

    ANSWER = "answer"  # addresses (maybe the same as before)
    NEGATIVE = "negative"  # the name has no address, believed: none kept
    FAILURE = "failure"  # no usable answer: the last good addresses kept
    SLOW = "slow"  # the lookup is still running: the kept addresses extended


@dataclass(frozen=True)
class NameState(Generic[Addr]):
    """What we know about one name. ``addresses`` empty = none to use (the dns proxy's ports
    refuse connections; the firewall's sets get nothing new)."""

    name: str
    addresses: tuple[Addr, ...] = ()
    next_lookup: float = 0.0
    failures: int = 0
    resolved_once: bool = False
    last_error: str | None = None
    valid_until: float = NEVER  # the addresses are good until then
    seen: float = NEVER  # the latest time a transition was given: the state's clock

    def kept(self, now: float) -> list[tuple[Addr, float]]:
        """The addresses with the seconds each stays valid from ``now`` (the set lifetimes)."""
        left = self.valid_until - max(now, self.seen)
        return [(a, left) for a in self.addresses] if left > 0 else []


@dataclass(frozen=True)
class Outcome(Generic[Addr]):
    """The new state, whether the usable addresses changed, and a log line (None = quiet).

    ``message`` is worded for the dns proxy; other callers word theirs from ``event`` and
    ``previous_failures`` (the failures before this transition).
    """

    state: NameState[Addr]
    changed: bool
    message: str | None
    event: Event
    previous_failures: int = 0


def _usable(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv4Address):
        return is_peer(address)
    return not (address.is_loopback or address.is_unspecified or address.is_multicast)


def canonical(addresses: Iterable[Addr], peers_only: bool = True) -> tuple[Addr, ...]:
    """The distinct addresses in a fixed order (IPv4 first), unusable ones dropped."""
    kept = {a for a in addresses if not peers_only or _usable(a)}
    return tuple(sorted(kept, key=lambda a: (a.version, int(a))))


def _fmt(addresses: tuple[Addr, ...]) -> str:
    return ", ".join(str(a) for a in addresses) or "none"


def on_answer(
    state: NameState[Addr],
    addresses: Iterable[Addr],
    ttl: float,
    now: float,
    policy: RefreshPolicy,
    note: str = "no address",
) -> Outcome[Addr]:
    """A lookup answered; ``addresses`` empty means the name has none (``note`` says why)."""
    now = max(now, state.seen)
    new = canonical(addresses, policy.peers_only)
    if not new and not policy.believe_negative:
        return on_failure(state, note, now, policy)
    changed = new != state.addresses
    if not new:
        failures = state.failures + 1
        nxt = replace(
            state,
            addresses=(),
            failures=failures,
            next_lookup=now + policy.retry_after(failures),
            last_error="no IPv4 address",
            valid_until=NEVER,
            seen=now,
        )
        msg = None
        if changed or state.failures == 0:
            msg = f"{state.name} has no IPv4 address; its ports refuse connections, retrying"
        return Outcome(nxt, changed, msg, Event.NEGATIVE, state.failures)
    delay = policy.refresh_after(ttl)
    nxt = NameState(state.name, new, now + delay, 0, True, None, now + delay + policy.grace_s, now)
    msg = None
    if changed:
        msg = f"{state.name} -> {_fmt(new)} (ttl {int(ttl)}s, next lookup in {delay:g}s)"
    elif state.failures:
        msg = f"{state.name} resolves again -> {_fmt(new)}"
    return Outcome(nxt, changed, msg, Event.ANSWER, state.failures)


def on_failure(
    state: NameState[Addr], reason: str, now: float, policy: RefreshPolicy
) -> Outcome[Addr]:
    """A lookup failed without an answer; keep what we had and retry with back-off."""
    now = max(now, state.seen)
    failures = state.failures + 1
    delay = policy.retry_after(failures)
    valid = state.valid_until
    if state.addresses:  # kept: valid until the retry has had its chance, plus grace
        valid = max(valid, now + delay + policy.grace_s)
    nxt = replace(
        state,
        failures=failures,
        next_lookup=now + delay,
        last_error=reason,
        valid_until=valid,
        seen=now,
    )
    kept = f"keeping {_fmt(state.addresses)}" if state.addresses else "its ports refuse connections"
    msg = f"cannot resolve {state.name}: {reason}; {kept}; retry in {delay:g}s"
    return Outcome(nxt, False, msg, Event.FAILURE, state.failures)


def on_slow(
    state: NameState[Addr], now: float, budget: float, policy: RefreshPolicy
) -> Outcome[Addr]:
    """A lookup has run ``policy.slow_after`` without an answer; it may take ``budget`` more
    seconds: the kept addresses stay valid until then, plus grace."""
    now = max(now, state.seen)
    valid = state.valid_until
    if state.addresses:
        valid = max(valid, now + max(budget, 0.0) + policy.grace_s)
    nxt = replace(state, valid_until=valid, seen=now)
    return Outcome(nxt, False, None, Event.SLOW, state.failures)
