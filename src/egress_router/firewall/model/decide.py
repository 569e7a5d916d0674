"""The node's view (which pods belong to which namespace) and the reference decision function.

Owns: parsing ``--pods NAMESPACE=CIDR[,CIDR...]`` and the exempt ``--cluster-cidr`` /
``--service-cidr`` lists into a ``NodeConfig``; deciding one packet by the policies, written
as plainly as the semantics read (exempt networks, then the source's namespace, then its
rules in order, first match decides, no match allows). ``explain`` prints this, and the
property tests hold the compiled nftables plan to it.
Must not: resolve names or touch the kernel.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from egress_router.common.values import unmap_address
from egress_router.errors import VariableError
from egress_router.firewall.model.policy import _NAMESPACE, Network, Policy, Rule, parse_network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Members = Callable[[str, Rule, Address], bool]  # (namespace, dnsName rule, address) -> in set?


@dataclass(frozen=True)
class NodeConfig:
    """Pod networks per namespace, and the networks that are never filtered."""

    pods: tuple[tuple[str, Network], ...] = ()
    exempt: tuple[Network, ...] = ()

    def namespace_of(self, address: Address) -> str | None:
        address = unmap_address(address)  # a dual-stack socket's ::ffff:a.b.c.d is a.b.c.d
        for namespace, net in self.pods:
            if address.version == net.version and address in net:
                return namespace
        return None

    def is_exempt(self, address: Address) -> bool:
        address = unmap_address(address)
        return any(address.version == n.version and address in n for n in self.exempt)

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ns for ns, _ in self.pods))


def _cidrs(flag: str, text: str) -> list[Network]:
    out = []
    for part in text.split(","):
        part = part.strip(" \t")
        try:
            out.append(parse_network(part))
        except ValueError as exc:
            raise VariableError(flag, str(exc), text=part) from exc
    return out


def _within(inner: Network, outer: Network) -> bool:
    return inner.version == outer.version and (
        inner.network_address in outer and inner.broadcast_address in outer
    )


def parse_node(
    pods: Iterable[str], cluster: Iterable[str] = (), service: Iterable[str] = ()
) -> NodeConfig:
    """``--pods``/``--cluster-cidr``/``--service-cidr`` values (repeatable or comma lists)."""
    mapping: list[tuple[str, Network]] = []
    for value in pods:
        namespace, eq, cidrs = value.partition("=")
        if not eq or not _NAMESPACE.match(namespace):
            raise VariableError(
                "--pods",
                "expected NAMESPACE=CIDR[,CIDR...]",
                text=value,
                expected="myproj=10.0.0.0/24",
            )
        for net in _cidrs("--pods", cidrs):
            for other_ns, other in mapping:
                if other.version == net.version and other.overlaps(net) and other_ns != namespace:
                    raise VariableError(
                        "--pods", f"{net} overlaps {other} of namespace {other_ns}", text=value
                    )
            mapping.append((namespace, net))
    exempt = [n for v in cluster for n in _cidrs("--cluster-cidr", v)]
    exempt += [n for v in service for n in _cidrs("--service-cidr", v)]
    # The pods' own addresses are cluster addresses too, even if --cluster-cidr is omitted.
    exempt += [net for _, net in mapping if not any(_within(net, e) for e in exempt)]
    return NodeConfig(pods=tuple(mapping), exempt=tuple(exempt))


@dataclass(frozen=True)
class Verdict:
    """The outcome for one packet, with the reason as ``explain`` prints it."""

    allowed: bool
    reason: str
    namespace: str | None = None
    rule: Rule | None = None

    def __str__(self) -> str:
        return f"{'allow' if self.allowed else 'deny'}: {self.reason}"


def name_matches(pattern: str, name: str) -> bool:
    """``www.foo.com`` matches itself; ``*.foo.com`` matches exactly one more label."""
    name = name.lower().removesuffix(".")
    if pattern.startswith("*."):
        head, dot, rest = name.partition(".")
        return bool(head) and bool(dot) and rest == pattern[2:]
    return name == pattern


def rule_matches(
    rule: Rule,
    dst: Address,
    *,
    namespace: str,
    name: str | None = None,
    proto: str = "tcp",
    port: int | None = None,
    members: Members | None = None,
) -> bool:
    """Does ``rule`` match a packet to ``dst`` (learned as ``name``, if given)?"""
    if rule.ports and not any(
        p.protocol == proto and (p.port is None or p.port == port) for p in rule.ports
    ):
        return False
    if rule.cidr is not None:
        return dst.version == rule.cidr.version and dst in rule.cidr
    assert rule.dns_name is not None
    if name is not None and name_matches(rule.dns_name, name):
        return True
    return members is not None and members(namespace, rule, dst)


def decide(
    policies: Mapping[str, Policy],
    node: NodeConfig,
    src: Address,
    dst: Address,
    *,
    name: str | None = None,
    proto: str = "tcp",
    port: int | None = None,
    members: Members | None = None,
) -> Verdict:
    """The verdict for a new connection from pod ``src`` to ``dst``.

    ``::ffff:a.b.c.d`` is decided as ``a.b.c.d``: that is the packet the kernel sends.
    """
    src, dst = unmap_address(src), unmap_address(dst)
    if node.is_exempt(dst):
        return Verdict(True, "cluster network exempt")
    namespace = node.namespace_of(src)
    if namespace is None:
        return Verdict(True, f"source {src} is in no namespace given by --pods (not filtered)")
    policy = policies.get(namespace)
    if policy is None:
        return Verdict(True, f"namespace {namespace} has no policy (default allow)", namespace)
    for rule in policy.rules:
        if rule_matches(
            rule, dst, namespace=namespace, name=name, proto=proto, port=port, members=members
        ):
            reason = f"namespace {namespace} rule {rule.index} ({rule.describe()})"
            return Verdict(rule.allow, reason, namespace, rule)
    return Verdict(True, "no rule matched (default allow)", namespace)
