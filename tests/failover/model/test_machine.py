"""The failover state machine: a truth table of decisions, and a simulation (hypothesis) that
two instances never hold the address at once, whatever the scheduling, freezes, crashes and
heartbeats, as long as the timing invariant of ``settings`` holds."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress_router.failover.model import machine
from egress_router.failover.model.machine import Action, LeaseRecord, Role, State
from egress_router.failover.model.settings import Timing

T = Timing()  # heartbeat 0.05/0.15, renew 0.1/0.5, withdraw 0.3, lease 0.9


def active(valid_until: float, last_renew: float = 0.0) -> State:
    return State("a", role=Role.ACTIVE, valid_until=valid_until, last_renew_sent=last_renew)


def standby(
    seen: str | None = "1", seen_at: float = 0.0, holder: str = "b", hb: float | None = None
) -> State:
    return State("a", seen_version=seen, seen_at=seen_at, seen_holder=holder, heartbeat_at=hb)


@pytest.mark.parametrize(
    ("state", "now", "expected"),
    [
        # active: the deadline first, then renewals
        (active(valid_until=1.0), 1.0, Action.WITHDRAW),
        (active(valid_until=1.0), 5.0, Action.WITHDRAW),  # resumed after a freeze
        (active(valid_until=1.0, last_renew=0.95), 0.99, Action.NOTHING),
        (active(valid_until=1.0, last_renew=0.75), 0.9, Action.RENEW),
        # standby: lease never read -> nothing
        (standby(seen=None), 10.0, Action.NOTHING),
        # standby: heartbeat heard recently -> nothing, even with the lease expired
        (standby(seen_at=0.0, hb=9.9), 10.0, Action.NOTHING),
        # standby: lease released (written only after the withdrawal) -> acquire at once,
        # whatever the heartbeats say
        (standby(holder="", hb=9.9), 10.0, Action.ACQUIRE),
        # standby: heartbeat lost, lease unchanged less than the lease duration -> nothing
        (standby(seen_at=9.5, hb=9.0), 10.0, Action.NOTHING),
        # standby: heartbeat lost and lease expired -> acquire
        (standby(seen_at=9.1, hb=9.0), 10.0, Action.ACQUIRE),
        (standby(seen_at=9.1, hb=None), 10.0, Action.ACQUIRE),
        # standby: heartbeat lost and lease released (or missing) -> acquire at once
        (standby(holder="", seen_at=10.0, hb=9.0), 10.0, Action.ACQUIRE),
        (standby(seen="", holder="", seen_at=10.0), 10.0, Action.ACQUIRE),
    ],
)
def test_decide(state: State, now: float, expected: Action) -> None:
    assert machine.decide(state, now, T) is expected


def test_observe_restarts_the_clock_only_on_a_new_version() -> None:
    s = machine.observe(State("a"), LeaseRecord("b", "7"), 1.0)
    assert (s.seen_version, s.seen_at, s.seen_holder) == ("7", 1.0, "b")
    assert machine.observe(s, LeaseRecord("b", "7"), 2.0).seen_at == 1.0
    assert machine.observe(s, LeaseRecord("b", "8"), 2.0).seen_at == 2.0
    assert machine.observe(s, None, 3.0).seen_holder == ""


def test_transitions_are_recorded_and_withdrawal_forgets_the_lease() -> None:
    s = machine.acquired(standby(), 10.0, T, "heartbeat lost")
    assert (s.role, s.valid_until, s.transitions) == (Role.ACTIVE, 10.0 + T.renew_deadline, 1)
    assert machine.renewed(s, 10.1, T).valid_until == pytest.approx(10.1 + T.renew_deadline)
    down = machine.withdrawn(s, "renew deadline passed")
    assert (down.role, down.seen_version, down.transitions) == (Role.STANDBY, None, 2)
    assert "active -> standby: renew deadline passed" in machine.status_line(down, "now")
    assert machine.withdrawn(down, "again") == down  # a standby stays as it is


# -- simulation: never two holders ---------------------------------------------------------------


@dataclass
class Store:
    holder: str = ""
    version: int = 0
    token: int = 0

    def record(self) -> LeaseRecord | None:
        if self.version == 0:
            return None
        return LeaseRecord(self.holder, str(self.version), str(self.token))

    def cas(self, expected: str, holder: str, token: int = 0) -> bool:
        if str(self.version) != (expected or "0"):
            return False
        self.holder, self.version, self.token = holder, self.version + 1, token
        return True


@dataclass
class Sim:
    names: tuple[str, ...]
    store: Store = field(default_factory=Store)
    now: float = 0.0
    states: dict[str, State] = field(default_factory=dict)
    frozen: set[str] = field(default_factory=set)
    taken: dict[str, float] = field(default_factory=dict)  # holding the address since
    runs: dict[str, int] = field(default_factory=dict)  # each instance's incarnation token
    tenures: list[tuple[str, float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.states = {n: State(n) for n in self.names}
        self.runs = {n: i + 1 for i, n in enumerate(self.names)}

    def end(self, name: str, at: float) -> None:
        if name in self.taken:
            self.tenures.append((name, self.taken.pop(name), at))

    def guards(self) -> None:
        """The guard withdraws at the deadline (worst case: the whole budget later)."""
        for name in list(self.taken):
            s = self.states[name]
            if self.now >= s.valid_until:
                self.end(name, s.valid_until + T.withdraw_budget)

    def step(self, name: str, heard: bool, latency: float) -> None:
        if name in self.frozen:
            return
        s = self.states[name]
        if heard:
            s = machine.heard(s, self.now)
        action = machine.decide(s, self.now, T)
        if action is Action.WITHDRAW:
            self.end(name, self.now)
            s = machine.withdrawn(s, "deadline")
        elif action is Action.RENEW:
            sent = self.now
            record = self.store.record()
            won = record is not None and record.holder == name
            won = won and self.store.cas(str(self.store.version), name, self.runs[name])
            self.now += latency  # the answer comes back late
            if won and not machine.renewal_too_late(s, self.now):
                s = machine.renewed(s, sent, T)
            else:
                self.end(name, self.now)
                s = machine.withdrawn(s, "lost")
        elif s.role is Role.STANDBY:
            s = machine.observe(s, self.store.record(), self.now)
            if machine.decide(s, self.now, T) is Action.ACQUIRE:
                sent = self.now
                won = self.store.cas(s.seen_version or "", name, self.runs[name])
                self.now += latency
                if won:
                    s = machine.acquired(s, sent, T, "test")
                    if self.now < s.valid_until:
                        self.taken[name] = self.now
                    else:
                        s = machine.withdrawn(s, "too late")
                else:
                    s = machine.acquire_failed(s, self.now)
        self.states[name] = s

    def crash(self, name: str) -> None:
        """Killed: the guard withdraws at once (taking up to the budget), and only then
        releases the lease if that run's incarnation still holds it, at whatever version; the
        instance comes back as a new run (a new token)."""
        if name in self.taken:
            self.now += T.withdraw_budget
            self.end(name, self.now)
        # a withdrawal the guard began at the deadline ends before it reads the end of file
        self.now = max([self.now] + [end for n, _, end in self.tenures if n == name])
        if self.store.holder and self.store.token == self.runs[name]:
            self.store.cas(str(self.store.version), "")
        self.runs[name] += len(self.names)
        self.frozen.discard(name)
        self.states[name] = State(name)

    def check(self) -> None:
        tenures = self.tenures + [(n, t, float("inf")) for n, t in self.taken.items()]
        for i, (a, a0, a1) in enumerate(tenures):
            for b, b0, b1 in tenures[i + 1 :]:
                assert a1 <= b0 or b1 <= a0, f"{a} [{a0}, {a1}] overlaps {b} [{b0}, {b1}]"


events = st.lists(
    st.tuples(
        st.integers(0, 2),  # which instance
        # time passing before the event: on a 50 ms grid (the settings' boundaries) or any
        st.integers(0, 14).map(lambda n: n / 20) | st.floats(0.0, 0.7),
        st.sampled_from(["step"] * 6 + ["freeze", "thaw", "crash"]),
        # an "active" heartbeat heard (any claim: safety must not depend on it); mostly not,
        # so that takeovers, where the danger is, happen often
        st.sampled_from([False, False, False, True]),
        st.just(0.0) | st.integers(0, 10).map(lambda n: n / 20),  # store latency of a write
    ),
    max_size=120,
)


@settings(max_examples=1000, deadline=None)
@given(events)
def test_never_two_holders(script: list[tuple[int, float, str, bool, float]]) -> None:
    sim = Sim(("a", "b", "c"))
    for index, dt, kind, heard, latency in script:
        name = sim.names[index]
        sim.now += dt
        sim.guards()
        if kind == "step":
            sim.step(name, heard, latency)
        elif kind == "freeze":
            sim.frozen.add(name)
        elif kind == "thaw":
            sim.frozen.discard(name)
        else:
            sim.crash(name)
        sim.guards()
    sim.check()


def test_a_standby_takes_over_after_a_crash_and_the_returning_one_stays_standby() -> None:
    sim = Sim(("a", "b"))
    for _ in range(5):
        sim.step("a", False, 0.0)
        sim.now += 0.05
    assert sim.states["a"].role is Role.ACTIVE
    sim.crash("a")
    sim.step("b", False, 0.0)
    assert sim.states["b"].role is Role.ACTIVE  # released lease: at once
    for _ in range(20):  # "a" returns and hears b's heartbeats: no flap-back
        sim.now += 0.05
        sim.step("b", False, 0.0)
        sim.step("a", True, 0.0)
    assert (sim.states["a"].role, sim.states["b"].role) == (Role.STANDBY, Role.ACTIVE)
    sim.check()


def frozen_after_renewal(timing: Timing) -> Sim:
    """a renews and freezes; b saw that renewal at once and steps when the lease expires."""
    global T
    saved, T = T, timing
    try:
        sim = Sim(("a", "b"))
        sim.step("a", False, 0.0)
        sim.now += 0.2
        sim.step("a", False, 0.0)  # the renewal
        sim.step("b", False, 0.0)  # seen at once
        sim.frozen.add("a")
        sim.now += timing.lease_duration
        sim.guards()
        sim.step("b", False, 0.0)
        assert sim.states["b"].role is Role.ACTIVE
        return sim
    finally:
        T = saved


def test_the_timing_invariant_is_what_keeps_them_apart() -> None:
    frozen_after_renewal(Timing()).check()  # defaults: the guard is done before b takes over
    too_short = Timing(lease_duration=Timing().renew_deadline + 0.05)  # check() would refuse
    with pytest.raises(AssertionError, match="overlaps"):
        frozen_after_renewal(too_short).check()


def test_a_renewal_answered_after_its_deadline_withdraws() -> None:
    s = machine.acquired(standby(), 10.0, T, "test")  # valid until 10.5
    assert not machine.renewal_too_late(s, 10.49)
    assert machine.renewal_too_late(s, 10.5)


def test_the_standby_reads_the_lease_often_only_when_the_heartbeat_is_lost() -> None:
    s = machine.observe(standby(hb=10.0), LeaseRecord("b", "1"), 10.0)
    assert not machine.read_due(s, 10.05, T)
    assert machine.read_due(s, 10.11, T)
    lost = machine.observe(standby(hb=9.0), LeaseRecord("b", "1"), 10.0)
    assert machine.read_due(lost, 10.02, T)
    assert machine.read_due(State("a"), 0.0, T)  # never read
