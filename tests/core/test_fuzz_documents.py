"""Fuzz of the document grammars (issue 8): policies (JSON and YAML), the CNI network
configuration and the EgressRouter CR. Documents are built from valid skeletons whose fields
hypothesis replaces with arbitrary values, encoded as JSON or YAML, sometimes with hostile
characters or repeated keys spliced into the text. Each is rejected with one line of our error
type, or accepted and re-rendered identically (``parse(render(x)) == x``)."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from egress_router.core import cni_config, egressrouter
from egress_router.core.documents import load_any
from egress_router.core.firewall import policy
from egress_router.errors import PolicyError
from tests.fuzz import HOSTILE, assert_one_line, junk_text, junk_value, mostly

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def either(*values: Any, valid: int = 1) -> st.SearchStrategy[Any]:
    """The first ``valid`` values most of the time, the others (tricky ones) sometimes, and
    one time in 16 anything at all: most documents are valid but for a field or two."""
    good, tricky = values[:valid], values[valid:] or values[:valid]
    return mostly(st.sampled_from(good), mostly(st.sampled_from(tricky), junk_value, 3), 6)


def or_junk(strategy: st.SearchStrategy[Any]) -> Any:
    """``strategy`` most of the time, an arbitrary value sometimes."""
    return mostly(strategy, junk_value)


@st.composite
def encoded(draw: st.DrawFn, doc: Any) -> str:
    """``doc`` as JSON or YAML text, sometimes with a hostile character or a duplicated line."""
    text = json.dumps(doc) if draw(st.booleans()) else yaml.safe_dump(doc, allow_unicode=True)
    edit = draw(st.sampled_from(["none"] * 6 + ["char", "dup"]))
    if edit == "char" and text:
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(st.sampled_from(HOSTILE)) + text[at:]
    elif edit == "dup":
        lines = text.splitlines(keepends=True)
        at = draw(st.integers(0, max(0, len(lines) - 1)))
        text = "".join(lines[: at + 1] + lines[at:])
    return text


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


# -- the CNI network configuration -------------------------------------------------------------

entry = either(
    "80 tcp 203.0.113.25", "8080 TCP 203.0.113.26 80", "53 udp 203.0.113.1/24", "203.0.113.9",
    "80 sctp 203.0.113.25", "80\xa0tcp 203.0.113.25", "80 tcp 1.2.3.4/\u00b2", "# x",
    valid=5,
)  # fmt: skip
cni_doc = st.fixed_dictionaries(
    {
        "cniVersion": either("0.4.0", "0.3.1", "1.0.0", valid=2),
        "name": either("egress", "bad name"),
        "type": either("egress-router"),
        "ip": or_junk(
            st.fixed_dictionaries(
                {
                    "addresses": mostly(
                        st.just(["192.168.12.99/24"]),
                        st.lists(either("192.168.12.99/24", "fe80::1%eth0/64"), max_size=2),
                        3,
                    ),
                    "gateway": either("192.168.12.1", "192.168.12.99", "\u0661.1.1.1"),
                    "destinations": or_junk(st.lists(entry, max_size=4, unique_by=repr)),
                },
                optional={"fallbackIP": either("203.0.113.9", "203.0.113.10")},
            )
        ),
    },
    optional={
        "interfaceArgs": or_junk(
            st.fixed_dictionaries(
                {},
                optional={
                    "mode": either("bridge", "Private", "nope", valid=2),
                    "master": either("eth1", "x" * 16, "e\u0661"),
                    "mtu": either(1500, "1500", "\u00b2", 67, valid=2),
                },
            )
        ),
        "log_level": either("debug", "ERROR", "loud", valid=2),
        "log_file": either("/tmp/log"),
        "dns": either({"nameservers": ["1.1.1.1"]}),
    },
)


@FUZZ
@given(cni_doc.map(json.dumps) | junk_text)
def test_cni_config(text: str) -> None:
    try:
        parsed = cni_config.parse_config(text)
    except cni_config.CniError as error:
        event("rejected")
        assert_one_line(error)
        return
    event("accepted")
    rendered = json.dumps(cni_config.render_config(parsed))
    assert cni_config.parse_config(rendered) == parsed


# -- the EgressRouter CR ---------------------------------------------------------------------

redirect_rule = st.fixed_dictionaries(
    {
        "destinationIP": either(
            "203.0.113.25", "198.51.100.7", "2001:db8::1", "\u0661.2.3.4", "fe80::1%eth0", valid=2
        ),
        "port": either(80, 443, 0, 65536, "80", True, valid=2),
        "protocol": either("TCP", "UDP", "SCTP", "tcp", valid=3),
    },
    optional={"targetPort": either(8080, -1)},
)
macvlan = st.fixed_dictionaries(
    {},
    optional={"mode": either("Bridge", "VEPA", "bridge", valid=2), "master": either("eth1", "")},
)
address = st.fixed_dictionaries(
    {"ip": either("192.168.12.99/24", "192.168.12.99"), "gateway": either("192.168.12.1")}
)
cr_doc = st.fixed_dictionaries(
    {
        "apiVersion": either("network.operator.openshift.io/v1"),
        "kind": either("EgressRouter"),
        "metadata": or_junk(
            st.fixed_dictionaries(
                {"name": either("router", "a b", "\x1b")},
                optional={"namespace": either("ns", "<ns>"), "uid": either("1234-abcd", 5)},
            )
        ),
        "spec": or_junk(
            st.fixed_dictionaries(
                {
                    "addresses": or_junk(st.lists(address, min_size=1, max_size=2)),
                    "redirect": or_junk(
                        st.fixed_dictionaries(
                            {"redirectRules": or_junk(st.lists(redirect_rule, max_size=3))},
                            optional={"fallbackIP": either("203.0.113.9", "fe80::1")},
                        )
                    ),
                },
                optional={
                    "mode": either("Redirect", "HTTPProxy"),
                    "networkInterface": or_junk(st.fixed_dictionaries({"macvlan": macvlan})),
                },
            )
        ),
    }
)


@FUZZ
@given(cr_doc.flatmap(encoded) | junk_text)
def test_egressrouter_cr(text: str) -> None:
    try:
        docs = load_any(text)
        if len(docs) != 1:
            return
        parsed = egressrouter.parse_egressrouter(docs[0], source="cr.yaml")
    except ValueError:  # DocumentError: the command wraps it into one ConfigError line
        return
    except PolicyError as error:
        event("rejected")
        assert_one_line(error)
        return
    event("accepted")
    doc = egressrouter.render_cr(parsed)
    assert egressrouter.parse_egressrouter(doc, source="cr.yaml") == parsed
    assert egressrouter.parse_egressrouter(load_any(yaml.safe_dump(doc))[0], "cr.yaml") == parsed
