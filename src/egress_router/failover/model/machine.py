"""The failover role state machine: standby or active, and when to change.

Owns: every decision of the failover loop — when the active must withdraw (its renew deadline
passed, or a renewal came back after it), when a renewal is due, when a standby reads the lease,
when it may try to take it (the lease is released — its holder, or that holder's guard, wrote
so after withdrawing the address — or the active's heartbeat is lost AND the record has stayed
unchanged for the lease duration on this instance's clock), and the record of the last
transition.
Must not: do I/O or read a clock. Times are monotonic seconds passed in; the loop performs the
lease reads and writes, the address changes and the heartbeats, and reports the outcome back.
The timing invariant that makes this safe is explained and enforced in ``settings``.

Order within one step matters: a deadline that passed (e.g. while the process was frozen) is
acted on first, before any renewal, so a resumed instance never renews its way back into
holding an address that a standby may already hold.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from egress_router.failover.model.settings import Timing


class Role(StrEnum):
    STANDBY = "standby"
    ACTIVE = "active"


class Action(StrEnum):
    NOTHING = "nothing"
    WITHDRAW = "withdraw"  # delete the address and rules now (the deadline passed)
    RENEW = "renew"  # write the lease record again (compare-and-swap on its version)
    ACQUIRE = "acquire"  # write ourselves as holder (compare-and-swap), then take the address


@dataclass(frozen=True)
class LeaseRecord:
    """The lease as read: its holder ("" when released), an opaque version, and the token of
    the holder's incarnation (one run of one instance: a restarted instance has a new one, so
    the guard of a dead run releases that run's record only, whatever version it is at)."""

    holder: str
    version: str
    token: str = ""


@dataclass(frozen=True)
class State:
    identity: str
    role: Role = Role.STANDBY
    valid_until: float = 0.0  # active: the address may be held until then (monotonic)
    last_renew_sent: float = 0.0
    seen_version: str | None = None  # standby: the last lease version seen ...
    seen_at: float = 0.0  # ... and when it was first seen (own clock)
    seen_holder: str = ""
    heartbeat_at: float | None = None  # when an active peer's heartbeat was last heard
    read_at: float | None = None  # standby: when the lease was last read
    transitions: int = 0
    last_transition: str = "started as standby"


def heard(state: State, now: float) -> State:
    """A heartbeat from a peer that says it is active arrived."""
    return replace(state, heartbeat_at=now)


def observe(state: State, record: LeaseRecord | None, now: float) -> State:
    """A standby read the lease: a new version restarts its expiry clock. ``now`` is when the
    answer arrived, never when the read was sent (the record may be younger than the read)."""
    if record is None:
        return replace(state, seen_version="", seen_holder="", seen_at=now, read_at=now)
    if record.version != state.seen_version:
        return replace(
            state, seen_version=record.version, seen_holder=record.holder, seen_at=now, read_at=now
        )
    return replace(state, read_at=now)


def read_due(state: State, now: float, timing: Timing) -> bool:
    """A standby reads the lease every step once the active's heartbeat is lost, else every
    renew interval (to see a release early without loading the API server for nothing). A
    later read only makes the expiry clock start later: never unsafe."""
    if state.read_at is None or heartbeat_lost(state, now, timing):
        return True
    return now - state.read_at >= timing.renew_interval


def heartbeat_lost(state: State, now: float, timing: Timing) -> bool:
    return state.heartbeat_at is None or now - state.heartbeat_at >= timing.heartbeat_timeout


def lease_released(state: State) -> bool:
    """Released or missing: nobody holds the address (a release is written only after the
    withdrawal), so it may be taken at once, whatever heartbeats say."""
    return state.seen_version is not None and state.seen_holder == ""


def lease_expired(state: State, now: float, timing: Timing) -> bool:
    """Unchanged for a whole lease duration since this instance first saw that version."""
    if state.seen_version is None:
        return False  # never read: nothing is known
    return now - state.seen_at >= timing.lease_duration


def decide(state: State, now: float, timing: Timing) -> Action:
    """What the loop must do next; deadlines first."""
    if state.role is Role.ACTIVE:
        if now >= state.valid_until:
            return Action.WITHDRAW
        if now - state.last_renew_sent >= timing.renew_interval:
            return Action.RENEW
        return Action.NOTHING
    if lease_released(state):
        return Action.ACQUIRE
    if heartbeat_lost(state, now, timing) and lease_expired(state, now, timing):
        return Action.ACQUIRE
    return Action.NOTHING


def _to(state: State, role: Role, why: str, **changes: object) -> State:
    return replace(
        state,
        role=role,
        transitions=state.transitions + 1,
        last_transition=f"{state.role.value} -> {role.value}: {why}",
        **changes,  # type: ignore[arg-type]
    )


def withdrawn(state: State, why: str) -> State:
    """The address is gone: back to standby; the lease must be seen anew before any takeover."""
    if state.role is Role.STANDBY:
        return state
    return _to(
        state, Role.STANDBY, why, valid_until=0.0, seen_version=None, seen_holder="", read_at=None
    )


def renewal_too_late(state: State, received_at: float) -> bool:
    """A renewal answered at or after the deadline it was meant to extend: the guard (and the
    kernel's switch) have already silenced the address, so the instance must withdraw rather
    than go on as an active without an address."""
    return received_at >= state.valid_until


def renewed(state: State, sent_at: float, timing: Timing) -> State:
    """A renewal sent at ``sent_at`` succeeded: hold the address until ``sent_at + deadline``."""
    return replace(state, valid_until=sent_at + timing.renew_deadline, last_renew_sent=sent_at)


def renew_failed(state: State, sent_at: float) -> State:
    """A renewal failed (unreachable store): try again next interval; the deadline stands."""
    return replace(state, last_renew_sent=sent_at)


def acquired(state: State, sent_at: float, timing: Timing, why: str) -> State:
    """The lease write sent at ``sent_at`` won: active until ``sent_at + renew deadline``."""
    return _to(
        state,
        Role.ACTIVE,
        why,
        valid_until=sent_at + timing.renew_deadline,
        last_renew_sent=sent_at,
    )


def acquire_failed(state: State, now: float) -> State:
    """Another instance won the write: its record is new, so restart the expiry clock."""
    return replace(state, seen_version=None, seen_holder="", seen_at=now, read_at=None)


def takeover_reason(state: State, now: float) -> str:
    if state.seen_holder == "":
        return "lease released"
    return f"heartbeat lost and lease of {state.seen_holder} expired"


def status_line(state: State, since: str) -> str:
    """The one-line status printed on every transition (``since``: its wall-clock time)."""
    return (
        f"failover: {state.identity} is {state.role.value} since {since} "
        f"(transition {state.transitions}: {state.last_transition})"
    )
