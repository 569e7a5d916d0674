"""deploy/crds against the real kube-apiserver: the documents' objects are accepted, bad shapes
refused by the API server itself (OpenAPI formats, enums, CEL rules) with the field named."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from egress_router.cni.model.egressrouter import parse_egressrouter, render
from tests import reference_examples as ref

# The session control plane may start inside the first test here (20-90 s on a busy machine).
pytestmark = pytest.mark.timeout(300)

ER = ("network.operator.openshift.io", "v1", "egressrouters")
ENP = ("network.openshift.io", "v1", "egressnetworkpolicies")
EF = ("k8s.ovn.org", "v1", "egressfirewalls")
NAD = ("k8s.cni.cncf.io", "v1", "network-attachment-definitions")


def create(api: Any, namespace: str, kind: tuple[str, str, str], body: dict[str, Any]) -> Any:
    from kubernetes import client

    group, version, plural = kind
    return client.CustomObjectsApi(api).create_namespaced_custom_object(
        group, version, namespace, plural, body
    )


def refused(api: Any, namespace: str, kind: tuple[str, str, str], body: dict[str, Any]) -> str:
    """Create ``body``; assert the API server answers 422 and return its message."""
    from kubernetes.client.rest import ApiException

    with pytest.raises(ApiException) as info:
        create(api, namespace, kind, body)
    assert info.value.status == 422, info.value.body
    return str(json.loads(info.value.body)["message"])


def enp_from_docs() -> dict[str, Any]:
    # The OpenShift 3 docs print apiVersion "v1" (the legacy group-less API); through the
    # API server the group is needed.
    doc: dict[str, Any] = json.loads(ref.EGRESS_NETWORK_POLICY)
    doc["apiVersion"] = "network.openshift.io/v1"
    return doc


# --- accepted: every documented example ----------------------------------------------------


@pytest.mark.parametrize(
    "text", [ref.EGRESS_ROUTER, ref.EGRESS_ROUTER_E2E_V4, ref.EGRESS_ROUTER_E2E_V6]
)
def test_documented_egressrouters_are_accepted(
    kube_api: Any, kube_namespace: str, text: str
) -> None:
    body = yaml.safe_load(text)
    stored = create(kube_api, kube_namespace, ER, body)
    assert stored["spec"]["addresses"] == body["spec"]["addresses"]
    assert stored["spec"]["redirect"] == body["spec"]["redirect"]
    # the reference's defaults are applied by the API server
    assert stored["spec"]["networkInterface"] == {"macvlan": {"mode": "Bridge"}}
    assert stored["spec"]["mode"] == "Redirect"


def test_minimal_egressrouter_gets_the_defaults(kube_api: Any, kube_namespace: str) -> None:
    body = yaml.safe_load(ref.EGRESS_ROUTER)
    del body["spec"]["networkInterface"], body["spec"]["mode"]
    stored = create(kube_api, kube_namespace, ER, body)
    assert stored["spec"]["mode"] == "Redirect"
    assert stored["spec"]["networkInterface"] == {"macvlan": {"mode": "Bridge"}}


def test_egressrouter_with_every_field(kube_api: Any, kube_namespace: str) -> None:
    body = yaml.safe_load(ref.EGRESS_ROUTER)
    body["spec"]["networkInterface"] = {"macvlan": {"mode": "Private", "master": "ens3.100"}}
    body["spec"]["addresses"].append({"ip": "192.168.12.100/24", "gateway": "192.168.12.1"})
    stored = create(kube_api, kube_namespace, ER, body)
    assert stored["spec"]["networkInterface"]["macvlan"]["master"] == "ens3.100"
    assert len(stored["spec"]["addresses"]) == 2


V6_ADDRESS = {"ip": "2001:db8:1::99/64", "gateway": "2001:db8:1::1"}
V6_RULE = {"destinationIP": "2001:db8:2::25", "port": 8081, "targetPort": 80, "protocol": "TCP"}


def test_ipv6_egressrouter_is_accepted(kube_api: Any, kube_namespace: str) -> None:
    body = yaml.safe_load(ref.EGRESS_ROUTER)
    body["spec"]["addresses"] = [V6_ADDRESS]
    body["spec"]["redirect"] = {"redirectRules": [V6_RULE], "fallbackIP": "2001:db8:2::27"}
    stored = create(kube_api, kube_namespace, ER, body)
    assert stored["spec"]["addresses"] == [V6_ADDRESS]
    assert stored["spec"]["redirect"]["fallbackIP"] == "2001:db8:2::27"
    # the family rules compare families and addresses, not spellings: one gateway written in
    # two forms is one gateway; a link-local gateway is of the family
    body["metadata"]["name"] = "long-form"
    body["spec"]["addresses"] = [
        {"ip": "2001:0db8:1:0::99/64", "gateway": "fe80::1"},
        {"ip": "2001:db8:1::100/64", "gateway": "fe80:0::1"},
    ]
    create(kube_api, kube_namespace, ER, body)


def test_dual_stack_egressrouter_is_accepted(kube_api: Any, kube_namespace: str) -> None:
    body = yaml.safe_load(ref.EGRESS_ROUTER)
    body["spec"]["addresses"].append(V6_ADDRESS)
    body["spec"]["redirect"]["redirectRules"].append(V6_RULE)
    stored = create(kube_api, kube_namespace, ER, body)
    assert [a["ip"] for a in stored["spec"]["addresses"]] == ["192.168.12.99/24", V6_ADDRESS["ip"]]
    assert stored["spec"]["redirect"]["redirectRules"][-1] == V6_RULE


def test_dual_stack_egressrouter_may_use_one_port_for_both_families(
    kube_api: Any, kube_namespace: str
) -> None:
    body = yaml.safe_load(ref.EGRESS_ROUTER)
    body["spec"]["addresses"].append(V6_ADDRESS)
    v4_rule = body["spec"]["redirect"]["redirectRules"][1]  # TCP 8080 -> 203.0.113.26:80
    v6_rule = dict(v4_rule, destinationIP="2001:db8:2::26")
    body["spec"]["redirect"]["redirectRules"].append(v6_rule)
    stored = create(kube_api, kube_namespace, ER, body)
    assert stored["spec"]["redirect"]["redirectRules"][-1] == v6_rule


def test_egressrouter_of_500_rules_is_accepted(kube_api: Any, kube_namespace: str) -> None:
    """The largest router: its duplicate check stays within the API server's CEL cost limit."""
    body = yaml.safe_load(ref.EGRESS_ROUTER)
    body["spec"]["addresses"].append(V6_ADDRESS)
    rules = [
        {"destinationIP": ip, "port": 1000 + i // 2, "protocol": protocol}
        for i, (ip, protocol) in enumerate(
            [("203.0.113.26", "TCP"), ("2001:db8:2::26", "TCP")] * 125
            + [("203.0.113.26", "UDP"), ("2001:db8:2::26", "SCTP")] * 125
        )
    ]
    body["spec"]["redirect"] = {"redirectRules": rules}
    stored = create(kube_api, kube_namespace, ER, body)
    assert len(stored["spec"]["redirect"]["redirectRules"]) == 500


def test_documented_egress_network_policy_is_accepted(kube_api: Any, kube_namespace: str) -> None:
    stored = create(kube_api, kube_namespace, ENP, enp_from_docs())
    assert [r["type"] for r in stored["spec"]["egress"]] == ["Allow", "Allow", "Deny"]


def test_documented_egress_firewall_is_accepted(kube_api: Any, kube_namespace: str) -> None:
    stored = create(kube_api, kube_namespace, EF, yaml.safe_load(ref.EGRESS_FIREWALL))
    assert len(stored["spec"]["egress"]) == 6


def test_egress_firewall_of_8000_rules_is_accepted(kube_api: Any, kube_namespace: str) -> None:
    rules = [
        {"type": "Allow", "to": {"cidrSelector": f"10.{i // 256}.{i % 256}.0/24"}}
        for i in range(7999)
    ]
    rules.append({"type": "Deny", "to": {"cidrSelector": "0.0.0.0/0"}})
    body = {"apiVersion": "k8s.ovn.org/v1", "kind": "EgressFirewall"}
    body |= {"metadata": {"name": "default"}, "spec": {"egress": rules}}
    assert len(create(kube_api, kube_namespace, EF, body)["spec"]["egress"]) == 8000


def test_rendered_nad_is_accepted(kube_api: Any, kube_namespace: str) -> None:
    router = parse_egressrouter(yaml.safe_load(ref.EGRESS_ROUTER_E2E_V4) | {})
    nad = render(router)[0]
    nad["metadata"] = {"name": nad["metadata"]["name"]}
    stored = create(kube_api, kube_namespace, NAD, nad)
    assert json.loads(stored["spec"]["config"])["type"] == "egress-router"


# --- refused: each bad shape names its field --------------------------------------------------


def er_with(path: str, value: Any) -> dict[str, Any]:
    """The docs' EgressRouter with the value at dotted ``path`` replaced (``None`` deletes)."""
    body: dict[str, Any] = copy.deepcopy(yaml.safe_load(ref.EGRESS_ROUTER))
    *parents, last = path.split(".")
    node: Any = body
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is None:
        del node[int(last) if last.isdigit() else last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return body


BAD_ROUTERS = [
    # (what, path to change, new value, field named in the answer, words in the answer)
    (
        "ip without prefix",
        "spec.addresses.0.ip",
        "192.168.12.99",
        "spec.addresses[0].ip",
        "prefix length",
    ),
    ("ip garbage", "spec.addresses.0.ip", "not-an-ip/24", "spec.addresses[0].ip", "prefix length"),
    (
        "ip prefix too long",
        "spec.addresses.0.ip",
        "192.168.12.99/33",
        "spec.addresses[0].ip",
        "prefix length",
    ),
    (
        "ip leading zeros",
        "spec.addresses.0.ip",
        "192.168.012.99/24",
        "spec.addresses[0].ip",
        "leading zeros",
    ),
    (
        "ip v4-mapped v6",
        "spec.addresses.0.ip",
        "::ffff:192.168.12.99/120",
        "spec.addresses[0].ip",
        "IPv4-mapped",
    ),
    (
        "ip hex v4-mapped v6",
        "spec.addresses.0.ip",
        "::ffff:c0a8:30a/120",
        "spec.addresses[0].ip",
        "IPv4-mapped",
    ),
    (
        "gateway v4-mapped v6",
        "spec.addresses.0.gateway",
        "::ffff:192.168.12.1",
        "spec.addresses[0].gateway",
        "IPv4-mapped",
    ),
    (
        "gateway hex v4-mapped v6",
        "spec.addresses.0.gateway",
        "::ffff:c0a8:c01",
        "spec.addresses[0].gateway",
        "IPv4-mapped",
    ),
    (
        "v6 ip with v4-mapped gateway",
        "spec.addresses.0",
        {"ip": "2001:db8:1::99/64", "gateway": "::ffff:192.168.12.1"},
        "spec.addresses[0].gateway",
        "IPv4-mapped",
    ),
    (
        "v6 ip with v4 gateway",
        "spec.addresses.0",
        {"ip": "2001:db8:1::99/64", "gateway": "192.168.12.1"},
        "spec.addresses[0].gateway",
        "same IP family",
    ),
    (
        "v6 ip without prefix",
        "spec.addresses.0.ip",
        "2001:db8:1::99",
        "spec.addresses[0].ip",
        "prefix length",
    ),
    (
        "v6 prefix too long",
        "spec.addresses.0.ip",
        "2001:db8:1::99/129",
        "spec.addresses[0].ip",
        "prefix length",
    ),
    (
        "v6 ip with zone",
        "spec.addresses.0.gateway",
        "fe80::1%eth0",
        "spec.addresses[0].gateway",
        "",
    ),
    (
        "gateway with prefix",
        "spec.addresses.0.gateway",
        "192.168.12.1/24",
        "spec.addresses[0].gateway",
        "",
    ),
    (
        "gateway other family",
        "spec.addresses.0.gateway",
        "2001:db8::1",
        "spec.addresses[0].gateway",
        "same IP family",
    ),
    ("gateway missing", "spec.addresses.0.gateway", None, "spec.addresses[0].gateway", "Required"),
    (
        "two gateways in one family",
        "spec.addresses",
        [
            {"ip": "192.168.12.99/24", "gateway": "192.168.12.1"},
            {"ip": "192.168.12.100/24", "gateway": "192.168.12.254"},
        ],
        "spec.addresses",
        "share one gateway",
    ),
    (
        "two IPv6 gateways",
        "spec.addresses",
        [
            {"ip": "192.168.12.99/24", "gateway": "192.168.12.1"},
            {"ip": "2001:db8:1::99/64", "gateway": "2001:db8:1::1"},
            {"ip": "2001:db8:1::100/64", "gateway": "2001:db8:1::2"},
        ],
        "spec.addresses",
        "share one gateway",
    ),
    (
        "IPv6 destination, IPv4 addresses",
        "spec.redirect.redirectRules.0.destinationIP",
        "2001:db8:2::25",
        "spec.redirect",
        "an IPv6 destination needs an IPv6 address",
    ),
    (
        "IPv6 fallback, IPv4 addresses",
        "spec.redirect.fallbackIP",
        "2001:db8:2::27",
        "spec.redirect",
        "fallbackIP need an address of their IP family",
    ),
    (
        "IPv4 destinations, IPv6 address",
        "spec.addresses",
        [{"ip": "2001:db8:1::99/64", "gateway": "2001:db8:1::1"}],
        "spec.redirect",
        "need an address of their IP family",
    ),
    ("no address", "spec.addresses", [], "spec.addresses", "at least 1"),
    (
        "same address twice",
        "spec.addresses",
        [{"ip": "192.168.12.99/24", "gateway": "192.168.12.1"}] * 2,
        "spec.addresses[1]",
        "Duplicate",
    ),
    ("mode", "spec.mode", "HTTPProxy", "spec.mode", "Unsupported value"),
    ("no redirect", "spec.redirect", None, "spec.redirect", "required when mode is Redirect"),
    (
        "port 0",
        "spec.redirect.redirectRules.0.port",
        0,
        "spec.redirect.redirectRules[0].port",
        "greater than or equal to 1",
    ),
    (
        "port too big",
        "spec.redirect.redirectRules.0.port",
        70000,
        "spec.redirect.redirectRules[0].port",
        "less than or equal to 65535",
    ),
    (
        "targetPort 0",
        "spec.redirect.redirectRules.1.targetPort",
        0,
        "spec.redirect.redirectRules[1].targetPort",
        "",
    ),
    (
        "protocol lower case",
        "spec.redirect.redirectRules.0.protocol",
        "udp",
        "spec.redirect.redirectRules[0].protocol",
        "Unsupported value",
    ),
    (
        "destination /30",
        "spec.redirect.redirectRules.0.destinationIP",
        "10.0.0.99/30",
        "spec.redirect.redirectRules[0].destinationIP",
        "no prefix length",
    ),
    (
        "same port twice",
        "spec.redirect.redirectRules.1",
        {"destinationIP": "203.0.113.26", "port": 80, "protocol": "UDP"},
        "spec.redirect.redirectRules",
        "at most once per IP family",
    ),
    (
        "same rule twice",
        "spec.redirect.redirectRules.1",
        {"destinationIP": "10.0.0.99", "port": 80, "protocol": "UDP"},
        "spec.redirect.redirectRules[1]",
        "Duplicate",
    ),
    (
        "same port twice in IPv6",
        "spec.redirect.redirectRules",
        [
            {"destinationIP": "2001:db8:2::25", "port": 80, "protocol": "TCP"},
            {"destinationIP": "2001:db8:2::26", "port": 80, "protocol": "TCP"},
        ],
        "spec.redirect.redirectRules",
        "at most once per IP family",
    ),
    (
        "over 500 rules",
        "spec.redirect.redirectRules",
        [{"destinationIP": "203.0.113.26", "port": p, "protocol": "TCP"} for p in range(1, 502)],
        "spec.redirect.redirectRules",
        "500",
    ),
    (
        "destination v4-mapped v6",
        "spec.redirect.redirectRules.0.destinationIP",
        "::ffff:203.0.113.26",
        "spec.redirect.redirectRules[0].destinationIP",
        "IPv4-mapped",
    ),
    (
        "destination hex v4-mapped v6",
        "spec.redirect.redirectRules.0.destinationIP",
        "::ffff:cb00:711a",
        "spec.redirect.redirectRules[0].destinationIP",
        "IPv4-mapped",
    ),
    (
        "destination v6 with prefix",
        "spec.redirect.redirectRules.0.destinationIP",
        "2001:db8:2::25/128",
        "spec.redirect.redirectRules[0].destinationIP",
        "no prefix length",
    ),
    (
        "fallback v4-mapped v6",
        "spec.redirect.fallbackIP",
        "::ffff:203.0.113.28",
        "spec.redirect.fallbackIP",
        "IPv4-mapped",
    ),
    ("fallback garbage", "spec.redirect.fallbackIP", "example.com", "spec.redirect.fallbackIP", ""),
    (
        "macvlan mode lower case",
        "spec.networkInterface.macvlan.mode",
        "bridge",
        "spec.networkInterface.macvlan.mode",
        "Unsupported value",
    ),
    (
        "master with slash",
        "spec.networkInterface.macvlan.master",
        "eth0/x",
        "spec.networkInterface.macvlan.master",
        "",
    ),
    (
        "master too long",
        "spec.networkInterface.macvlan.master",
        "a" * 16,
        "spec.networkInterface.macvlan.master",
        "",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_ROUTERS],
)
def test_bad_egressrouter_is_refused_naming_the_field(
    kube_api: Any, kube_namespace: str, path: str, value: Any, field: str, words: str
) -> None:
    message = refused(kube_api, kube_namespace, ER, er_with(path, value))
    assert field in message, message
    assert words in message, message


def enp_rule(rule: dict[str, Any]) -> dict[str, Any]:
    body = enp_from_docs()
    body["spec"]["egress"][1] = rule
    return body


BAD_ENP_RULES = [
    (
        "AllowX",
        {"type": "AllowX", "to": {"cidrSelector": "1.2.3.0/24"}},
        "spec.egress[1].type",
        "Unsupported value",
    ),
    (
        "xDeny",
        {"type": "xDeny", "to": {"cidrSelector": "1.2.3.0/24"}},
        "spec.egress[1].type",
        "Unsupported value",
    ),
    (
        "both",
        {"type": "Allow", "to": {"cidrSelector": "1.2.3.0/24", "dnsName": "a.example"}},
        "spec.egress[1].to",
        "exactly one of cidrSelector or dnsName",
    ),
    (
        "neither",
        {"type": "Allow", "to": {}},
        "spec.egress[1].to",
        "exactly one of cidrSelector or dnsName",
    ),
    (
        "IPv6",
        {"type": "Allow", "to": {"cidrSelector": "2001:db8::/32"}},
        "spec.egress[1].to.cidrSelector",
        "IPv4 CIDR",
    ),
    (
        "prefix 33",
        {"type": "Allow", "to": {"cidrSelector": "1.2.3.0/33"}},
        "spec.egress[1].to.cidrSelector",
        "IPv4 CIDR",
    ),
    (
        "no prefix",
        {"type": "Allow", "to": {"cidrSelector": "1.2.3.4"}},
        "spec.egress[1].to.cidrSelector",
        "IPv4 CIDR",
    ),
    (
        "bad name",
        {"type": "Allow", "to": {"dnsName": "www foo.com"}},
        "spec.egress[1].to.dnsName",
        "should match",
    ),
    (
        "wildcard",
        {"type": "Allow", "to": {"dnsName": "*.foo.com"}},
        "spec.egress[1].to.dnsName",
        "should match",
    ),
]


@pytest.mark.parametrize(
    ("rule", "field", "words"), [pytest.param(*c[1:], id=c[0]) for c in BAD_ENP_RULES]
)
def test_bad_egress_network_policy_is_refused_naming_the_field(
    kube_api: Any, kube_namespace: str, rule: dict[str, Any], field: str, words: str
) -> None:
    message = refused(kube_api, kube_namespace, ENP, enp_rule(rule))
    assert field in message, message
    assert words in message, message


def test_egress_network_policy_over_1000_rules_is_refused(
    kube_api: Any, kube_namespace: str
) -> None:
    body = enp_from_docs()
    body["spec"]["egress"] = [{"type": "Deny", "to": {"cidrSelector": "0.0.0.0/0"}}] * 1001
    message = refused(kube_api, kube_namespace, ENP, body)
    assert "spec.egress" in message and "1000" in message, message


def ef_rule(rule: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(ref.EGRESS_FIREWALL)
    body["spec"]["egress"][2] = rule
    return body


BAD_EF_RULES = [
    (
        "AllowX",
        {"type": "AllowX", "to": {"cidrSelector": "1.2.3.0/24"}},
        "spec.egress[2].type",
        "Unsupported value",
    ),
    (
        "TCPX",
        {"type": "Allow", "to": {"dnsName": "a.example"}, "ports": [{"protocol": "TCPX"}]},
        "spec.egress[2].ports[0].protocol",
        "Unsupported value",
    ),
    (
        "port 0",
        {
            "type": "Allow",
            "to": {"dnsName": "a.example"},
            "ports": [{"protocol": "TCP", "port": 0}],
        },
        "spec.egress[2].ports[0].port",
        "",
    ),
    # exactly one of cidrSelector, dnsName, nodeSelector: the schema's min/maxProperties (no
    # per-item CEL, see the CRD's header), after unknown fields are pruned
    (
        "cidr and dns",
        {"type": "Allow", "to": {"cidrSelector": "1.2.3.0/24", "dnsName": "a.example"}},
        "spec.egress[2].to",
        "must have at most 1",
    ),
    (
        "dns and nodes",
        {"type": "Allow", "to": {"dnsName": "a.example", "nodeSelector": {}}},
        "spec.egress[2].to",
        "must have at most 1",
    ),
    ("empty to", {"type": "Allow", "to": {}}, "spec.egress[2].to", "at least 1 properties"),
    (
        "only an unknown field",
        {"type": "Allow", "to": {"cidr": "1.2.3.0/24"}},
        "spec.egress[2].to",
        "at least 1 properties",
    ),
    (
        "prefix 129",
        {"type": "Allow", "to": {"cidrSelector": "2001:db8::/129"}},
        "spec.egress[2].to.cidrSelector",
        "must be of type cidr",
    ),
    (
        "no prefix",
        {"type": "Allow", "to": {"cidrSelector": "203.0.113.1"}},
        "spec.egress[2].to.cidrSelector",
        "must be of type cidr",
    ),
    (
        "leading zeros",
        {"type": "Allow", "to": {"cidrSelector": "203.0.113.01/32"}},
        "spec.egress[2].to.cidrSelector",
        "should match",
    ),
    (
        "dotted IPv4-mapped",
        {"type": "Allow", "to": {"cidrSelector": "::ffff:203.0.113.0/120"}},
        "spec.egress[2].to.cidrSelector",
        "should match",
    ),
    (
        "two-label wildcard",
        {"type": "Allow", "to": {"dnsName": "*.*.example.com"}},
        "spec.egress[2].to.dnsName",
        "should match",
    ),
]


@pytest.mark.parametrize(
    ("rule", "field", "words"), [pytest.param(*c[1:], id=c[0]) for c in BAD_EF_RULES]
)
def test_bad_egress_firewall_is_refused_naming_the_field(
    kube_api: Any, kube_namespace: str, rule: dict[str, Any], field: str, words: str
) -> None:
    message = refused(kube_api, kube_namespace, EF, ef_rule(rule))
    assert field in message, message
    assert words in message, message


def test_egress_firewall_not_named_default_is_refused(kube_api: Any, kube_namespace: str) -> None:
    body = yaml.safe_load(ref.EGRESS_FIREWALL)
    body["metadata"]["name"] = "second"
    message = refused(kube_api, kube_namespace, EF, body)
    assert "metadata.name" in message and "must be named default" in message, message


def test_egress_firewall_over_8000_rules_is_refused(kube_api: Any, kube_namespace: str) -> None:
    body = yaml.safe_load(ref.EGRESS_FIREWALL)
    body["spec"]["egress"] = [{"type": "Deny", "to": {"cidrSelector": "0.0.0.0/0"}}] * 8001
    message = refused(kube_api, kube_namespace, EF, body)
    assert "spec.egress" in message and "8000" in message, message


def test_bad_status_condition_is_refused(kube_api: Any, kube_namespace: str) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    create(kube_api, kube_namespace, ER, yaml.safe_load(ref.EGRESS_ROUTER))
    status = {
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
        ]
    }
    with pytest.raises(ApiException) as info:
        client.CustomObjectsApi(kube_api).patch_namespaced_custom_object_status(
            *ER[:2], kube_namespace, ER[2], "egress-router-redirect", {"status": status}
        )
    assert info.value.status == 422
    assert "status.conditions[0].type" in json.loads(info.value.body)["message"]
