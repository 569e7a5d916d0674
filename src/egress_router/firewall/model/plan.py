"""Compiling ordered policies into a plan whose per-packet cost does not grow with rule count.

Owns: the ``Plan`` (what our nftables table must contain, as plain values), the first-match
interval folding, and ``evaluate``, a pure interpreter of a plan used to prove the plan
equivalent to ``decide`` (property tests) without a kernel.
Must not: produce nft JSON (``render`` does) or touch the kernel.

Per namespace the rules become an ordered list of steps:
  * a run of consecutive port-less CIDR rules folds into ONE interval verdict map per
    family: the address space is cut at every rule boundary and each piece keeps the verdict
    of the first rule covering it; pieces no rule covers are absent, so the lookup misses and
    evaluation falls through to the next step. 8,000 CIDR rules cost one lookup;
  * a dnsName rule is one step per family testing a named set of learned addresses
    (``flags timeout``), so a DNS change only touches set elements, never the rules;
  * a CIDR rule with ports is one step (its address and its protocol/port match).
The cost per packet is the number of steps, which grows only where dnsName or port rules
interleave with CIDR rules, never with the number of CIDR rules.
"""

from __future__ import annotations

import bisect
import heapq
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from egress_router.firewall.model.decide import Address, NodeConfig
from egress_router.firewall.model.policy import Network, Policy, PortMatch, Rule


@dataclass(frozen=True)
class Interval:
    """Addresses ``lo``..``hi`` (integers, inclusive) decided by ``allow``."""

    lo: int
    hi: int
    allow: bool


@dataclass(frozen=True)
class MapStep:
    """Look the destination up in an interval verdict map (miss = next step)."""

    family: int
    name: str
    intervals: tuple[Interval, ...]
    rules: tuple[int, ...]  # 1-based indexes of the rules folded into this map


@dataclass(frozen=True)
class MatchStep:
    """One rule: destination in ``cidr`` or in the named DNS set, optional ports."""

    family: int
    allow: bool
    rule: int
    cidr: Network | None = None
    set_name: str | None = None
    ports: tuple[PortMatch, ...] = ()


Step = MapStep | MatchStep


@dataclass(frozen=True)
class DnsSet:
    """A named set of addresses learned for ``pattern`` in ``namespace``."""

    name: str
    namespace: str
    pattern: str
    family: int


@dataclass(frozen=True)
class NamespacePlan:
    namespace: str
    chain: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Plan:
    exempt: tuple[Network, ...]
    sources: tuple[tuple[Network, str], ...]  # pod network -> namespace chain
    namespaces: tuple[NamespacePlan, ...]
    dns_sets: tuple[DnsSet, ...]

    def sets_for(self, namespace: str, pattern: str) -> list[DnsSet]:
        return [s for s in self.dns_sets if s.namespace == namespace and s.pattern == pattern]


def chain_name(namespace: str) -> str:
    return "ns_" + namespace.replace("-", "_")


def dns_set_name(namespace: str, pattern: str, family: int) -> str:
    """Set name for a (namespace, name) pair: shared by every rule naming the same pattern."""
    digest = 0
    for ch in pattern:  # stable, dependency-free short hash (names can be 253 chars)
        digest = (digest * 131 + ord(ch)) % (1 << 40)
    return f"{chain_name(namespace)}_d{digest:010x}v{family}"


def fold(rules: list[tuple[int, int, int, bool]]) -> tuple[Interval, ...]:
    """First-match fold of ``(lo, hi, order, allow)`` ranges into disjoint intervals.

    A sweep over the sorted boundaries with a heap of the rules covering the current piece
    (smallest order = first rule wins); O(n log n), adjacent pieces with the same verdict
    merged so the kernel map stays small.
    """
    points = sorted({r[0] for r in rules} | {r[1] + 1 for r in rules})
    starts = sorted(rules)
    heap: list[tuple[int, int, bool]] = []  # (order, hi, allow)
    out: list[Interval] = []
    k = 0
    for i, point in enumerate(points[:-1]):
        while k < len(starts) and starts[k][0] == point:
            _lo, hi, order, allow = starts[k]
            heapq.heappush(heap, (order, hi, allow))
            k += 1
        while heap and heap[0][1] < point:
            heapq.heappop(heap)
        if not heap:
            continue
        end = points[i + 1] - 1
        allow = heap[0][2]
        if out and out[-1].hi + 1 == point and out[-1].allow == allow:
            out[-1] = Interval(out[-1].lo, end, allow)
        else:
            out.append(Interval(point, end, allow))
    return tuple(out)


def _block_steps(chain: str, block: list[Rule], counter: int) -> list[Step]:
    steps: list[Step] = []
    for family in (4, 6):
        width = 32 if family == 4 else 128
        ranges = [
            (lo, lo | ((1 << (width - r.cidr.prefixlen)) - 1), r.index, r.allow)
            for r in block
            if r.cidr is not None and r.cidr.version == family
            for lo in (int(r.cidr.network_address),)
        ]
        if ranges:
            name = f"{chain}_m{counter}v{family}"
            indexes = tuple(r[2] for r in ranges)
            steps.append(MapStep(family, name, fold(ranges), indexes))
    return steps


def compile_plan(policies: Mapping[str, Policy], node: NodeConfig) -> Plan:
    """The plan for every namespace that has both pods on this node and a policy."""
    namespaces: list[NamespacePlan] = []
    dns_sets: dict[str, DnsSet] = {}
    for namespace in sorted(policies):
        chain = chain_name(namespace)
        steps: list[Step] = []
        block: list[Rule] = []
        for rule in policies[namespace].rules:
            if rule.cidr is not None and not rule.ports:
                block.append(rule)
                continue
            if block:
                steps += _block_steps(chain, block, len(steps))
                block = []
            if rule.cidr is not None:
                steps.append(
                    MatchStep(
                        rule.cidr.version, rule.allow, rule.index, rule.cidr, None, rule.ports
                    )
                )
                continue
            assert rule.dns_name is not None
            for family in (4, 6):
                name = dns_set_name(namespace, rule.dns_name, family)
                dns_sets.setdefault(name, DnsSet(name, namespace, rule.dns_name, family))
                steps.append(MatchStep(family, rule.allow, rule.index, None, name, rule.ports))
        if block:
            steps += _block_steps(chain, block, len(steps))
        namespaces.append(NamespacePlan(namespace, chain, tuple(steps)))
    with_policy = {p.namespace for p in namespaces}
    sources = tuple((net, chain_name(ns)) for ns, net in node.pods if ns in with_policy)
    return Plan(node.exempt, sources, tuple(namespaces), tuple(dns_sets.values()))


def _step_matches(
    step: Step, dst: Address, proto: str, port: int | None, members: Mapping[str, set[Address]]
) -> bool | None:
    """The step's verdict for this packet (True allow, False deny) or None (fall through)."""
    if step.family != dst.version:
        return None
    value = int(dst)
    if isinstance(step, MapStep):
        i = bisect.bisect_right([iv.lo for iv in step.intervals], value) - 1
        if i >= 0 and step.intervals[i].hi >= value:
            return step.intervals[i].allow
        return None
    if step.ports and not any(
        p.protocol == proto and (p.port is None or p.port == port) for p in step.ports
    ):
        return None
    if step.cidr is not None:
        hit = dst in step.cidr
    else:
        hit = dst in members.get(step.set_name or "", set())
    return step.allow if hit else None


def evaluate(
    plan: Plan,
    src: Address,
    dst: Address,
    *,
    proto: str = "tcp",
    port: int | None = None,
    members: Mapping[str, set[Address]] | None = None,
) -> bool:
    """What the kernel does with a new connection, read off the plan (True = accepted)."""
    if any(dst.version == n.version and dst in n for n in plan.exempt):
        return True
    chain = next((c for net, c in plan.sources if src.version == net.version and src in net), None)
    if chain is None:
        return True
    ns_plan = next(p for p in plan.namespaces if p.chain == chain)
    for step in ns_plan.steps:
        verdict = _step_matches(step, dst, proto, port, members or {})
        if verdict is not None:
            return verdict
    return True


def address(value: int, family: int) -> Address:
    return ipaddress.IPv4Address(value) if family == 4 else ipaddress.IPv6Address(value)
