"""The agent's run loop: DNS polling tasks, policy-file watching, signals, the DNS proxy.

Owns: one polling task per name, driven by the shared schedule (``common.dns_schedule``: TTL
with floor and ceiling, failures retried with bounded back-off, last good addresses kept and
extended while a lookup is slow; the task only waits, looks up, logs and writes what the
schedule keeps into the sets), reloading on a policy-file change or SIGHUP (a failed
reload logs one line and keeps the previous rules), starting the DNS proxy before the first
apply, and stopping on SIGTERM/SIGINT with the rules left in the kernel.
Must not: build rulesets or write the kernel itself (``agent.Agent`` does).
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from egress_router.common.dns_schedule import (
    Event,
    NameState,
    Outcome,
    on_answer,
    on_failure,
    on_slow,
)
from egress_router.errors import ConfigError, EgressRouterError, ResolveError, escape
from egress_router.firewall.agent import Agent, log, new_resolver, summary, warnings
from egress_router.firewall.model.decide import Address
from egress_router.runtime import unexpected
from egress_router.runtime.resolver import Resolver

State = NameState[Address]


async def poll(agent: Agent, name: str, resolver: Resolver, states: dict[str, State]) -> None:
    """Follow ``name``: look it up when the schedule says, write what it keeps to the sets."""
    schedule = agent.config.dns
    loop = asyncio.get_running_loop()
    states.setdefault(name, NameState(name))
    while True:
        try:
            state = await _poll_once(agent, name, resolver, states)
        except Exception as exc:  # a bug: reported once; this name is retried on back-off
            unexpected.report("firewall", f"DNS polling of {name}", exc)
            failed = on_failure(states[name], "internal error", loop.time(), schedule)
            state = states[name] = failed.state
        await asyncio.sleep(max(0.0, state.next_lookup - loop.time()))


async def _poll_once(
    agent: Agent, name: str, resolver: Resolver, states: dict[str, State]
) -> State:
    """One lookup of ``name`` and what the schedule makes of it (the new state, also kept in
    ``states``, where a step that fails halfway has left the last one it reached)."""
    schedule = agent.config.dns
    loop = asyncio.get_running_loop()
    state = states[name]
    lookup = asyncio.ensure_future(resolver.lookup(name))
    # Addresses have only the grace left when their refresh is due. A failing resolver can
    # take the whole lookup budget to answer, so keep the last good ones alive meanwhile.
    try:
        done, _ = await asyncio.wait({lookup}, timeout=schedule.slow_after)
        if not done:
            slow = on_slow(state, loop.time(), resolver.budget, schedule)
            state = states[name] = await _record(agent, slow, loop.time())
    except asyncio.CancelledError:  # the name left the policies: drop its lookup too
        lookup.cancel()
        raise
    try:
        answer = await lookup
    except ResolveError as exc:
        outcome = on_failure(state, exc.reason, loop.time(), schedule)
    else:
        outcome = on_answer(state, answer.addresses, answer.ttl, loop.time(), schedule, answer.note)
    states[name] = await _record(agent, outcome, loop.time())
    return states[name]


async def _record(agent: Agent, outcome: Outcome[Address], now: float) -> State:
    """Count and log a transition, and write the addresses it keeps into the sets."""
    state = outcome.state
    if outcome.event is Event.FAILURE:
        if agent.metrics is not None:
            agent.metrics.lookup(False)
        if state.failures == 1:
            failed = ResolveError(state.name, state.last_error or "no answer")
            log(f"{failed}; retrying, last good addresses kept")
    elif outcome.event is Event.ANSWER:
        if agent.metrics is not None:
            agent.metrics.lookup(True)
        if outcome.previous_failures:
            log(f"{state.name} resolves again after {outcome.previous_failures} failed lookups")
    kept = state.kept(now)
    if kept:
        try:
            await asyncio.to_thread(agent.learn_everywhere, state.name, kept)
        except EgressRouterError as exc:
            log(f"cannot update the addresses of {state.name}: {exc.one_line()}")
    return state


def _signature(agent: Agent) -> list[tuple[int, int, int] | None]:
    sig: list[tuple[int, int, int] | None] = []
    for path in agent.config.files:
        try:
            st = path.stat()
            sig.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            sig.append(None)
    return sig


async def _watch(agent: Agent, reload: asyncio.Event) -> None:
    last = _signature(agent)
    while True:
        await asyncio.sleep(agent.config.watch_interval)
        now = _signature(agent)
        if now != last:
            last = now
            reload.set()


def _reload(agent: Agent) -> bool:
    """Apply the files again; on ANY failure keep the running rules, the DNS proxy and the
    pollers, log one line and count it (``agent.failed_reloads``, and the reload metric).

    Parsing raises only our errors; anything else (a bug, MemoryError) must not end the agent
    either: the rules in the kernel are the last good ones and stay correct.
    """
    try:
        agent.apply()
    except EgressRouterError as exc:
        agent.failed_reloads += 1
        log(f"reload failed, previous rules stay in force: {exc.one_line()}")
        return False
    except Exception as exc:  # a bug: reported once with its traceback, and counted
        unexpected.report("firewall", "reload", exc)
        agent.failed_reloads += 1
        detail = escape(" ".join(str(exc).split()), 200)
        log(f"reload failed ({type(exc).__name__}: {detail}), previous rules stay in force")
        return False
    log(f"reloaded: {summary(agent)}")
    return True


class Pollers:
    """One polling task per DNS name the agent's policies name, kept in step with them (``run``
    and the API-fed agent share it)."""

    def __init__(self, agent: Agent, resolver: Resolver) -> None:
        self.agent, self.resolver = agent, resolver
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.states: dict[str, State] = {}  # name -> its schedule state (while it is polled)

    def sync(self) -> None:
        """Stop the tasks of names no longer named; start one for each new name."""
        wanted = self.agent.polled_names()
        for name in set(self.tasks) - wanted:
            self.tasks.pop(name).cancel()
            self.states.pop(name, None)
        for name in wanted - set(self.tasks):
            task = poll(self.agent, name, self.resolver, self.states)
            self.tasks[name] = asyncio.create_task(task)

    def cancel(self) -> None:
        for task in self.tasks.values():
            task.cancel()


async def run(agent: Agent) -> None:
    """Serve until SIGTERM/SIGINT; the kernel keeps the rules when we stop."""
    loop = asyncio.get_running_loop()
    stop, reload = asyncio.Event(), asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, reload.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    resolver = new_resolver(agent.config.upstream)
    pollers = Pollers(agent, resolver)

    if agent.config.metrics is not None:
        from egress_router.runtime.metrics import serve

        serve(*agent.config.metrics, agent.registry)  # before any kernel change, like the proxy
        log(f"metrics on http://{agent.config.metrics[0]}:{agent.config.metrics[1]}/metrics")
    health = None
    if agent.config.health is not None:
        from egress_router.runtime.health import Health, serve_health

        health = Health()
        serve_health(*agent.config.health, health)  # alive; ready once the rules are applied
    proxy = None
    if agent.config.dns_listen is not None:
        from egress_router.firewall.dns_server import start_server

        # Bind first, so a busy or missing address fails before the kernel is changed.
        proxy = await start_server(agent, agent.config.dns_listen, upstream(agent))
    try:
        agent.apply()  # blocking on purpose: no query is answered before the rules exist
    except BaseException:
        if proxy is not None:
            proxy.close()
        raise
    log(f"applied: {summary(agent)}")
    if health is not None:
        health.ready()
    for warning in warnings(agent):
        log(f"warning: {warning}")
    if agent.config.dns_listen is not None:
        log(f"DNS proxy listening on {agent.config.dns_listen[0]}:{agent.config.dns_listen[1]}")
    pollers.sync()
    tasks = [asyncio.create_task(_watch(agent, reload))]
    log("running")
    try:
        while not stop.is_set():
            waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(reload.wait())]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
            if reload.is_set() and not stop.is_set():
                reload.clear()
                if await asyncio.to_thread(_reload, agent):
                    pollers.sync()
    finally:
        if proxy is not None:
            proxy.close()
        for task in tasks:
            task.cancel()
        pollers.cancel()
        log("stopped; the rules stay in the kernel")


def upstream(agent: Agent) -> tuple[str, int]:
    if agent.config.upstream:
        return agent.config.upstream[0]
    for line in Path("/etc/resolv.conf").read_text().split("\n"):  # LF ends a line, only
        fields = line.strip(" \t\r").split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            return fields[1], 53
    raise ConfigError("--dns-upstream: no nameserver in /etc/resolv.conf; give one")
