"""The egress firewall node agent: apply policies, keep DNS-named rules current, reload.

Owns: reading policy files, validating everything before touching the kernel, replacing our
table in one checked transaction (``apply``), the learned DNS addresses (per namespace and
dnsName pattern, each with its expiry) and writing them to the sets, adopting the sets a
previous agent left. The run loop (polling, reloads, signals) is in ``firewall.loop``.
Must not: build nft JSON itself (``firewall.model.render``) or decide verdicts.

Failure semantics: a policy that does not validate, or a ruleset the kernel refuses, changes
nothing (the previous table stays in force, also after a failed reload). If the agent dies,
the kernel keeps the table: CIDR rules stay as they are and learned DNS addresses expire at
their TTL plus grace, as they would have without the agent refreshing them.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import TYPE_CHECKING

from egress_router.common.dns_schedule import RefreshPolicy
from egress_router.common.documents import MAX_CHARS
from egress_router.errors import EgressRouterError, PolicyError
from egress_router.firewall.model.decide import Address, NodeConfig
from egress_router.firewall.model.dnsrules import dns_settings
from egress_router.firewall.model.plan import Plan, compile_plan
from egress_router.firewall.model.policy import Policy, index_by_namespace, parse_text
from egress_router.firewall.model.render import FAMILY, TABLE, build, learn_commands
from egress_router.kernel import nftables
from egress_router.runtime import logsink
from egress_router.runtime.resolver import Resolver

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

    from egress_router.runtime.metrics import FirewallMetrics

MAX_ADDRESSES_PER_NAME = 1000  # per namespace and name, as Cilium's default cap
PERMANENT = math.inf  # the expiry of addresses ``firewall apply`` resolved once: no timeout
# A `run` starting over an `apply` adopts its permanent addresses for this long (seconds): its
# own first lookups replace them well before, so pods never see a gap.
ADOPTED_PERMANENT_S = 60.0
# Lookups `firewall apply` runs at once: a policy may name thousands of hosts, the resolver
# should not see them all in the same instant (each lookup is bounded by the resolver's budget).
APPLY_LOOKUPS_IN_FLIGHT = 32
QUERY_TIMEOUT_S = 5.0  # one query to one server, as the references use
LOOKUP_BUDGET_S = 2 * QUERY_TIMEOUT_S  # one whole lookup (A and AAAA in parallel)


def log(message: str) -> None:
    """One line on stderr; never blocks (from the event loop or a worker thread alike)."""
    logsink.stderr().line(f"egress-router firewall: {message}")


def new_resolver(upstream: Sequence[tuple[str, int]] | None) -> Resolver:
    """The firewall's lookups: A and AAAA in parallel, no search list, 5 s per query, through
    ``upstream`` servers or the system resolv.conf (``--dns-upstream``)."""
    return Resolver(
        timeout=LOOKUP_BUDGET_S,
        nameservers=upstream,
        families=(4, 6),
        search=False,
        query_timeout=QUERY_TIMEOUT_S,
    )


def load_policies(files: Sequence[Path], default_namespace: str | None) -> dict[str, Policy]:
    """Read and validate every file; one PolicyError for the first problem found."""
    policies: list[Policy] = []
    for path in files:
        try:
            with path.open(encoding="utf-8") as stream:
                text = stream.read(MAX_CHARS + 1)  # one past the bound is refused as too large
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"cannot read: {exc.__class__.__name__}", source=str(path)) from exc
        policies += parse_text(text, str(path), default_namespace)
    return index_by_namespace(policies)


@dataclass
class AgentConfig:
    files: list[Path]
    node: NodeConfig
    default_namespace: str | None = None
    dns: RefreshPolicy = field(default_factory=dns_settings)  # the DNS schedule's timing
    dns_listen: tuple[str, int] | None = None
    upstream: list[tuple[str, int]] | None = None
    watch_interval: float = 1.0  # seconds between policy-file checks
    metrics: tuple[str, int] | None = None  # serve Prometheus /metrics here (``firewall.loop``)
    health: tuple[str, int] | None = None  # serve /healthz and /readyz here (``runtime.health``)
    # Ask the kernel (``nft -c``) before applying. The transaction is all-or-nothing either way;
    # the API-fed agent skips the check, which costs as much again as the apply.
    precheck: bool = True


class Agent:
    """The node agent's state; kernel writes are serialised by one lock."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.policies: dict[str, Policy] = {}
        self.plan: Plan | None = None
        # (namespace, pattern) -> address -> expiry (monotonic seconds)
        self.learned: dict[tuple[str, str], dict[Address, float]] = {}
        self.failed_reloads = 0  # reloads refused since start (the previous rules stayed)
        self._lock = threading.Lock()
        self.metrics: FirewallMetrics | None = None
        self.registry: CollectorRegistry | None = None
        if config.metrics is not None:
            from egress_router.runtime.metrics import FirewallMetrics, new_registry

            self.registry = new_registry()
            self.metrics = FirewallMetrics(self.registry)

    # -- whole-table apply ---------------------------------------------------------------------

    def _learned_elements(self, plan: Plan) -> dict[str, list[tuple[str, float]]]:
        now = time.monotonic()
        out: dict[str, list[tuple[str, float]]] = {}
        for dset in plan.dns_sets:
            addrs = self.learned.get((dset.namespace, dset.pattern), {})
            out[dset.name] = [
                (str(a), exp - now)
                for a, exp in addrs.items()
                if a.version == dset.family and exp > now
            ]
        return out

    def apply(
        self, policies: dict[str, Policy] | None = None, node: NodeConfig | None = None
    ) -> Plan:
        """Validate (unless given) and replace our table atomically; raise and change nothing.

        ``node`` replaces the configured pod addresses (the API-fed agent passes the pods it
        watches); it becomes the agent's view only once the kernel has taken the table.
        """
        if self.metrics is None:
            return self._apply(policies, node)
        started = time.monotonic()
        try:
            plan = self._apply(policies, node)
        except BaseException:
            self.metrics.applied(False, 0.0, 0, 0)
            raise
        rules = sum(len(p.rules) for p in self.policies.values())
        self.metrics.applied(True, time.monotonic() - started, len(self.policies), rules)
        with self._lock:
            counts = {
                (d.namespace, d.pattern): len(self.learned.get((d.namespace, d.pattern), {}))
                for d in plan.dns_sets
            }
        self.metrics.learned_counts(counts, replace=True)
        return plan

    def _apply(self, policies: dict[str, Policy] | None, node: NodeConfig | None) -> Plan:
        if policies is None:
            policies = load_policies(self.config.files, self.config.default_namespace)
        if node is None:
            node = self.config.node
        plan = compile_plan(policies, node)
        with self._lock:
            if self.plan is None:
                self._adopt_kernel_sets(plan)
            commands = build(
                plan, self._learned_elements(plan), nftables.replace_table_commands(FAMILY, TABLE)
            )
            if self.config.precheck:
                nftables.check(commands)
            nftables.apply(commands)
            self.policies, self.plan, self.config.node = policies, plan, node
        return plan

    def _adopt_kernel_sets(self, plan: Plan) -> None:
        """At start, take over the addresses a previous agent left in our sets (with their
        remaining lifetimes), so a restart does not deny what pods have just been told."""
        try:
            sets = nftables.list_sets(FAMILY, TABLE) or {}
        except EgressRouterError:
            return
        by_name = {d.name: d for d in plan.dns_sets}
        now = time.monotonic()
        for set_name, elements in sets.items():
            dset = by_name.get(set_name)
            if dset is None:
                continue
            known = self.learned.setdefault((dset.namespace, dset.pattern), {})
            for element in elements:
                try:
                    address = ip_address(element.key)
                except ValueError:  # not one address (our DNS sets hold nothing else)
                    continue
                # no expiry: written for good by `firewall apply`, adopted for a while
                left = ADOPTED_PERMANENT_S if element.expires is None else element.expires
                known[address] = now + left

    # -- learned addresses ---------------------------------------------------------------------

    def resolve_once(self, policies: dict[str, Policy]) -> list[str]:
        """Learn the addresses of every dnsName in ``policies`` for good (``firewall apply``).

        Returns one line per name that could not be resolved (its rules match nothing). Call
        before ``apply(policies)``, which writes the addresses with the table, in one go.
        """
        names = sorted(
            {
                r.dns_name
                for p in policies.values()
                for r in p.rules
                if r.dns_name and not r.dns_name.startswith("*.")
            }
        )
        if not names:
            return []
        resolver = new_resolver(self.config.upstream)

        async def lookups() -> list[tuple[Address, ...] | BaseException]:
            gate = asyncio.Semaphore(APPLY_LOOKUPS_IN_FLIGHT)

            async def one(name: str) -> tuple[Address, ...]:
                async with gate:
                    return (await resolver.lookup(name)).require(name).addresses

            return await asyncio.gather(*(one(n) for n in names), return_exceptions=True)

        problems = []
        found: dict[str, tuple[Address, ...]] = {}
        for name, result in zip(names, asyncio.run(lookups()), strict=True):
            if isinstance(result, EgressRouterError):
                problems.append(f"{result.one_line()}: its rules match nothing")
            elif isinstance(result, BaseException):
                raise result
            else:
                found[name] = result
        for namespace, policy in policies.items():
            for rule in policy.rules:
                if rule.dns_name in found:
                    known = self.learned.setdefault((namespace, rule.dns_name), {})
                    known.update(dict.fromkeys(found[rule.dns_name], PERMANENT))
        return problems

    def learn(
        self, namespace: str, patterns: Sequence[str], addrs: Sequence[tuple[Address, float]]
    ) -> int:
        """Put ``addrs`` (address, lifetime s) into the sets of ``patterns`` in ``namespace``.

        Returns the number of elements written. Holding the lock through the kernel write
        means a concurrent caller for the same name returns only once the addresses are in
        the kernel, never merely "already recorded".
        """
        with self._lock:
            plan = self.plan
            if plan is None:
                return 0
            now = time.monotonic()
            commands = []
            written = 0
            for pattern in patterns:
                known = self.learned.setdefault((namespace, pattern), {})
                for dset in plan.sets_for(namespace, pattern):
                    fresh = []
                    for addr, lifetime in addrs:
                        if addr.version != dset.family:
                            continue
                        expiry = now + lifetime
                        if known.get(addr, 0.0) >= expiry - 1.0:
                            continue  # already in the kernel for (almost) as long
                        known[addr] = expiry
                        fresh.append((str(addr), lifetime))
                    commands += learn_commands(dset.name, fresh)
                    written += len(fresh)
                for addr in [a for a, exp in known.items() if exp <= now]:
                    del known[addr]
                if len(known) > MAX_ADDRESSES_PER_NAME:
                    # evict the soonest-expiring beyond the cap (the kernel keeps them until
                    # their own timeout; we just stop tracking and refreshing them)
                    for addr in sorted(known, key=known.__getitem__)[:-MAX_ADDRESSES_PER_NAME]:
                        del known[addr]
            nftables.apply(commands)
            if self.metrics is not None:
                self.metrics.learned_counts(
                    {(namespace, p): len(self.learned[(namespace, p)]) for p in patterns},
                    replace=False,
                )
            return written

    def learn_everywhere(self, name: str, addrs: Sequence[tuple[Address, float]]) -> int:
        """A polled name's addresses go to every namespace whose policy names it."""
        total = 0
        for namespace, policy in list(self.policies.items()):
            if any(r.dns_name == name for r in policy.rules):
                total += self.learn(namespace, [name], addrs)
        return total

    def polled_names(self) -> set[str]:
        """Names to poll: every dnsName without a wildcard (wildcards are learned by the proxy)."""
        return {
            r.dns_name
            for p in self.policies.values()
            for r in p.rules
            if r.dns_name and not r.dns_name.startswith("*.")
        }

    # -- what the DNS server needs (``dns_server.Learner``) ---------------------------------

    def dns_patterns(self, client: str) -> tuple[str, list[str]] | None:
        """The namespace of the pod at ``client`` and the dnsName patterns of its policy."""
        namespace = self.config.node.namespace_of(ip_address(client))
        policy = self.policies.get(namespace or "")
        if namespace is None or policy is None:
            return None
        return namespace, [r.dns_name for r in policy.rules if r.dns_name]

    def dns_lifetime(self, ttl: float) -> float:
        """How long an address answered with ``ttl`` stays in the sets."""
        return self.config.dns.lifetime(ttl)


def _summary(plan: Plan, policies: dict[str, Policy]) -> str:
    rules = sum(len(p.rules) for p in policies.values())
    active = ", ".join(ns.namespace for ns in plan.namespaces) or "none"
    return f"{len(policies)} policies, {rules} rules (namespaces: {active})"


def warnings(agent: Agent) -> list[str]:
    """Things an operator probably did not mean (the rules are applied regardless)."""
    out = []
    pods = set(agent.config.node.namespaces)
    if not pods:
        out.append("no --pods given: no pod is filtered on this node")
    for namespace in sorted(set(agent.policies) - pods):
        out.append(f"namespace {namespace} has a policy but no pods given by --pods")
    if agent.config.dns_listen is None:
        for policy in agent.policies.values():
            for rule in policy.rules:
                if rule.dns_name and rule.dns_name.startswith("*."):
                    out.append(
                        f"namespace {policy.namespace} rule {rule.index}: {rule.dns_name} can "
                        "only be learned through the DNS proxy (--dns-listen)"
                    )
    return out


def summary(agent: Agent) -> str:
    assert agent.plan is not None
    return _summary(agent.plan, agent.policies)
