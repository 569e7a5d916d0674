"""The CNI texts: result layouts per version, error JSON, Go-style lists and rule log lines."""

from __future__ import annotations

import json

import pytest

from egress_router.cni.model.config import CniError, parse_config, parse_destinations
from egress_router.cni.model.skel import (
    Invocation,
    add_result,
    dnat_rule_texts,
    error_json,
    go_list,
    go_route,
    parse_invocation,
)

CONFIG = {
    "cniVersion": "0.4.0",
    "name": "n",
    "ip": {"addresses": ["192.168.3.10/24"], "gateway": "192.168.3.1"},
    "dns": {"nameservers": ["10.0.0.10"]},
}


def test_result_0_4_0_layout() -> None:
    text = add_result(parse_config(json.dumps(CONFIG)), "net1", "1a:9b:80:a1:1e:99", "/ns/x")
    assert not text.endswith("\n")
    assert text.startswith('{\n    "cniVersion": "0.4.0",\n    "interfaces": [')
    assert json.loads(text) == {
        "cniVersion": "0.4.0",
        "interfaces": [{"name": "net1", "mac": "1a:9b:80:a1:1e:99", "sandbox": "/ns/x"}],
        "ips": [
            {"version": "4", "interface": 0, "address": "192.168.3.10/24", "gateway": "192.168.3.1"}
        ],
        "dns": {"nameservers": ["10.0.0.10"]},
    }


def test_result_0_2_0_layout() -> None:
    for version in ("0.1.0", "0.2.0"):
        config = parse_config(json.dumps({**CONFIG, "cniVersion": version, "dns": {}}))
        assert json.loads(add_result(config, "net1", "m", "/ns/x")) == {
            "cniVersion": "0.2.0",
            "ip4": {"ip": "192.168.3.10/24", "gateway": "192.168.3.1"},
            "dns": {},
        }


def test_add_result_lists_every_address() -> None:
    two = {**CONFIG, "ip": {**CONFIG["ip"], "addresses": ["192.168.3.10/24", "192.168.3.11/24"]}}
    for version, extra in (("0.4.0", {"version": "4"}), ("1.0.0", {})):
        config = parse_config(json.dumps({**two, "cniVersion": version}))
        ips = json.loads(add_result(config, "net1", "m", "/ns/x"))["ips"]
        assert ips == [
            {**extra, "interface": 0, "address": a, "gateway": "192.168.3.1"}
            for a in ("192.168.3.10/24", "192.168.3.11/24")
        ]
    old = parse_config(json.dumps({**two, "cniVersion": "0.2.0"}))
    assert json.loads(add_result(old, "net1", "m", "/ns/x"))["ip4"]["ip"] == "192.168.3.10/24"


def test_error_json() -> None:
    doc = json.loads(error_json(CniError("boom", code=100), "0.3.1"))
    assert doc == {"cniVersion": "0.3.1", "code": 100, "msg": "boom"}
    assert '\n    "code": 100' in error_json(CniError("boom", code=100))


def test_log_texts() -> None:
    assert go_list(["80 UDP 10.0.0.99", "8080 TCP 203.0.113.26 80"]) == (
        "[80 UDP 10.0.0.99 8080 TCP 203.0.113.26 80]"
    )
    assert go_list([]) == "[]"
    destination = parse_destinations(
        ["80 UDP 10.0.0.99", "8080 TCP 203.0.113.26 80", "9 sctp 1.2.3.4"], fallback_ip="5.6.7.8"
    )
    assert dnat_rule_texts(destination) == [
        "iif eth0 udp dport 80 dnat to 10.0.0.99",
        "iif eth0 tcp dport 8080 dnat to 203.0.113.26:80",
        "iif eth0 sctp dport 9 dnat to 1.2.3.4",
        "iif eth0 dnat to 5.6.7.8",
    ]
    assert go_route(3, "10.128.10.1") == (
        "{Ifindex: 3 Dst: <nil> Src: <nil> Gw: 10.128.10.1 Flags: [] Table: 254}"
    )


def test_invocation_del_needs_no_netns() -> None:
    env = {"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "x", "CNI_IFNAME": "net1", "CNI_PATH": "/"}
    assert parse_invocation(env).netns == ""
    assert parse_invocation({"CNI_COMMAND": "VERSION"}).command == "VERSION"


def test_result_1_x_layout_has_no_ip_version() -> None:
    for version in ("1.0.0", "1.1.0"):
        config = parse_config(json.dumps({**CONFIG, "cniVersion": version}))
        assert json.loads(add_result(config, "net1", "m", "/ns/x")) == {
            "cniVersion": version,
            "interfaces": [{"name": "net1", "mac": "m", "sandbox": "/ns/x"}],
            "ips": [{"interface": 0, "address": "192.168.3.10/24", "gateway": "192.168.3.1"}],
            "dns": {"nameservers": ["10.0.0.10"]},
        }


def test_status_and_gc_invocations_need_no_container() -> None:
    for command in ("STATUS", "GC"):
        assert parse_invocation({"CNI_COMMAND": command, "CNI_PATH": "/opt/cni/bin"}) == (
            Invocation(command, path="/opt/cni/bin")
        )


ADD = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/ns", "CNI_PATH": "/"}


@pytest.mark.parametrize("ifname", ["net1", "eth0", "ens3.100", "a" * 15, "veth_1-x"])
def test_ifname_accepted(ifname: str) -> None:
    assert parse_invocation({**ADD, "CNI_IFNAME": ifname}).ifname == ifname


@pytest.mark.parametrize(
    "ifname",
    ["", ".", "..", "a" * 16, "a/b", "a:b", "a b", "net1\n", "net*", "\u00e9" * 8, "n\u00a0"],
)
def test_ifname_refused(ifname: str) -> None:
    """The one interface-name rule: "é" * 8 is 8 characters but 16 bytes (the kernel counts
    bytes); "net*" would be a wildcard in nftables."""
    try:
        parse_invocation({**ADD, "CNI_IFNAME": ifname})
    except CniError as exc:
        assert exc.code == 4 and f"invalid CNI_IFNAME: '{ifname}'" in str(exc)
    else:
        raise AssertionError(f"{ifname!r} accepted")


# -- IPv6 and dual stack ------------------------------------------------------------------------

DUAL = {
    "name": "n",
    "ip": {
        "addresses": ["2001:db8:1::99/64", "192.168.3.10/24", "2001:db8:1::98/64"],
        "gateways": ["2001:db8:1::1", "192.168.3.1", "2001:db8:1::1"],
    },
    "dns": {},
}
V6_ONLY = {"name": "n", "ip": {"addresses": ["2001:db8:1::99/64"], "gateway": "2001:db8:1::1"}}


def _result(doc: dict[str, object], version: str) -> str:
    return add_result(parse_config(json.dumps({**doc, "cniVersion": version})), "net1", "m", "/ns")


def test_0_2_0_result_has_one_address_per_family_ip4_first() -> None:
    assert _result(DUAL, "0.2.0") == (
        "{\n"
        '    "cniVersion": "0.2.0",\n'
        '    "ip4": {\n'
        '        "ip": "192.168.3.10/24",\n'
        '        "gateway": "192.168.3.1"\n'
        "    },\n"
        '    "ip6": {\n'
        '        "ip": "2001:db8:1::99/64",\n'
        '        "gateway": "2001:db8:1::1"\n'
        "    },\n"
        '    "dns": {}\n'
        "}"
    )
    assert json.loads(_result(V6_ONLY, "0.2.0")) == {
        "cniVersion": "0.2.0",
        "ip6": {"ip": "2001:db8:1::99/64", "gateway": "2001:db8:1::1"},
        "dns": {},
    }


DUAL_IPS = [
    ("2001:db8:1::99/64", "2001:db8:1::1", "6"),
    ("192.168.3.10/24", "192.168.3.1", "4"),
    ("2001:db8:1::98/64", "2001:db8:1::1", "6"),
]


@pytest.mark.parametrize("version", ["0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_results_list_every_address_with_its_family_and_gateway(version: str) -> None:
    with_version = not version.startswith("1.")
    assert json.loads(_result(DUAL, version)) == {
        "cniVersion": version,
        "interfaces": [{"name": "net1", "mac": "m", "sandbox": "/ns"}],
        "ips": [
            {
                **({"version": family} if with_version else {}),
                "interface": 0,
                "address": address,
                "gateway": gateway,
            }
            for address, gateway, family in DUAL_IPS
        ],
        "dns": {},
    }
    v6 = json.loads(_result(V6_ONLY, version))["ips"]
    assert v6 == [
        {
            **({"version": "6"} if with_version else {}),
            "interface": 0,
            "address": "2001:db8:1::99/64",
            "gateway": "2001:db8:1::1",
        }
    ]


def test_ipv6_dnat_log_texts_bracket_an_address_with_a_port() -> None:
    destination = parse_destinations(
        [
            "80 tcp 2001:db8::5",
            "8080 tcp 2001:db8::5 80",
            "9 SCTP 2001:db8::6 10",
            "53 udp 10.0.0.9 5353",
        ],
        fallback_ip="2001:db8::7",
    )
    assert dnat_rule_texts(destination) == [
        "iif eth0 tcp dport 80 dnat to 2001:db8::5",
        "iif eth0 tcp dport 8080 dnat to [2001:db8::5]:80",
        "iif eth0 sctp dport 9 dnat to [2001:db8::6]:10",
        "iif eth0 udp dport 53 dnat to 10.0.0.9:5353",
        "iif eth0 dnat to 2001:db8::7",
    ]
