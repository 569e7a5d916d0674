"""The node agent's view of the cluster, and what it makes of it: pure, no I/O.

Owns: turning watched objects (EgressFirewall, EgressNetworkPolicy, Namespace, Pod as the API
server sends them) into entries; the ``ClusterView`` they are kept in (a complete listing
replaces everything of its resource, a change updates one entry); ``desire``: which policy is in
force in each namespace and the node's pod addresses per namespace, i.e. exactly what
``Agent.apply`` takes; and the status every policy should carry from this node, in
OVN-Kubernetes' form (``"<node>: EgressFirewall Rules applied"`` or ``"<node>: EgressFirewall
Rules not correctly applied: <error>"`` in ``status.messages``, folded into ``status.status``).
Must not: talk to the API server or the kernel (``firewall.cluster`` and ``egress_router.kube``).

Decisions, each unlike the reference where it failed users:
- one policy per namespace: the one in force stays in force; another one (the younger, by
  ``creationTimestamp`` then kind and name, after a restart) is refused with a message on it,
  instead of dropping all of the namespace's traffic;
- a policy that does not validate keeps the rules last applied from it (a failed reload keeps
  the last good) and says so in its status;
- only the pods of this node that can send: not ``hostNetwork``, not ``Succeeded``/``Failed``
  (their addresses may already belong to another pod), with addresses normalised
  (an IPv4-mapped IPv6 address is the IPv4 address).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from egress_router.errors import PolicyError
from egress_router.firewall.model.decide import Address, NodeConfig
from egress_router.firewall.model.policy import API_VERSIONS, EF, ENP, Network, Policy, parse_object

APPLIED = "EgressFirewall Rules applied"
NOT_APPLIED = "EgressFirewall Rules not correctly applied"
MAX_ERROR = 1000  # characters of an error in a status message (the CRD allows 32768 per entry)

# The resources the agent watches, by plural, and the policy kind each one holds.
POLICY_RESOURCES = {"egressfirewalls": EF, "egressnetworkpolicies": ENP}
NAMESPACES, PODS = "namespaces", "pods"


class PolicyKey(NamedTuple):
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class PolicyEntry:
    """One policy object: parsed (``policy``) or refused by our validation (``error``)."""

    key: PolicyKey
    uid: str
    created: str  # RFC 3339 UTC, so text order is time order
    generation: int
    version: str  # metadata.resourceVersion
    policy: Policy | None
    error: str | None
    messages: tuple[str, ...] = ()  # status.messages as stored
    status: str = ""  # status.status as stored

    @property
    def order(self) -> tuple[str, str, str]:
        return (self.created, self.key.kind, self.key.name)


@dataclass(frozen=True)
class PodEntry:
    namespace: str
    name: str
    addresses: tuple[Address, ...]


def normalize(text: str) -> Address:
    """A pod address as the kernel sees it; ``ValueError`` when it is not one."""
    address = ipaddress.ip_address(text.strip()) if text.isascii() else None
    if address is None:
        raise ValueError(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def policy_entry(
    kind: str, obj: Mapping[str, Any], previous: PolicyEntry | None = None
) -> PolicyEntry:
    """Parse one policy object (a list item carries no kind: ``kind`` says it).

    The spec is parsed again only when it changed (uid or generation), so a status update of
    an 8,000-rule policy costs nothing.
    """
    meta = _meta(obj)
    key = PolicyKey(kind, str(meta.get("namespace", "")), str(meta.get("name", "")))
    uid, generation = str(meta.get("uid", "")), meta.get("generation")
    generation = generation if isinstance(generation, int) else 0
    status = obj.get("status") if isinstance(obj.get("status"), Mapping) else {}
    assert isinstance(status, Mapping)
    raw_messages = status.get("messages")
    messages = (
        tuple(m for m in raw_messages if isinstance(m, str))
        if isinstance(raw_messages, list)
        else ()
    )
    if previous is not None and (previous.uid, previous.generation) == (uid, generation):
        policy, error = previous.policy, previous.error
    else:
        document = {**obj, "kind": kind, "apiVersion": API_VERSIONS[kind][0]}
        try:
            policy, error = parse_object(document, str(key)), None
        except PolicyError as exc:
            policy, error = None, exc.one_line()
    return PolicyEntry(
        key=key,
        uid=uid,
        created=str(meta.get("creationTimestamp", "")),
        generation=generation,
        version=str(meta.get("resourceVersion", "")),
        policy=policy,
        error=error,
        messages=messages,
        status=str(status.get("status") or ""),
    )


def pod_entry(obj: Mapping[str, Any], node: str) -> PodEntry | None:
    """The pod as the firewall sees it, or ``None`` if none of its traffic is ours to filter."""
    meta = _meta(obj)
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    status = obj.get("status") if isinstance(obj.get("status"), Mapping) else {}
    assert isinstance(spec, Mapping) and isinstance(status, Mapping)
    if spec.get("nodeName") != node or spec.get("hostNetwork") is True:
        return None
    if status.get("phase") in ("Succeeded", "Failed"):
        return None
    texts = [p.get("ip") for p in status.get("podIPs") or [] if isinstance(p, Mapping)]
    if not texts and status.get("podIP"):
        texts = [status.get("podIP")]
    addresses: list[Address] = []
    for text in texts:
        try:
            address = normalize(str(text))
        except ValueError:
            continue  # the API server validates podIPs; anything else is not a pod address
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        return None
    return PodEntry(str(meta.get("namespace", "")), str(meta.get("name", "")), tuple(addresses))


@dataclass
class ClusterView:
    """What the watches have told us so far (``synced``: resources listed at least once)."""

    node: str
    policies: dict[PolicyKey, PolicyEntry] = field(default_factory=dict)
    pods: dict[tuple[str, str], PodEntry] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=set)
    synced: set[str] = field(default_factory=set)

    @property
    def ready(self) -> bool:
        """Every resource listed once: only then is an empty view really empty."""
        return self.synced >= {*POLICY_RESOURCES, NAMESPACES, PODS}

    def update(self, resource: str, kind: str, obj: Mapping[str, Any]) -> None:
        """One watch event: ``SYNC`` (``obj["items"]``), ``ADDED``, ``MODIFIED``, ``DELETED``."""
        if kind == "SYNC":
            self.synced.add(resource)
            self._clear(resource)
            for item in obj.get("items") or []:
                if isinstance(item, Mapping):
                    self._put(resource, item)
        elif kind == "DELETED":
            self._delete(resource, obj)
        else:
            self._put(resource, obj)

    def _clear(self, resource: str) -> None:
        if resource in POLICY_RESOURCES:
            kind = POLICY_RESOURCES[resource]
            self.policies = {k: v for k, v in self.policies.items() if k.kind != kind}
        elif resource == PODS:
            self.pods.clear()
        elif resource == NAMESPACES:
            self.namespaces.clear()

    def _put(self, resource: str, obj: Mapping[str, Any]) -> None:
        meta = _meta(obj)
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        if resource in POLICY_RESOURCES:
            kind = POLICY_RESOURCES[resource]
            key = PolicyKey(kind, namespace, name)
            self.policies[key] = policy_entry(kind, obj, self.policies.get(key))
        elif resource == PODS:
            entry = pod_entry(obj, self.node)
            if entry is None:
                self.pods.pop((namespace, name), None)
            else:
                self.pods[(namespace, name)] = entry
        elif resource == NAMESPACES:
            self.namespaces.add(name)

    def _delete(self, resource: str, obj: Mapping[str, Any]) -> None:
        meta = _meta(obj)
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        if resource in POLICY_RESOURCES:
            self.policies.pop(PolicyKey(POLICY_RESOURCES[resource], namespace, name), None)
        elif resource == PODS:
            self.pods.pop((namespace, name), None)
        elif resource == NAMESPACES:
            self.namespaces.discard(name)


class Reason(StrEnum):
    """Why a policy is not (correctly) applied: the ``reason`` of its Warning event."""

    REFUSED = "PolicyRefused"  # a second policy in a namespace that has one in force
    INVALID = "PolicyInvalid"  # the policy does not validate (our checks, stricter than a CRD)
    APPLY_FAILED = "ApplyFailed"  # the kernel of this node refused the ruleset


@dataclass(frozen=True)
class Desired:
    """What to apply (``policies`` and ``node`` for ``Agent.apply``) and why."""

    policies: dict[str, Policy]
    node: NodeConfig
    in_force: dict[str, PolicyKey]  # namespace -> the policy whose rules are in force
    problems: dict[PolicyKey, str]  # policy -> why it is not (correctly) applied
    reasons: dict[PolicyKey, Reason] = field(default_factory=dict)  # the kind of each problem


def _host(address: Address) -> Network:
    return ipaddress.ip_network(address)


def _inside(inner: Network, outer: Network) -> bool:
    return inner.version == outer.version and inner.network_address in outer


def desire(
    view: ClusterView,
    exempt: Iterable[Network] = (),
    in_force: Mapping[str, PolicyKey] | None = None,
    last_good: Mapping[PolicyKey, Policy] | None = None,
) -> Desired:
    """The rules this node must enforce, from the view and what is in force now."""
    in_force, last_good = in_force or {}, last_good or {}
    by_namespace: dict[str, list[PolicyEntry]] = {}
    for entry in view.policies.values():
        if entry.key.namespace in view.namespaces:
            by_namespace.setdefault(entry.key.namespace, []).append(entry)
    policies: dict[str, Policy] = {}
    chosen: dict[str, PolicyKey] = {}
    problems: dict[PolicyKey, str] = {}
    reasons: dict[PolicyKey, Reason] = {}
    for namespace, entries in sorted(by_namespace.items()):
        current = in_force.get(namespace)
        entries.sort(key=lambda e: (e.key != current, e.order))
        first = entries[0]
        for other in entries[1:]:
            problems[other.key] = (
                f"only one policy per namespace is allowed: {first.key.kind} "
                f"{first.key.name} is in force in {namespace}"
            )
            reasons[other.key] = Reason.REFUSED
        if first.policy is not None:
            policies[namespace], chosen[namespace] = first.policy, first.key
        else:
            kept = last_good.get(first.key)
            note = "; the previous rules stay in force" if kept else "; no rules applied"
            problems[first.key] = f"{first.error}{note}"
            reasons[first.key] = Reason.INVALID
            if kept is not None:
                policies[namespace], chosen[namespace] = kept, first.key
    pods: list[tuple[str, Network]] = []
    seen: set[Address] = set()
    for (namespace, _), pod in sorted(view.pods.items()):
        if namespace not in policies:
            continue
        for address in pod.addresses:
            if address not in seen:  # an address reused before the old pod's deletion: first wins
                seen.add(address)
                pods.append((namespace, _host(address)))
    exempt_nets = list(exempt)
    # A pod's own address is a cluster address, never filtered as a destination (as --pods).
    exempt_nets += [net for _, net in pods if not any(_inside(net, e) for e in exempt_nets)]
    node = NodeConfig(pods=tuple(pods), exempt=tuple(exempt_nets))
    return Desired(
        policies=policies, node=node, in_force=chosen, problems=problems, reasons=reasons
    )


# -- status ---------------------------------------------------------------------------------------


def node_message(node: str, error: str | None) -> str:
    """This node's entry in ``status.messages``."""
    if error is None:
        return f"{node}: {APPLIED}"
    text = " ".join(error.split())
    if len(text) > MAX_ERROR:
        text = text[: MAX_ERROR - 3] + "..."
    return f"{node}: {NOT_APPLIED}: {text}"


def fold(messages: Iterable[str]) -> str:
    """``status.status``: the failure text if any node failed, else the success text."""
    return NOT_APPLIED if any(f": {NOT_APPLIED}" in m for m in messages) else APPLIED


def status_update(node: str, entry: PolicyEntry, error: str | None) -> dict[str, Any] | None:
    """The status fields to apply as this node, or ``None`` when the stored ones are right."""
    mine = node_message(node, error)
    others = [m for m in entry.messages if not m.startswith(f"{node}: ")]
    folded = fold([*others, mine])
    ours = [m for m in entry.messages if m.startswith(f"{node}: ")]
    if ours == [mine] and entry.status == folded:
        return None
    return {"messages": [mine], "status": folded}


# -- events ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyWarning:
    """A Warning event to post on a policy object, once (``name`` is its identity)."""

    key: PolicyKey
    uid: str
    reason: Reason
    message: str
    name: str  # the Event's name: the same problem always gets the same name


def warning(node: str, entry: PolicyEntry, reason: Reason, problem: str) -> PolicyWarning:
    """The event for ``problem`` of ``entry`` on ``node``.

    Its name is derived from the object's uid, the node, the reason and the message, so the
    same problem is posted once (another reconcile, or a restarted agent, finds it exists),
    and a new problem, or the same again on a new object, is a new event.
    """
    message = node_message(
        node, problem
    )  # as in its status: "<node>: ... not correctly applied: why"
    digest = hashlib.sha256(
        "\0".join((entry.uid, node, reason.value, message)).encode()
    ).hexdigest()[:16]
    # an Event name is a DNS subdomain (253 characters); a policy name is at most 253 itself
    name = f"{entry.key.name[:200]}.{digest}"
    return PolicyWarning(entry.key, entry.uid, reason, message, name)


def warnings(
    node: str, view: ClusterView, desired: Desired, kernel_error: str | None
) -> list[PolicyWarning]:
    """The Warning events the current problems call for (refused, invalid, failed to apply)."""
    out = []
    for key, entry in sorted(view.policies.items()):
        if key.namespace not in view.namespaces:
            continue
        reason, problem = desired.reasons.get(key), desired.problems.get(key)
        if reason is None and kernel_error and key in desired.in_force.values():
            reason, problem = (
                Reason.APPLY_FAILED,
                f"{kernel_error}; the previous rules stay in force",
            )
        if reason is not None and problem is not None:
            out.append(warning(node, entry, reason, problem))
    return out
