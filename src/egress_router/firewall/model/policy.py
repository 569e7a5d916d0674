"""Egress policies as the documents write them: parsing and validation into frozen values.

Owns: reading ``EgressNetworkPolicy`` (``network.openshift.io/v1``, also ``apiVersion: v1`` as
in the OpenShift 3 example) and OVN-Kubernetes ``EgressFirewall`` (``k8s.ovn.org/v1``, adds
``ports`` and IPv6) from JSON or YAML text, a ``List`` of them or multi-document YAML; every
rule checked, one ``PolicyError`` naming file, namespace, rule index (1-based) and field.
Must not: read files, resolve names or touch the kernel (callers pass text in).

Semantics kept from the references: rules are ordered, the first match decides, no match
allows; ``to`` is exactly one of ``cidrSelector`` or ``dnsName`` (optional one-label ``*.``
wildcard); ``type`` is exactly ``Allow`` or ``Deny`` (the CRD regex accepted ``AllowX``; we do
not). At most ``MAX_RULES`` rules per policy and one policy per namespace.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from egress_router.common import networks
from egress_router.common.documents import DocumentError, load_any
from egress_router.common.networks import CidrError, CidrPart, HostBits
from egress_router.common.values import (
    AliasKind,
    is_dns_name,
    normalize_name,
)
from egress_router.errors import PolicyError, brief

MAX_RULES = 8000  # the highest limit among the references (OVN-Kubernetes)
ENP = "EgressNetworkPolicy"
EF = "EgressFirewall"
API_VERSIONS = {ENP: ("network.openshift.io/v1", "v1"), EF: ("k8s.ovn.org/v1",)}
LIST_KINDS = ("List", "EgressNetworkPolicyList", "EgressFirewallList")
_NAMESPACE = re.compile(r"\A[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")  # DNS-1123 label
PROTOCOLS = ("TCP", "UDP", "SCTP")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAPPED_ONLY = frozenset({AliasKind.MAPPED})


class Action(StrEnum):
    """What a matching rule does."""

    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True)
class PortMatch:
    """One ``ports`` entry: a protocol (lower case) and optionally one port."""

    protocol: str
    port: int | None = None

    def __str__(self) -> str:
        return self.protocol if self.port is None else f"{self.protocol}/{self.port}"


@dataclass(frozen=True)
class Rule:
    """One egress rule; ``index`` is its 1-based position in ``spec.egress``."""

    index: int
    action: Action
    cidr: Network | None = None
    dns_name: str | None = None  # normalised: lower case, no trailing dot; may start "*."
    ports: tuple[PortMatch, ...] = ()

    @property
    def allow(self) -> bool:
        return self.action is Action.ALLOW

    def describe(self) -> str:
        """Short text for explanations: ``Deny 0.0.0.0/0``, ``Allow dnsName www.foo.com``."""
        target = str(self.cidr) if self.cidr is not None else f"dnsName {self.dns_name}"
        text = f"{self.action.value} {target}"
        if self.ports:
            text += " ports " + ",".join(str(p) for p in self.ports)
        return text


@dataclass(frozen=True)
class Policy:
    """One namespace's policy, rules in order."""

    namespace: str
    name: str
    kind: str
    source: str
    rules: tuple[Rule, ...]


def _fail(message: str, where: dict[str, Any], *, rule: int | None = None, field: str = "") -> Any:
    raise PolicyError(
        message,
        source=where["source"],
        namespace=where.get("namespace"),
        rule=rule,
        field=field or None,
    )


def load_documents(text: str, source: str) -> list[Any]:
    """The documents of one file: JSON (one value) or YAML (one or more documents), decoded
    within ``common.documents``' bounds (size, depth, alias expansion, duplicate keys)."""
    try:
        return load_any(text)
    except DocumentError as exc:
        raise PolicyError(f"not valid JSON or YAML: {exc}", source=source) from None


def _flatten(docs: Iterable[Any], source: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    docs = list(docs)
    for number, doc in enumerate(docs, 1):
        label = source if len(docs) == 1 else f"{source} (document {number})"
        if isinstance(doc, Mapping) and doc.get("kind") in LIST_KINDS:
            items = doc.get("items")
            if not isinstance(items, list):
                raise PolicyError("items: must be a list", source=label)
            out += [(f"{label} (item {i})", item) for i, item in enumerate(items, 1)]
        else:
            out.append((label, doc))
    return out


def parse_text(text: str, source: str, default_namespace: str | None = None) -> list[Policy]:
    """Every policy in one file's text (see the module docstring for the accepted forms)."""
    docs = _flatten(load_documents(text, source), source)
    if not docs:
        raise PolicyError("no policy in the file", source=source)
    return [parse_object(doc, label, default_namespace) for label, doc in docs]


def _str(value: Any, message: str, where: dict[str, Any], **kw: Any) -> str:
    if not isinstance(value, str) or not value:
        _fail(f"{message}, got {brief(value)}", where, **kw)
    return str(value)


def parse_object(doc: Any, source: str, default_namespace: str | None = None) -> Policy:
    """One policy object (already decoded from JSON/YAML)."""
    where: dict[str, Any] = {"source": source, "namespace": default_namespace}
    if not isinstance(doc, Mapping):
        _fail("the document must be an object", where)
    kind = doc.get("kind")
    if not isinstance(kind, str) or kind not in API_VERSIONS:
        _fail(f"must be {ENP} or {EF}, got {brief(kind)}", where, field="kind")
    api = doc.get("apiVersion")
    if api not in API_VERSIONS[kind]:
        want = " or ".join(API_VERSIONS[kind])
        _fail(f"must be {want} for {kind}, got {brief(api)}", where, field="apiVersion")
    meta = doc.get("metadata") or {}
    if not isinstance(meta, Mapping):
        _fail("must be an object", where, field="metadata")
    name = _str(meta.get("name"), "must be a non-empty string", where, field="metadata.name")
    if kind == EF and name != "default":
        _fail(
            f"an EgressFirewall must be named 'default', got {brief(name)}",
            where,
            field="metadata.name",
        )
    namespace = meta.get("namespace", default_namespace)
    if namespace is None:
        _fail("missing: give metadata.namespace or --namespace", where, field="metadata.namespace")
    if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
        _fail(f"not a valid namespace name: {brief(namespace)}", where, field="metadata.namespace")
    where["namespace"] = namespace
    spec = doc.get("spec")
    if not isinstance(spec, Mapping):
        _fail("must be an object with an egress list", where, field="spec")
    egress = spec.get("egress")
    if not isinstance(egress, list):
        _fail("must be a list of rules", where, field="spec.egress")
    if len(egress) > MAX_RULES:
        _fail(f"{len(egress)} rules exceed the limit of {MAX_RULES}", where, field="spec.egress")
    rules = tuple(_rule(item, i, kind, where) for i, item in enumerate(egress, 1))
    return Policy(namespace=str(namespace), name=name, kind=kind, source=source, rules=rules)


def _rule(item: Any, index: int, kind: str, where: dict[str, Any]) -> Rule:
    if not isinstance(item, Mapping):
        _fail("a rule must be an object", where, rule=index)
    allowed = {"type", "to"} | ({"ports"} if kind == EF else set())
    for key in item:
        if key not in allowed:
            hint = " (ports need kind EgressFirewall)" if key == "ports" else ""
            _fail(f"unknown field{hint}", where, rule=index, field=str(key))
    action_text = item.get("type")
    if action_text not in ("Allow", "Deny"):
        _fail(f"must be Allow or Deny, got {brief(action_text)}", where, rule=index, field="type")
    to = item.get("to")
    if not isinstance(to, Mapping):
        _fail("must be an object with cidrSelector or dnsName", where, rule=index, field="to")
    if "nodeSelector" in to:
        _fail("nodeSelector is not supported by this agent", where, rule=index, field="to")
    for key in to:
        if key not in ("cidrSelector", "dnsName"):
            _fail("unknown field", where, rule=index, field=f"to.{key}")
    present = [k for k in ("cidrSelector", "dnsName") if to.get(k) is not None]
    if len(present) != 1:
        what = "both" if present else "neither"
        _fail(
            f"exactly one of cidrSelector or dnsName is required, got {what}",
            where,
            rule=index,
            field="to",
        )
    cidr = dns = None
    if present[0] == "cidrSelector":
        cidr = _cidr(to["cidrSelector"], kind, index, where)
    else:
        dns = _dns_name(to["dnsName"], index, where)
    ports = _ports(item.get("ports"), index, where) if "ports" in item else ()
    return Rule(index=index, action=Action(action_text), cidr=cidr, dns_name=dns, ports=ports)


def parse_cidr(text: str, *, ipv6: bool = True) -> Network:
    """``A.B.C.D/N`` (N 0..32) or, when ``ipv6``, an IPv6 ``addr/N`` (N 0..128).

    Host bits are cleared (``1.2.3.4/24`` is ``1.2.3.0/24``), as the references' parsers do.
    ``::ffff:a.b.c.d/N+96`` reaches IPv4 hosts, which the kernel sends as IPv4 packets: an ip6
    rule for it would match nothing, so it is the IPv4 rule ``a.b.c.d/N``.
    Raises ``ValueError`` with the reason.
    """
    return _network(text, prefix_required=True, ipv6=ipv6)


def parse_network(text: str) -> Network:
    """``parse_cidr``, but a bare address is its host network (/32 or /128)."""
    return _network(text, prefix_required=False, ipv6=True)


def _network(text: str, *, prefix_required: bool, ipv6: bool) -> Network:
    try:
        return networks.parse_cidr(
            text,
            host_bits=HostBits.CLEAR,
            prefix_required=prefix_required,
            ipv6=ipv6,
            unalias=MAPPED_ONLY,
        ).network
    except CidrError as exc:
        if exc.part is CidrPart.FAMILY:
            raise ValueError("IPv6 needs kind EgressFirewall") from None
        raise


def _cidr(value: Any, kind: str, index: int, where: dict[str, Any]) -> Network:
    text = _str(value, "must be a CIDR string", where, rule=index, field="to.cidrSelector")
    try:
        return parse_cidr(text, ipv6=kind == EF)
    except ValueError as exc:
        return _fail(f"{exc}: {brief(text)}", where, rule=index, field="to.cidrSelector")  # type: ignore[no-any-return]


def _dns_name(value: Any, index: int, where: dict[str, Any]) -> str:
    text = _str(value, "must be a DNS name", where, rule=index, field="to.dnsName")
    wildcard = text.startswith("*.")
    base = text[2:] if wildcard else text
    if not is_dns_name(base, min_labels=2 if wildcard else 1):
        what = "a wildcard needs *. and at least two labels" if wildcard else "not a DNS name"
        _fail(f"{what}: {brief(text)}", where, rule=index, field="to.dnsName")
    return ("*." if wildcard else "") + normalize_name(base)


def _ports(value: Any, index: int, where: dict[str, Any]) -> tuple[PortMatch, ...]:
    if not isinstance(value, list) or not value:
        _fail("must be a non-empty list", where, rule=index, field="ports")
    out = []
    for i, entry in enumerate(value):
        field = f"ports[{i}]"
        if not isinstance(entry, Mapping) or set(entry) - {"protocol", "port"}:
            _fail("must be an object with protocol and port", where, rule=index, field=field)
        proto = entry.get("protocol")
        if proto not in PROTOCOLS:
            msg = f"must be TCP, UDP or SCTP, got {brief(proto)}"
            _fail(msg, where, rule=index, field=f"{field}.protocol")
        port = entry.get("port")
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535
        ):
            _fail(f"must be 1-65535, got {brief(port)}", where, rule=index, field=f"{field}.port")
        out.append(PortMatch(str(proto).lower(), port))
    return tuple(out)


def render_policy(policy: Policy) -> dict[str, Any]:
    """The document that parses back to ``policy`` (JSON- and YAML-ready plain data)."""
    rules: list[dict[str, Any]] = []
    for rule in policy.rules:
        to = (
            {"cidrSelector": str(rule.cidr)}
            if rule.cidr is not None
            else {"dnsName": str(rule.dns_name)}
        )
        item: dict[str, Any] = {"type": rule.action.value, "to": to}
        if rule.ports:
            item["ports"] = [
                {"protocol": p.protocol.upper(), **({} if p.port is None else {"port": p.port})}
                for p in rule.ports
            ]
        rules.append(item)
    return {
        "kind": policy.kind,
        "apiVersion": API_VERSIONS[policy.kind][0],
        "metadata": {"name": policy.name, "namespace": policy.namespace},
        "spec": {"egress": rules},
    }


def index_by_namespace(policies: Iterable[Policy]) -> dict[str, Policy]:
    """One policy per namespace: a second one for the same namespace is an error."""
    by_ns: dict[str, Policy] = {}
    for policy in policies:
        first = by_ns.get(policy.namespace)
        if first is not None:
            raise PolicyError(
                f"a second policy for this namespace (the first is {first.name!r} in "
                f"{first.source}); only one policy per namespace is allowed",
                source=policy.source,
                namespace=policy.namespace,
                field="metadata.namespace",
            )
        by_ns[policy.namespace] = policy
    return by_ns
