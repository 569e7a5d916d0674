"""Policy parsing: the documents' forms accepted, every bad-input class one precise line."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress_router.errors import PolicyError
from egress_router.firewall.model.policy import (
    MAX_RULES,
    Action,
    PortMatch,
    index_by_namespace,
    parse_text,
)
from tests.reference_examples import EGRESS_NETWORK_POLICY


def enp(rules, namespace="myproj", kind="EgressNetworkPolicy", api="network.openshift.io/v1"):
    meta = {"name": "default"}
    if namespace:
        meta["namespace"] = namespace
    return json.dumps(
        {"kind": kind, "apiVersion": api, "metadata": meta, "spec": {"egress": rules}}
    )


def ef(rules, namespace="myproj"):
    return enp(rules, namespace, kind="EgressFirewall", api="k8s.ovn.org/v1")


def test_document_example_verbatim():
    [policy] = parse_text(EGRESS_NETWORK_POLICY, "example.json", "myproj")
    assert policy.namespace == "myproj"
    assert [r.describe() for r in policy.rules] == [
        "Allow 1.2.3.0/24",
        "Allow dnsName www.foo.com",
        "Deny 0.0.0.0/0",
    ]
    assert [r.index for r in policy.rules] == [1, 2, 3]


def test_missing_namespace_is_an_error_naming_the_file():
    with pytest.raises(PolicyError) as err:
        parse_text(EGRESS_NETWORK_POLICY, "example.json")
    assert str(err.value).startswith("example.json, metadata.namespace: missing")


YAML_MULTI = """\
kind: EgressFirewall
apiVersion: k8s.ovn.org/v1
metadata: {name: default, namespace: a}
spec:
  egress:
  - type: Allow
    to: {cidrSelector: "2001:db8::/32"}
    ports: [{protocol: TCP, port: 443}, {protocol: UDP}]
  - type: Deny
    to: {dnsName: "*.Example.COM."}
---
kind: List
apiVersion: v1
items:
- kind: EgressNetworkPolicy
  apiVersion: network.openshift.io/v1
  metadata: {name: p, namespace: b}
  spec: {egress: []}
"""


def test_yaml_multi_document_and_list():
    a, b = parse_text(YAML_MULTI, "p.yaml")
    assert a.kind == "EgressFirewall" and b.namespace == "b" and b.rules == ()
    assert str(a.rules[0].cidr) == "2001:db8::/32"
    assert a.rules[0].ports == (PortMatch("tcp", 443), PortMatch("udp", None))
    assert a.rules[1].dns_name == "*.example.com" and a.rules[1].action is Action.DENY


@pytest.mark.parametrize(
    ("rule", "kind", "expected"),
    [
        (
            {"type": "AllowX", "to": {"cidrSelector": "1.2.3.0/24"}},
            "enp",
            "rule 1, type: must be Allow or Deny, got 'AllowX'",
        ),
        ({"type": "allow", "to": {"cidrSelector": "1.2.3.0/24"}}, "enp", "rule 1, type:"),
        (
            {"type": "Allow", "to": {"cidrSelector": "1.2.3.0/33"}},
            "enp",
            "rule 1, to.cidrSelector: the prefix length must be 0-32",
        ),
        (
            {"type": "Allow", "to": {"cidrSelector": "1.2.3.0"}},
            "enp",
            "to.cidrSelector: must be a CIDR",
        ),
        ({"type": "Allow", "to": {"cidrSelector": "1.2.3.256/24"}}, "enp", "to.cidrSelector"),
        (
            {"type": "Allow", "to": {"cidrSelector": "2001:db8::/32"}},
            "enp",
            "IPv6 needs kind EgressFirewall",
        ),
        ({"type": "Allow", "to": {"cidrSelector": "2001:db8::/129"}}, "ef", "0-128"),
        (
            {"type": "Allow", "to": {"cidrSelector": "1.2.3.0/24", "dnsName": "a.b"}},
            "enp",
            "rule 1, to: exactly one of cidrSelector or dnsName is required, got both",
        ),
        (
            {"type": "Allow", "to": {}},
            "enp",
            "rule 1, to: exactly one of cidrSelector or dnsName is required, got neither",
        ),
        ({"type": "Allow"}, "enp", "rule 1, to: must be an object"),
        ({"type": "Allow", "to": {"dnsName": "bad_name!"}}, "enp", "to.dnsName: not a DNS name"),
        ({"type": "Allow", "to": {"dnsName": "*.com"}}, "enp", "a wildcard needs"),
        ({"type": "Allow", "to": {"dnsName": "a.*.com"}}, "enp", "to.dnsName"),
        (
            {"type": "Allow", "to": {"cidrselector": "1.2.3.0/24"}},
            "enp",
            "to.cidrselector: unknown field",
        ),
        ({"type": "Allow", "to": {"nodeSelector": {}}}, "ef", "nodeSelector is not supported"),
        (
            {
                "type": "Allow",
                "to": {"cidrSelector": "1.2.3.0/24"},
                "ports": [{"protocol": "TCP", "port": 80}],
            },
            "enp",
            "ports: unknown field (ports need kind EgressFirewall)",
        ),
        (
            {
                "type": "Allow",
                "to": {"cidrSelector": "1.2.3.0/24"},
                "ports": [{"protocol": "TCPX", "port": 80}],
            },
            "ef",
            "ports[0].protocol: must be TCP, UDP or SCTP, got 'TCPX'",
        ),
        (
            {
                "type": "Allow",
                "to": {"cidrSelector": "1.2.3.0/24"},
                "ports": [{"protocol": "TCP", "port": 0}],
            },
            "ef",
            "ports[0].port: must be 1-65535",
        ),
        (
            {
                "type": "Allow",
                "to": {"cidrSelector": "1.2.3.0/24"},
                "ports": [{"protocol": "TCP", "port": "80"}],
            },
            "ef",
            "ports[0].port",
        ),
        (
            {"type": "Allow", "to": {"cidrSelector": "1.2.3.0/24"}, "ports": []},
            "ef",
            "ports: must be a non-empty list",
        ),
        ("Allow", "enp", "rule 1: a rule must be an object"),
    ],
)
def test_bad_rules_name_file_namespace_rule_and_field(rule, kind, expected):
    text = (enp if kind == "enp" else ef)(
        [{"type": "Deny", "to": {"cidrSelector": "9.9.9.9/32"}}, rule]
    )
    with pytest.raises(PolicyError) as err:
        parse_text(text, "bad.json")
    message = str(err.value)
    assert message.startswith("bad.json, namespace myproj, rule 2")
    assert expected.replace("rule 1", "rule 2") in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{", "bad.json: not valid JSON or YAML"),
        ("[1, 2]", "the document must be an object"),
        ('{"kind": "NetworkPolicy"}', "kind: must be EgressNetworkPolicy or EgressFirewall"),
        ('{"kind": "EgressFirewall", "apiVersion": "v1"}', "apiVersion: must be k8s.ovn.org/v1"),
        (enp([], namespace="Bad_NS"), "metadata.namespace: not a valid namespace"),
        (ef([]).replace('"default"', '"other"'), "must be named 'default'"),
        (
            json.dumps(
                {
                    "kind": "EgressFirewall",
                    "apiVersion": "k8s.ovn.org/v1",
                    "metadata": {"name": "default", "namespace": "a"},
                }
            ),
            "spec: must be an object",
        ),
        ("", "no policy in the file"),
    ],
)
def test_bad_documents(text, expected):
    with pytest.raises(PolicyError) as err:
        parse_text(text, "bad.json")
    assert expected in str(err.value)


def test_rule_limit_8000_accepted_8001_rejected():
    rules = [
        {"type": "Deny", "to": {"cidrSelector": f"10.{i // 256}.{i % 256}.0/24"}}
        for i in range(MAX_RULES)
    ]
    [policy] = parse_text(enp(rules), "big.json")
    assert len(policy.rules) == 8000
    rules.append({"type": "Allow", "to": {"cidrSelector": "0.0.0.0/0"}})
    with pytest.raises(PolicyError) as err:
        parse_text(enp(rules), "big.json")
    assert (
        str(err.value)
        == "big.json, namespace myproj, spec.egress: 8001 rules exceed the limit of 8000"
    )


def test_two_policies_in_one_namespace_rejected():
    first = parse_text(enp([]), "one.json")
    second = parse_text(enp([]).replace('"default"', '"other"'), "two.json")
    with pytest.raises(PolicyError) as err:
        index_by_namespace(first + second)
    assert str(err.value).startswith(
        "two.json, namespace myproj, metadata.namespace: a second policy"
    )


def test_host_bits_cleared_like_the_references():
    [policy] = parse_text(enp([{"type": "Deny", "to": {"cidrSelector": "1.2.3.4/24"}}]), "x")
    assert str(policy.rules[0].cidr) == "1.2.3.0/24"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(rules=st.lists(json_values, max_size=4), kind=st.sampled_from(["enp", "ef"]))
def test_any_rule_list_parses_or_raises_policy_error(rules, kind):
    with contextlib.suppress(PolicyError):
        parse_text((enp if kind == "enp" else ef)(rules), "fuzz.json")


@given(st.text(max_size=200))
def test_any_text_parses_or_raises_policy_error(text):
    with contextlib.suppress(PolicyError):
        parse_text(text, "fuzz.yaml", "ns")


@given(
    to=st.dictionaries(
        st.sampled_from(["cidrSelector", "dnsName"]),
        st.text(alphabet="0123456789abcdef.:/*-", max_size=24),
        max_size=2,
    )
)
def test_to_field_fuzz(to):
    with contextlib.suppress(PolicyError):
        parse_text(ef([{"type": "Allow", "to": to}]), "fuzz.json")


@pytest.mark.parametrize(
    ("cidr", "expected"),
    [
        ("::ffff:203.0.113.26/128", "203.0.113.26/32"),  # issue 8: an ip6 rule would match nothing
        ("::ffff:203.0.113.0/120", "203.0.113.0/24"),
        ("::ffff:0:0/96", "0.0.0.0/0"),
        ("64:ff9b::cb00:7100/120", "64:ff9b::cb00:7100/120"),  # NAT64 travels as IPv6
        ("::/0", "::/0"),
    ],
)
def test_mapped_cidr_selector_is_the_ipv4_network(cidr, expected):
    (policy,) = parse_text(ef([{"type": "Deny", "to": {"cidrSelector": cidr}}]), "p.json")
    assert str(policy.rules[0].cidr) == expected
