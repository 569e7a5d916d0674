"""Fuzz of policy documents, JSON and YAML (issue 8): documents built from valid skeletons whose
fields hypothesis replaces with arbitrary values, sometimes with hostile characters or repeated
lines spliced into the text; each is one ``PolicyError`` line, or accepted and re-rendered
identically (``parse(render(x)) == x``)."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from egress_router.errors import PolicyError
from egress_router.firewall.model import policy
from tests.fuzz import (
    assert_one_line,
    either,
    encoded,
    junk_text,
    junk_value,
    mostly,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- policies ----------------------------------------------------------------------------------

cidr = either(
    "10.0.0.0/8", "1.2.3.4/24", "0.0.0.0/0", "2001:db8::/32", "fe80::1%eth0/64",
    "\uff11.2.3.4/8", "1.2.3.0/\u00b2", "1.2.3.0/\u0662\u0664", "::ffff:1.2.3.4/128",
    valid=4,
)  # fmt: skip
dns_name = either("www.example.com", "*.example.com", "EXAMPLE.com.", "*.com", "a..b", valid=3)
port_entry = st.fixed_dictionaries(
    {"protocol": either("TCP", "UDP", "SCTP", "tcp", valid=3)},
    optional={"port": mostly(st.integers(1, 65535), st.integers(-1, 70000) | junk_value)},
)
rule = st.fixed_dictionaries(
    {
        "type": either("Allow", "Deny", "AllowX", valid=2),
        "to": mostly(
            st.fixed_dictionaries({"cidrSelector": cidr})
            | st.fixed_dictionaries({"dnsName": dns_name}),
            junk_value,
        ),
    },
    optional={"ports": mostly(st.lists(port_entry, min_size=1, max_size=3), junk_value)},
)
policy_doc = st.fixed_dictionaries(
    {
        "kind": either("EgressFirewall", "EgressNetworkPolicy", "List"),
        "apiVersion": either("k8s.ovn.org/v1", "network.openshift.io/v1", "v1", valid=3),
        "metadata": mostly(
            st.fixed_dictionaries(
                {"name": either("default", "x"), "namespace": either("myproj", "Bad_NS")}
            ),
            junk_value,
        ),
        "spec": mostly(
            st.fixed_dictionaries({"egress": mostly(st.lists(rule, max_size=4), junk_value)}),
            junk_value,
        ),
    }
)


def _matching_api(doc: dict[str, Any]) -> dict[str, Any]:
    """Most documents get the apiVersion their kind needs (and a firewall its name)."""
    api = {"EgressFirewall": "k8s.ovn.org/v1", "EgressNetworkPolicy": "network.openshift.io/v1"}
    kind = doc.get("kind")
    if isinstance(kind, str) and kind in api:
        doc["apiVersion"] = api[kind]
        if kind == "EgressFirewall" and isinstance(doc.get("metadata"), dict):
            doc["metadata"]["name"] = "default"
    return doc


@FUZZ
@given(mostly(policy_doc.map(_matching_api), policy_doc, 3).flatmap(encoded) | junk_text)
def test_policy_documents(text: str) -> None:
    try:
        parsed = policy.parse_text(text, "p.yaml")
    except PolicyError as error:
        event("rejected")
        assert_one_line(error)
        return
    event("accepted")
    for one in parsed:
        doc = policy.render_policy(one)
        assert policy.parse_object(doc, one.source) == one
        for rendered in (json.dumps(doc), yaml.safe_dump(doc)):
            assert policy.parse_text(rendered, one.source) == [one]
