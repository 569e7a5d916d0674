"""The node agent fed by the API server: ``egress-router firewall agent --node NAME``.

Owns: the four watches (EgressFirewall, EgressNetworkPolicy, Namespaces, this node's Pods)
through ``egress_router.kube.watch``; folding their events into the ``ClusterView`` on the event
loop; after a short quiet period (``debounce``, at most ``debounce_max`` after the first event)
one reconcile: ``cluster.desire`` -> ``Agent.apply`` (one atomic nft transaction, skipped when
nothing the kernel sees changed) -> each policy's status as this node (server-side apply, our own
field manager, so nodes never overwrite each other's messages); a Warning Event on each policy
that is refused, invalid or failed to apply here (posted once per problem: the Event's name is
derived from it); the DNS pollers and DNS proxy of
``firewall.loop``; signals. Status writes that fail are retried with back-off.
Must not: decide what to apply or what a status says (``firewall.model.cluster``), or call the
client library (``egress_router.kube``).

Nothing is applied before every resource has been listed once, so an agent that starts while
the API server is away leaves the rules of the previous agent in force; an API server that goes
away later leaves the last rules in force while the watches reconnect with back-off.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from egress_router.errors import EgressRouterError, escape
from egress_router.firewall.agent import Agent, log, new_resolver, summary
from egress_router.firewall.loop import Pollers, upstream
from egress_router.firewall.model.cluster import (
    NAMESPACES,
    PODS,
    POLICY_RESOURCES,
    ClusterView,
    Desired,
    PolicyKey,
    PolicyWarning,
    desire,
    status_update,
    warnings,
)
from egress_router.firewall.model.policy import API_VERSIONS, Network, Policy
from egress_router.kube.client import Kube, KubeError
from egress_router.kube.watch import Backoff, Resource, Watcher, WatchEvent, start
from egress_router.runtime import unexpected

GROUPS = {"egressfirewalls": "k8s.ovn.org", "egressnetworkpolicies": "network.openshift.io"}
FIELD_MANAGER = "egress-router-firewall"
Arrival = tuple[float, WatchEvent]  # when the watcher thread handed the event on (monotonic)
MAX_POSTED = 10_000  # event names remembered (beyond: forgotten; posting again is a cheap 409)


@dataclass
class ClusterConfig:
    """The API-fed agent's settings (times in seconds)."""

    node: str
    exempt: tuple[Network, ...] = ()  # --cluster-cidr and --service-cidr
    debounce: float = 0.05  # quiet time after an event before reconciling
    debounce_max: float = 0.2  # reconcile at the latest this long after the first event
    backoff: Backoff = field(default_factory=Backoff)  # reconnects and status-write retries


def resources(node: str) -> list[Resource]:
    """What the agent watches (pods: only those scheduled on ``node``)."""
    policies = [Resource(GROUPS[plural], "v1", plural) for plural in POLICY_RESOURCES]
    return [
        *policies,
        Resource("", "v1", NAMESPACES),
        Resource("", "v1", PODS, field_selector=f"spec.nodeName={node}"),
    ]


class Reconciler:
    """The kernel and status side; ``reconcile`` runs in a worker thread, one at a time."""

    def __init__(self, agent: Agent, kube: Kube, config: ClusterConfig) -> None:
        self.agent, self.kube, self.config = agent, kube, config
        self.applied: tuple[dict[str, Policy], Any] | None = None
        self.in_force: dict[str, PolicyKey] = {}
        self.last_good: dict[PolicyKey, Policy] = {}
        self.kernel_error: str | None = None
        self.written: dict[PolicyKey, tuple[str, dict[str, Any]]] = {}
        self.status_failures = 0
        self.posted: set[str] = set()  # the names of the events posted (or found posted)
        self.event_failures = 0

    def desire(self, view: ClusterView) -> Desired:
        return desire(view, self.config.exempt, self.in_force, self.last_good)

    def reconcile(self, view: ClusterView, desired: Desired, since: float | None = None) -> bool:
        """Apply ``desired`` if it differs from the kernel's; write statuses. True: retry later.

        ``since``: when the first change of this batch arrived (monotonic), for the log line.
        """
        wanted = (desired.policies, desired.node)
        if wanted != self.applied:
            started = time.monotonic()
            try:
                self.agent.apply(desired.policies, desired.node)
            except EgressRouterError as exc:
                self.kernel_error = exc.one_line()
                log(f"apply failed, previous rules stay in force: {self.kernel_error}")
            except Exception as exc:  # a bug must not end the agent: the kernel keeps its rules
                unexpected.report("firewall", "an apply", exc)
                detail = escape(" ".join(str(exc).split()), 200)
                self.kernel_error = f"{type(exc).__name__}: {detail}"
                log(f"apply failed, previous rules stay in force: {self.kernel_error}")
            else:
                first = self.applied is None
                self.applied, self.kernel_error = wanted, None
                self.in_force = dict(desired.in_force)
                self.last_good = {k: desired.policies[ns] for ns, k in desired.in_force.items()}
                done = time.monotonic()
                timing = f"compile and apply {done - started:.3f} s"
                if since is not None:
                    timing += f", {done - since:.3f} s after the change arrived"
                pods = len(desired.node.pods)
                log(
                    f"{'applied' if first else 'updated'}: {summary(self.agent)}, {pods} pod "
                    f"addresses ({timing})"
                )
        retry = self._write_statuses(view, desired)
        self._post_events(warnings(self.config.node, view, desired, self.kernel_error))
        return retry

    def _post_events(self, due: list[PolicyWarning]) -> None:
        """Post each new problem's Warning event once; a failed post is tried again at the
        next reconcile (events are best effort: they never hold up the kernel or the status)."""
        for item in due:
            if item.name in self.posted:
                continue
            key = item.key
            involved = {
                "apiVersion": API_VERSIONS[key.kind][0],
                "kind": key.kind,
                "namespace": key.namespace,
                "name": key.name,
                "uid": item.uid,
            }
            try:
                self.kube.post_event(
                    involved,
                    item.name,
                    item.reason.value,
                    item.message,
                    FIELD_MANAGER,
                    self.config.node,
                )
            except KubeError as exc:
                self.event_failures += 1
                if self.event_failures == 1:
                    log(f"cannot post an event on {key}: {exc.one_line()}")
                return  # probably away: the next reconcile tries again
            self.event_failures = 0
            self.posted.add(item.name)
        if len(self.posted) > MAX_POSTED:  # a bound on memory: forget, a repost is a 409
            self.posted = {item.name for item in due}

    def _error(self, key: PolicyKey, desired: Desired) -> str | None:
        problem = desired.problems.get(key)
        if problem is None and self.kernel_error and key in desired.in_force.values():
            return f"{self.kernel_error}; the previous rules stay in force"
        return problem

    def _write_statuses(self, view: ClusterView, desired: Desired) -> bool:
        retry = False
        for gone in set(self.written) - set(view.policies):
            del self.written[gone]
        # the API server takes field manager names of at most 128 characters
        manager = f"{FIELD_MANAGER}/{self.config.node}"[:128]
        for key, entry in list(view.policies.items()):
            if key.namespace not in view.namespaces:
                continue
            body = status_update(self.config.node, entry, self._error(key, desired))
            if body is None:
                self.written.pop(key, None)
                continue
            if self.written.get(key) == (entry.version, body):
                continue  # already written from this version; its event is on its way
            plural = next(p for p, k in POLICY_RESOURCES.items() if k == key.kind)
            try:
                self.kube.apply_status(
                    API_VERSIONS[key.kind][0],
                    key.kind,
                    plural,
                    key.namespace,
                    key.name,
                    body,
                    manager,
                )
            except KubeError as exc:
                if exc.status == 404:
                    continue  # deleted meanwhile: its DELETED event follows
                retry = True
                self.status_failures += 1
                if self.status_failures == 1:
                    log(f"cannot write the status of {key}: {exc.one_line()}; will retry")
                break  # the API server is probably away: retry all later
            self.written[key] = (entry.version, body)
        if not retry:
            self.status_failures = 0
        return retry


async def run(agent: Agent, kube: Kube, config: ClusterConfig) -> None:
    """Serve until SIGTERM/SIGINT; the kernel keeps the rules when we stop."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    events: asyncio.Queue[Arrival] = asyncio.Queue()
    threads_stop = threading.Event()

    def sink(event: WatchEvent) -> None:  # called from a watcher thread
        if threads_stop.is_set():
            return
        try:
            loop.call_soon_threadsafe(events.put_nowait, (time.monotonic(), event))
        except RuntimeError:  # the loop closed while this thread was reading: we are stopping
            threads_stop.set()

    watchers = [
        Watcher(kube, r, sink, report=log, backoff=config.backoff) for r in resources(config.node)
    ]
    resolver = new_resolver(agent.config.upstream)
    pollers = Pollers(agent, resolver)

    if agent.config.metrics is not None:
        from egress_router.runtime.metrics import serve

        serve(*agent.config.metrics, agent.registry)
        log(f"metrics on http://{agent.config.metrics[0]}:{agent.config.metrics[1]}/metrics")
    proxy = None
    if agent.config.dns_listen is not None:
        from egress_router.firewall.dns_server import start_server

        proxy = await start_server(agent, agent.config.dns_listen, upstream(agent))
        log(f"DNS proxy listening on {agent.config.dns_listen[0]}:{agent.config.dns_listen[1]}")
    health = None
    if agent.config.health is not None:
        from egress_router.runtime.health import Health, serve_health

        health = Health()
        serve_health(*agent.config.health, health)  # alive; ready once the rules are applied
    view = ClusterView(config.node)
    reconciler = Reconciler(agent, kube, config)
    start(watchers, threads_stop)
    log(f"watching the API server for node {config.node}")
    retry_failures = 0
    try:
        while not stop.is_set():
            timeout = config.backoff.delay(retry_failures) if retry_failures else None
            since = await _next_batch(events, view, stop, timeout, config)
            if stop.is_set():
                break
            if (since is None and not retry_failures) or not view.ready:
                continue
            desired = reconciler.desire(view)
            retry = await asyncio.to_thread(reconciler.reconcile, view, desired, since)
            retry_failures = retry_failures + 1 if retry else 0
            if health is not None and reconciler.applied is not None:
                health.ready()
            pollers.sync()
    finally:
        threads_stop.set()
        for watcher in watchers:
            watcher.stop()
        if proxy is not None:
            proxy.close()
        pollers.cancel()
        log("stopped; the rules stay in the kernel")


async def _next_batch(
    events: asyncio.Queue[Arrival],
    view: ClusterView,
    stop: asyncio.Event,
    timeout: float | None,
    config: ClusterConfig,
) -> float | None:
    """Wait for events (or ``timeout``), then gather until quiet; fold them into ``view``.

    Each event is folded as soon as it is taken, and the quiet period runs from when the last
    one arrived (stamped by the watcher thread), so the time spent parsing a big policy counts
    towards it instead of coming before it. Returns when the first event arrived (monotonic),
    None if none did.
    """
    getter = asyncio.ensure_future(events.get())
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait(
        {getter, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
    )
    stopper.cancel()
    if getter not in done:
        getter.cancel()
        return None
    arrived, event = getter.result()
    view.update(event.resource.plural, event.type, event.object)
    deadline, last = arrived + config.debounce_max, arrived
    while True:
        while not events.empty():  # what arrived while the last one was folded
            last, event = events.get_nowait()
            view.update(event.resource.plural, event.type, event.object)
        remaining = min(deadline, last + config.debounce) - time.monotonic()
        if remaining <= 0:
            break
        try:
            last, event = await asyncio.wait_for(events.get(), remaining)
        except TimeoutError:
            break
        view.update(event.resource.plural, event.type, event.object)
    return arrived
