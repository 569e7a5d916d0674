"""The API-fed agent's pure part: watched objects -> view -> what to apply, and status texts."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress_router.firewall.model.cluster import (
    APPLIED,
    NOT_APPLIED,
    ClusterView,
    PolicyKey,
    Reason,
    desire,
    fold,
    node_message,
    pod_entry,
    status_update,
    warnings,
)

NODE = "worker-1"
EF_KIND, ENP_KIND = "EgressFirewall", "EgressNetworkPolicy"


def policy(
    namespace: str,
    name: str = "default",
    *,
    rules: list[dict[str, Any]] | None = None,
    created: str = "2026-01-01T00:00:00Z",
    generation: int = 1,
    uid: str | None = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or f"{namespace}-{name}",
            "creationTimestamp": created,
            "generation": generation,
            "resourceVersion": str(generation),
        },
        "spec": {"egress": rules or [{"type": "Deny", "to": {"cidrSelector": "0.0.0.0/0"}}]},
    }
    if status is not None:
        obj["status"] = status
    return obj


def pod(
    namespace: str,
    name: str,
    *ips: str,
    node: str = NODE,
    phase: str = "Running",
    host_network: bool = False,
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"nodeName": node, "hostNetwork": host_network},
        "status": {"phase": phase, "podIPs": [{"ip": ip} for ip in ips]},
    }


def view_of(
    *,
    efs: list[dict[str, Any]] = (),  # type: ignore[assignment]
    enps: list[dict[str, Any]] = (),  # type: ignore[assignment]
    pods: list[dict[str, Any]] = (),  # type: ignore[assignment]
    namespaces: tuple[str, ...] = ("a", "b"),
) -> ClusterView:
    view = ClusterView(NODE)
    view.update("egressfirewalls", "SYNC", {"items": list(efs)})
    view.update("egressnetworkpolicies", "SYNC", {"items": list(enps)})
    view.update("pods", "SYNC", {"items": list(pods)})
    view.update("namespaces", "SYNC", {"items": [{"metadata": {"name": n}} for n in namespaces]})
    return view


def test_not_ready_until_every_resource_listed() -> None:
    view = ClusterView(NODE)
    for resource in ("egressfirewalls", "egressnetworkpolicies", "namespaces"):
        view.update(resource, "SYNC", {"items": []})
        assert not view.ready
    view.update("pods", "SYNC", {"items": []})
    assert view.ready


def test_policy_and_pods_become_what_to_apply() -> None:
    view = view_of(
        efs=[policy("a")], pods=[pod("a", "p1", "198.18.0.5"), pod("b", "p2", "198.18.0.6")]
    )
    desired = desire(view, [ipaddress.ip_network("198.18.0.0/16")])
    assert list(desired.policies) == ["a"]
    assert desired.node.pods == ((("a", ipaddress.ip_network("198.18.0.5/32")),))
    assert desired.node.exempt == (ipaddress.ip_network("198.18.0.0/16"),)
    assert desired.in_force == {"a": PolicyKey(EF_KIND, "a", "default")}
    assert desired.problems == {}


def test_pod_addresses_are_exempt_destinations_like_pods_flag() -> None:
    desired = desire(view_of(efs=[policy("a")], pods=[pod("a", "p", "203.0.113.9")]))
    assert desired.node.exempt == (ipaddress.ip_network("203.0.113.9/32"),)


@pytest.mark.parametrize(
    ("obj", "addresses"),
    [
        (pod("a", "p", "198.18.0.5"), ("198.18.0.5",)),
        (pod("a", "p", "198.18.0.5", "2001:db8::5"), ("198.18.0.5", "2001:db8::5")),
        (pod("a", "p", "::ffff:198.18.0.5"), ("198.18.0.5",)),  # IPv4-mapped: the IPv4 address
        (pod("a", "p", "198.18.0.5", "198.18.0.5"), ("198.18.0.5",)),
        (pod("a", "p", "198.18.0.5", node="worker-2"), None),  # another node's pod
        (pod("a", "p", "198.18.0.5", host_network=True), None),  # the node's own traffic
        (pod("a", "p", "198.18.0.5", phase="Succeeded"), None),  # its address may be reused
        (pod("a", "p", "198.18.0.5", phase="Failed"), None),
        (pod("a", "p"), None),  # no address yet
        (pod("a", "p", "not-an-ip"), None),
        (pod("a", "p", "1٢.0.0.1"), None),  # non-ASCII digits
    ],
)
def test_pod_entry(obj: dict[str, Any], addresses: tuple[str, ...] | None) -> None:
    entry = pod_entry(obj, NODE)
    if addresses is None:
        assert entry is None
    else:
        assert entry is not None
        assert tuple(map(str, entry.addresses)) == addresses


def test_pod_ip_fallback_to_pod_ip_field() -> None:
    obj = pod("a", "p")
    obj["status"]["podIP"] = "198.18.0.7"
    entry = pod_entry(obj, NODE)
    assert entry is not None and str(entry.addresses[0]) == "198.18.0.7"


def test_events_update_and_delete() -> None:
    view = view_of()
    view.update("pods", "ADDED", pod("a", "p", "198.18.0.5"))
    view.update("egressfirewalls", "ADDED", policy("a"))
    assert desire(view).node.pods
    view.update("pods", "MODIFIED", pod("a", "p", "198.18.0.5", phase="Succeeded"))
    assert not desire(view).node.pods
    view.update("pods", "MODIFIED", pod("a", "p", "198.18.0.6"))
    view.update("egressfirewalls", "DELETED", policy("a"))
    assert desire(view).policies == {}
    view.update("namespaces", "DELETED", {"metadata": {"name": "a"}})
    view.update("egressfirewalls", "ADDED", policy("a"))
    assert desire(view).policies == {}  # a namespace we have not seen (yet): nothing


def test_sync_replaces_only_its_own_resource() -> None:
    view = view_of(efs=[policy("a")], enps=[policy("b")])
    view.update("egressfirewalls", "SYNC", {"items": []})
    assert [k.kind for k in view.policies] == [ENP_KIND]


def test_second_policy_refused_first_stays() -> None:
    first = policy("a", "default", created="2026-01-01T00:00:00Z")
    second = policy("a", "other", created="2026-01-01T00:00:05Z")
    view = view_of(enps=[second, first])
    desired = desire(view)
    assert desired.in_force["a"].name == "default"
    assert desired.problems[PolicyKey(ENP_KIND, "a", "other")].startswith(
        "only one policy per namespace is allowed: EgressNetworkPolicy default is in force in a"
    )
    # what is in force stays in force, even when an older one appears later (e.g. both kinds)
    view.update("egressfirewalls", "ADDED", policy("a", created="2025-01-01T00:00:00Z"))
    again = desire(view, in_force=desired.in_force)
    assert again.in_force["a"] == PolicyKey(ENP_KIND, "a", "default")
    assert PolicyKey(EF_KIND, "a", "default") in again.problems
    # the first removed: the next one takes over
    view.update("egressnetworkpolicies", "DELETED", first)
    assert desire(view, in_force=desired.in_force).in_force["a"] == PolicyKey(
        EF_KIND, "a", "default"
    )


def test_invalid_policy_keeps_last_good() -> None:
    good = policy("a", rules=[{"type": "Allow", "to": {"cidrSelector": "203.0.113.0/24"}}])
    view = view_of(efs=[good])
    first = desire(view)
    last_good = {k: first.policies[ns] for ns, k in first.in_force.items()}
    bad = policy("a", generation=2, rules=[{"type": "Allow", "to": {"dnsName": "bad_name!"}}])
    view.update("egressfirewalls", "MODIFIED", bad)
    second = desire(view, in_force=first.in_force, last_good=last_good)
    key = PolicyKey(EF_KIND, "a", "default")
    assert second.policies["a"] == first.policies["a"]
    assert "to.dnsName" in second.problems[key]
    assert second.problems[key].endswith("the previous rules stay in force")
    # without a last good policy: nothing applied for the namespace, and it says so
    fresh = desire(view)
    assert fresh.policies == {} and fresh.problems[key].endswith("no rules applied")


def test_warnings_name_each_problem_once() -> None:
    first = policy("a", "default", created="2026-01-01T00:00:00Z")
    second = policy("a", "other", created="2026-01-01T00:00:05Z")
    bad = policy("b", rules=[{"type": "Allow", "to": {"dnsName": "bad_name!"}}])
    view = view_of(enps=[first, second], efs=[bad])
    desired = desire(view)
    found = {(w.key.namespace, w.key.name): w for w in warnings(NODE, view, desired, None)}
    assert set(found) == {("a", "other"), ("b", "default")}
    refused, invalid = found["a", "other"], found["b", "default"]
    assert refused.reason is Reason.REFUSED and invalid.reason is Reason.INVALID
    assert refused.message == node_message(NODE, desired.problems[refused.key])
    assert "to.dnsName" in invalid.message and refused.uid == "a-other"
    # the same problem again (another reconcile, a restart): the same event name
    again = {
        w.name for w in warnings(NODE, view_of(enps=[first, second], efs=[bad]), desired, None)
    }
    assert again == {refused.name, invalid.name}
    # the kernel refused: the policies in force get an ApplyFailed; a new uid is a new event
    failed = warnings(NODE, view, desired, "nftables refused the ruleset: x")
    applied = [w for w in failed if w.reason is Reason.APPLY_FAILED]
    assert [w.key.name for w in applied] == ["default"] and applied[0].key.namespace == "a"
    assert applied[0].message.endswith("x; the previous rules stay in force")
    renewed = view_of(enps=[first, policy("a", "other", uid="new")], efs=[bad])
    names = {w.name for w in warnings(NODE, renewed, desire(renewed), None)}
    assert refused.name not in names and invalid.name in names
    assert all(len(w.name) <= 253 and w.name.startswith(w.key.name + ".") for w in failed)


def test_status_only_change_does_not_reparse() -> None:
    view = view_of(efs=[policy("a")])
    before = view.policies[PolicyKey(EF_KIND, "a", "default")]
    view.update("egressfirewalls", "MODIFIED", policy("a", status={"status": APPLIED}))
    after = view.policies[PolicyKey(EF_KIND, "a", "default")]
    assert after.policy is before.policy and after.status == APPLIED


def test_duplicate_pod_address_first_wins() -> None:
    view = view_of(efs=[policy("a"), policy("b")])
    view.update("pods", "ADDED", pod("a", "old", "198.18.0.5"))
    view.update("pods", "ADDED", pod("b", "new", "198.18.0.5"))
    assert [ns for ns, _ in desire(view).node.pods] == ["a"]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (None, f"{NODE}: EgressFirewall Rules applied"),
        ("boom", f"{NODE}: EgressFirewall Rules not correctly applied: boom"),
        ("two\nlines", f"{NODE}: EgressFirewall Rules not correctly applied: two lines"),
    ],
)
def test_node_message(error: str | None, message: str) -> None:
    assert node_message(NODE, error) == message


def test_node_message_is_bounded() -> None:
    assert len(node_message(NODE, "x" * 100_000)) < 1100


@pytest.mark.parametrize(
    ("messages", "status"),
    [
        ([], APPLIED),
        ([f"n1: {APPLIED}", f"n2: {APPLIED}"], APPLIED),
        ([f"n1: {APPLIED}", f"n2: {NOT_APPLIED}: x"], NOT_APPLIED),
    ],
)
def test_fold(messages: list[str], status: str) -> None:
    assert fold(messages) == status


def test_status_update_only_when_needed() -> None:
    view = view_of(efs=[policy("a", status={"messages": [f"n2: {NOT_APPLIED}: x"]})])
    entry = view.policies[PolicyKey(EF_KIND, "a", "default")]
    assert status_update(NODE, entry, None) == {
        "messages": [f"{NODE}: {APPLIED}"],
        "status": NOT_APPLIED,  # another node failed
    }
    done = {"messages": [f"n2: {APPLIED}", f"{NODE}: {APPLIED}"], "status": APPLIED}
    view.update("egressfirewalls", "MODIFIED", policy("a", status=done))
    entry = view.policies[PolicyKey(EF_KIND, "a", "default")]
    assert status_update(NODE, entry, None) is None
    assert status_update(NODE, entry, "boom") == {
        "messages": [f"{NODE}: {NOT_APPLIED}: boom"],
        "status": NOT_APPLIED,
    }


_values = st.recursive(
    st.none() | st.text(max_size=8) | st.integers() | st.booleans(),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=10,
)
_keys = st.sampled_from(["metadata", "spec", "status", "name", "namespace", "nodeName", "podIPs"])
_objects = st.dictionaries(_keys | st.text(max_size=5), _values | st.dictionaries(_keys, _values))


@given(_objects)
def test_any_object_is_handled(obj: dict[str, Any]) -> None:
    """Whatever the watches deliver, the view takes it without an exception of its own."""
    view = view_of()
    for resource in ("egressfirewalls", "egressnetworkpolicies", "pods", "namespaces"):
        for kind in ("ADDED", "MODIFIED", "DELETED"):
            try:
                view.update(resource, kind, obj)
            except (TypeError, ValueError, AttributeError) as exc:  # pragma: no cover
                raise AssertionError(f"{resource} {kind}: {exc!r}") from exc
    desire(view)
