"""The reference decision: exempt networks, namespace by source, first match, default allow."""

from __future__ import annotations

import ipaddress

import pytest

from egress_router.errors import VariableError
from egress_router.firewall.model.decide import decide, name_matches, parse_node
from egress_router.firewall.model.policy import index_by_namespace, parse_text
from tests.reference_examples import EGRESS_NETWORK_POLICY

from .test_policy import ef

ip = ipaddress.ip_address
NODE = parse_node(
    ["myproj=198.18.0.3/32,2001:db8:18::3/128", "other=198.18.0.4/32"],
    ["198.18.0.0/24"],
    ["172.30.0.0/16,fd00::/108"],
)
POLICIES = index_by_namespace(
    parse_text(EGRESS_NETWORK_POLICY, "ex.json", "myproj")
    + parse_text(
        ef(
            [
                {
                    "type": "Allow",
                    "to": {"cidrSelector": "203.0.113.0/24"},
                    "ports": [{"protocol": "TCP", "port": 80}],
                },
                {"type": "Deny", "to": {"cidrSelector": "203.0.113.0/24"}},
                {"type": "Allow", "to": {"dnsName": "*.example.com"}},
                {"type": "Deny", "to": {"cidrSelector": "0.0.0.0/0"}},
                {"type": "Deny", "to": {"cidrSelector": "::/0"}},
            ],
            namespace="other",
        ),
        "other.json",
    )
)


@pytest.mark.parametrize(
    ("src", "dst", "kwargs", "expected"),
    [
        ("198.18.0.3", "1.2.3.4", {}, "allow: namespace myproj rule 1 (Allow 1.2.3.0/24)"),
        ("198.18.0.3", "8.8.8.8", {}, "deny: namespace myproj rule 3 (Deny 0.0.0.0/0)"),
        (
            "198.18.0.3",
            "8.8.8.8",
            {"name": "www.foo.com"},
            "allow: namespace myproj rule 2 (Allow dnsName www.foo.com)",
        ),
        ("198.18.0.3", "198.18.0.9", {}, "allow: cluster network exempt"),
        ("198.18.0.3", "172.30.0.1", {}, "allow: cluster network exempt"),
        ("198.18.0.3", "2001:db8:113::25", {}, "allow: no rule matched (default allow)"),
        (
            "198.18.0.9",
            "8.8.8.8",
            {},
            "allow: source 198.18.0.9 is in no namespace given by --pods (not filtered)",
        ),
        (
            "198.18.0.4",
            "203.0.113.25",
            {"port": 80},
            "allow: namespace other rule 1 (Allow 203.0.113.0/24 ports tcp/80)",
        ),
        (
            "198.18.0.4",
            "203.0.113.25",
            {"port": 80, "proto": "udp"},
            "deny: namespace other rule 2 (Deny 203.0.113.0/24)",
        ),
        (
            "198.18.0.4",
            "203.0.113.25",
            {"port": 443},
            "deny: namespace other rule 2 (Deny 203.0.113.0/24)",
        ),
        (
            "198.18.0.4",
            "9.9.9.9",
            {"name": "a.example.com"},
            "allow: namespace other rule 3 (Allow dnsName *.example.com)",
        ),
        (
            "198.18.0.4",
            "9.9.9.9",
            {"name": "a.b.example.com"},
            "deny: namespace other rule 4 (Deny 0.0.0.0/0)",
        ),
        # ::ffff:a.b.c.d is the IPv4 packet the kernel sends: decided as a.b.c.d (issue 8)
        ("198.18.0.3", "::ffff:8.8.8.8", {}, "deny: namespace myproj rule 3 (Deny 0.0.0.0/0)"),
        (
            "198.18.0.4",
            "::ffff:cb00:7119",
            {},
            "deny: namespace other rule 2 (Deny 203.0.113.0/24)",
        ),
        ("::ffff:198.18.0.3", "8.8.8.8", {}, "deny: namespace myproj rule 3 (Deny 0.0.0.0/0)"),
        ("198.18.0.3", "::ffff:198.18.0.9", {}, "allow: cluster network exempt"),
        # NAT64 and compatible forms travel as IPv6 and are matched as such
        ("198.18.0.4", "64:ff9b::808:808", {}, "deny: namespace other rule 5 (Deny ::/0)"),
    ],
)
def test_truth_table(src, dst, kwargs, expected):
    assert str(decide(POLICIES, NODE, ip(src), ip(dst), **kwargs)) == expected


def test_namespace_without_policy_is_default_allow():
    node = parse_node(["third=198.18.0.5/32"])
    assert str(decide(POLICIES, node, ip("198.18.0.5"), ip("8.8.8.8"))) == (
        "allow: namespace third has no policy (default allow)"
    )


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("www.foo.com", "www.foo.com", True),
        ("www.foo.com", "WWW.Foo.com.", True),
        ("www.foo.com", "foo.com", False),
        ("*.foo.com", "a.foo.com", True),
        ("*.foo.com", "foo.com", False),
        ("*.foo.com", "a.b.foo.com", False),
        ("*.foo.com", ".foo.com", False),
    ],
)
def test_name_matching(pattern, name, expected):
    assert name_matches(pattern, name) is expected


@pytest.mark.parametrize(
    ("pods", "cluster", "message"),
    [
        (["myproj"], [], "--pods: expected NAMESPACE=CIDR"),
        (["myproj=1.2.3.0/33"], [], "--pods: the prefix length must be 0-32 '1.2.3.0/33'"),
        (["a=10.0.0.0/8", "b=10.1.0.0/16"], [], "overlaps 10.0.0.0/8 of namespace a"),
        ([], ["nonsense"], "--cluster-cidr"),
    ],
)
def test_bad_node_flags(pods, cluster, message):
    with pytest.raises(VariableError) as err:
        parse_node(pods, cluster)
    assert message in str(err.value)


def test_pods_accepts_bare_addresses_and_lists():
    node = parse_node(["a=198.18.0.3,2001:db8:18::3"])
    assert [str(n) for _, n in node.pods] == ["198.18.0.3/32", "2001:db8:18::3/128"]
