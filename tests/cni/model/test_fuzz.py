"""Fuzz of the CNI network configuration and the EgressRouter CR (issue 8): documents built from
valid skeletons whose fields hypothesis replaces with arbitrary values; each is one line of our
error, or accepted and re-rendered identically (``parse(render(x)) == x``)."""

from __future__ import annotations

import json

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from egress_router.cni.model import config as cni_config
from egress_router.cni.model import egressrouter
from egress_router.common.documents import load_any
from egress_router.errors import PolicyError
from tests.fuzz import (
    assert_one_line,
    either,
    encoded,
    junk_text,
    mostly,
    or_junk,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
                        st.lists(
                            either(
                                "192.168.12.99/24",
                                "192.168.12.100/24",
                                "10.1.2.3/8",
                                "fe80::1%eth0/64",
                                valid=3,
                            ),
                            max_size=3,
                        ),
                        3,
                    ),
                    "gateway": either("192.168.12.1", "192.168.12.99", "\u0661.1.1.1"),
                    "destinations": or_junk(st.lists(entry, max_size=4, unique_by=repr)),
                },
                optional={
                    "fallbackIP": either("203.0.113.9", "203.0.113.10"),
                    "gateways": or_junk(
                        st.lists(either("192.168.12.1", "192.168.12.254"), max_size=3)
                    ),
                },
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
    {
        "ip": either("192.168.12.99/24", "192.168.12.100/24", "192.168.12.99", valid=2),
        "gateway": either("192.168.12.1", "192.168.12.254", valid=2),
    }
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
                    "addresses": or_junk(st.lists(address, min_size=1, max_size=3)),
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
    # what the operator renders for an accepted router, our plugin accepts (every address)
    config = cni_config.parse_config(json.dumps(egressrouter.cni_config(parsed)))
    assert [str(a) for a in config.ip.addresses] == [a.ip for a in parsed.addresses]
    doc = egressrouter.render_cr(parsed)
    assert egressrouter.parse_egressrouter(doc, source="cr.yaml") == parsed
    assert egressrouter.parse_egressrouter(load_any(yaml.safe_dump(doc))[0], "cr.yaml") == parsed
