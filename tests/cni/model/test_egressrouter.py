"""The EgressRouter CR: validation per the CRD schema and the operator's rendering (golden)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from egress_router.cni.model.config import parse_config
from egress_router.cni.model.egressrouter import (
    DEPLOYMENT_NAME,
    NAD_NAME,
    cni_config,
    parse_egressrouter,
    render,
    render_cr,
)
from egress_router.errors import PolicyError

# notes §5.3, verbatim except the optional fallbackIP placeholder line
CANONICAL = """\
apiVersion: network.operator.openshift.io/v1
kind: EgressRouter
metadata: {name: egress-router-redirect, namespace: <ns>}
spec:
  networkInterface: {macvlan: {mode: Bridge}}
  addresses: [{ip: "192.168.12.99/24", gateway: "192.168.12.1"}]
  mode: Redirect
  redirect:
    redirectRules:
    - {destinationIP: "10.0.0.99", port: 80, protocol: UDP}
    - {destinationIP: "203.0.113.26", port: 8080, targetPort: 80, protocol: TCP}
    - {destinationIP: "203.0.113.27", port: 8443, targetPort: 443, protocol: TCP}
"""

# notes §1.2, the CNO's rendering, with the canonical CR's values
EXPECTED_CONFIG = {
    "cniVersion": "0.4.0",
    "type": "egress-router",
    "name": "egress-router-cni-nad",
    "ip": {
        "addresses": ["192.168.12.99/24"],
        "destinations": [
            "80 UDP 10.0.0.99",
            "8080 TCP 203.0.113.26 80",
            "8443 TCP 203.0.113.27 443",
        ],
        "gateway": "192.168.12.1",
    },
    "log_file": "/tmp/egress-router-log",
    "log_level": "debug",
}

EXPECTED_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: egress-router-cni-deployment
  namespace: <ns>
  annotations: {release.openshift.io/version: 4.99.0}
  ownerReferences:
  - {apiVersion: network.operator.openshift.io/v1, kind: EgressRouter,
     name: egress-router-redirect, uid: 1234-abcd, controller: true}
  labels: {app: egress-router-cni}
spec:
  replicas: 1
  selector: {matchLabels: {app: egress-router-cni}}
  template:
    metadata:
      labels: {app: egress-router-cni}
      annotations:
        target.workload.openshift.io/management: '{"effect": "PreferredDuringScheduling"}'
        k8s.v1.cni.cncf.io/networks: |
          [
            {
              "name":"egress-router-cni-nad",
              "default-route": ["192.168.12.1"]
            }
          ]
    spec:
      containers:
      - name: egress-router-cni-pod
        image: example.com/egress-router-cni:1
        command: ['/bin/sh', '-c', 'sleep infinity']
        terminationMessagePolicy: FallbackToLogsOnError
        resources: {requests: {cpu: 100m}}
"""


def _cr(**spec_changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(CANONICAL)
    doc["spec"].update(spec_changes)
    return doc


def test_canonical_cr_renders_the_operators_objects() -> None:
    doc = yaml.safe_load(CANONICAL)
    doc["metadata"]["uid"] = "1234-abcd"
    router = parse_egressrouter(doc)
    nad, deployment = render(router, release="4.99.0", image="example.com/egress-router-cni:1")
    assert nad["apiVersion"] == "k8s.cni.cncf.io/v1"
    assert nad["kind"] == "NetworkAttachmentDefinition"
    assert nad["metadata"]["name"] == NAD_NAME == "egress-router-cni-nad"
    assert nad["metadata"]["namespace"] == "<ns>"
    assert nad["metadata"]["annotations"] == {"release.openshift.io/version": "4.99.0"}
    assert nad["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "network.operator.openshift.io/v1",
            "kind": "EgressRouter",
            "name": "egress-router-redirect",
            "uid": "1234-abcd",
            "controller": True,
        }
    ]
    assert json.loads(nad["spec"]["config"]) == EXPECTED_CONFIG
    assert deployment["metadata"]["name"] == DEPLOYMENT_NAME
    assert deployment == yaml.safe_load(EXPECTED_DEPLOYMENT)


def test_rendered_config_is_accepted_by_the_plugin() -> None:
    router = parse_egressrouter(
        _cr(redirect={**_cr()["spec"]["redirect"], "fallbackIP": "5.6.7.8"})
    )
    nad, _ = render(router)
    config = parse_config(nad["spec"]["config"])
    assert str(config.ip.address) == "192.168.12.99/24"
    assert len(config.ip.destination.rules) == 3
    assert str(config.ip.destination.fallback) == "5.6.7.8"


TWO_ADDRESSES = [
    {"ip": "192.168.12.99/24", "gateway": "192.168.12.1"},
    {"ip": "192.168.12.100/24", "gateway": "192.168.12.1"},
]


def test_every_address_reaches_the_plugin_with_its_gateway() -> None:
    router = parse_egressrouter(_cr(addresses=TWO_ADDRESSES))
    ip = cni_config(router)["ip"]
    assert ip["addresses"] == ["192.168.12.99/24", "192.168.12.100/24"]
    assert (ip["gateway"], ip["gateways"]) == ("192.168.12.1", ["192.168.12.1"] * 2)
    nad, deployment = render(router)
    config = parse_config(nad["spec"]["config"])
    assert [str(a) for a in config.ip.addresses] == ip["addresses"]
    annotation = deployment["spec"]["template"]["metadata"]["annotations"]
    assert '"default-route": ["192.168.12.1"]' in annotation["k8s.v1.cni.cncf.io/networks"]
    assert parse_egressrouter(render_cr(router)) == router


def test_one_gateway_spelled_two_ways_is_one_gateway() -> None:
    """Addresses are kept as written, but compared as addresses: the same IPv6 gateway written
    in long and short form is one gateway (the plugin's ip.gateways check agrees)."""
    addresses = [
        {"ip": "2001:db8:1::99/64", "gateway": "2001:db8:1::1"},
        {"ip": "2001:db8:1::100/64", "gateway": "2001:0db8:0001::1"},
    ]
    router = parse_egressrouter(_cr(addresses=addresses, redirect={"redirectRules": []}))
    assert router.gateways == ("2001:db8:1::1",)
    config = parse_config(json.dumps(cni_config(router)))
    assert [str(g) for g in config.ip.gateways] == ["2001:db8:1::1"]


def test_single_address_config_has_no_extension() -> None:
    assert "gateways" not in cni_config(parse_egressrouter(_cr()))["ip"]


def test_network_interface_is_rendered_when_not_default() -> None:
    router = parse_egressrouter(
        _cr(networkInterface={"macvlan": {"mode": "Private", "master": "ens4"}})
    )
    assert cni_config(router)["interfaceArgs"] == {"mode": "private", "master": "ens4"}
    assert "interfaceArgs" not in cni_config(parse_egressrouter(_cr(networkInterface={})))


def test_defaults() -> None:
    doc = _cr()
    del doc["spec"]["mode"], doc["spec"]["networkInterface"], doc["metadata"]["namespace"]
    router = parse_egressrouter(doc)
    assert (router.mode, router.master, router.namespace) == ("Bridge", None, "default")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mode": "HTTPProxy"}, 'spec.mode: must be "Redirect", got "HTTPProxy"'),
        ({"addresses": []}, "spec.addresses: router without addresses"),
        ({"addresses": None}, "spec.addresses: required"),
        ({"addresses": [{"ip": "192.168.12.99"}]}, "spec.addresses[0].ip: must be an address/"),
        ({"addresses": [{"ip": "192.168.12.99/24"}]}, "spec.addresses[0].gateway: required"),
        (
            {"addresses": [{"ip": "192.168.12.99/24", "gateway": "x"}]},
            'spec.addresses[0].gateway: must be an IP address, got "x"',
        ),
        (
            {"addresses": [{"ip": "fd00::5/64", "gateway": "192.168.3.1"}]},
            "spec.addresses[0].gateway: 192.168.3.1 is not of the family of fd00::5/64",
        ),
        (
            {"addresses": [{"ip": "::ffff:192.168.3.10/120", "gateway": "192.168.3.1"}]},
            "spec.addresses[0].ip: ::ffff:192.168.3.10/120 is an IPv6 spelling of 192.168.3.10",
        ),
        (
            {
                "addresses": [
                    {"ip": "192.168.12.99/24", "gateway": "192.168.12.1"},
                    {"ip": "192.168.12.100/24", "gateway": "192.168.12.254"},
                ]
            },
            "spec.addresses[1].gateway: 192.168.12.254 differs from spec.addresses[0].gateway "
            "192.168.12.1: the router pod has one default route",
        ),
        (
            {
                "addresses": [
                    {"ip": "192.168.12.99/24", "gateway": "192.168.12.1"},
                    {"ip": "192.168.12.99/25", "gateway": "192.168.12.1"},
                ]
            },
            "spec.addresses[1].ip: 192.168.12.99 is already spec.addresses[0].ip",
        ),
        (
            {
                "addresses": [
                    {"ip": "192.168.12.99/24", "gateway": "192.168.12.1"},
                    {"ip": "192.168.12.1/24", "gateway": "192.168.12.1"},
                ]
            },
            "spec.addresses[1].ip: 192.168.12.1 is the gateway itself",
        ),
        (
            {
                "addresses": [
                    {"ip": "fd00::5/64", "gateway": "fd00::1"},
                    {"ip": "192.168.12.99/24", "gateway": "192.168.12.1"},
                    {"ip": "fd00::6/64", "gateway": "fd00::2"},
                ]
            },
            "spec.addresses[2].gateway: fd00::2 differs from spec.addresses[0].gateway fd00::1",
        ),
        (
            {
                "addresses": [
                    {"ip": f"192.168.12.{i}/24", "gateway": "192.168.12.1"} for i in range(2, 19)
                ]
            },
            "spec.addresses: at most 16 addresses, got 17",
        ),
        ({"redirect": None}, "spec.redirect: must be an object"),
        (
            {"redirect": {"redirectRules": [{"destinationIP": "1.2.3.4", "port": 80}]}},
            "spec.redirect.redirectRules[0].protocol: required",
        ),
        (
            {
                "redirect": {
                    "redirectRules": [
                        {"destinationIP": "1.2.3.4/30", "port": 80, "protocol": "TCP"}
                    ]
                }
            },
            "spec.redirect.redirectRules[0].destinationIP: must be an IP address",
        ),
        (
            {
                "redirect": {
                    "redirectRules": [{"destinationIP": "1.2.3.4", "port": 0, "protocol": "TCP"}]
                }
            },
            "spec.redirect.redirectRules[0].port: must be an integer 1-65535, got 0",
        ),
        (
            {
                "redirect": {
                    "redirectRules": [{"destinationIP": "1.2.3.4", "port": 1, "protocol": "tcp"}]
                }
            },
            'spec.redirect.redirectRules[0].protocol: must be one of TCP, UDP, SCTP, got "tcp"',
        ),
        (
            {
                "redirect": {
                    "redirectRules": [
                        {
                            "destinationIP": "1.2.3.4",
                            "port": 1,
                            "protocol": "TCP",
                            "targetPort": 70000,
                        }
                    ]
                }
            },
            "spec.redirect.redirectRules[0].targetPort: must be an integer 1-65535, got 70000",
        ),
        ({"redirect": {"fallbackIP": "nope"}}, "spec.redirect.fallbackIP: must be an IP address"),
        ({"redirect": {"extra": 1}}, "spec.redirect.extra: unknown field"),
        (
            {"networkInterface": {"macvlan": {"mode": "bridge"}}},
            "spec.networkInterface.macvlan.mode: must be one of Bridge, Private, VEPA, Passthru, "
            'got "bridge"',
        ),
    ],
)
def test_invalid_cr(changes: dict[str, Any], message: str) -> None:
    doc = _cr(**changes)
    if changes.get("redirect", 0) is None:
        doc["spec"]["redirect"] = None
    with pytest.raises(PolicyError) as info:
        parse_egressrouter(doc, source="cr.yaml")
    assert str(info.value).startswith(f"cr.yaml, {message}"), str(info.value)
    assert "\n" not in str(info.value)


def test_missing_redirect_and_wrong_kind() -> None:
    doc = _cr()
    del doc["spec"]["redirect"]
    with pytest.raises(PolicyError, match=r"spec\.redirect: required"):
        parse_egressrouter(doc)
    with pytest.raises(PolicyError, match="apiVersion/kind: must be"):
        parse_egressrouter({**_cr(), "kind": "Pod"})
    with pytest.raises(PolicyError, match=r"metadata\.name: required"):
        parse_egressrouter({**_cr(), "metadata": {}})


# -- IPv6 and dual stack ------------------------------------------------------------------------

DUAL_ADDRESSES = [
    {"ip": "192.168.12.99/24", "gateway": "192.168.12.1"},
    {"ip": "2001:db8:1::99/64", "gateway": "2001:db8:1::1"},
    {"ip": "2001:db8:1::98/64", "gateway": "2001:db8:1::1"},
]
DUAL_REDIRECT = {
    "redirectRules": [
        {"destinationIP": "203.0.113.26", "port": 80, "protocol": "TCP"},
        {"destinationIP": "2001:db8:2::26", "port": 80, "protocol": "TCP"},  # per family
        {"destinationIP": "2001:db8:2::27", "port": 8443, "targetPort": 443, "protocol": "TCP"},
    ],
    "fallbackIP": "2001:db8:2::25",
}


def test_dual_stack_router_renders_its_cni_config_and_annotation() -> None:
    router = parse_egressrouter(_cr(addresses=DUAL_ADDRESSES, redirect=DUAL_REDIRECT))
    assert router.gateways == ("192.168.12.1", "2001:db8:1::1")
    assert cni_config(router) == {
        "cniVersion": "0.4.0",
        "type": "egress-router",
        "name": "egress-router-cni-nad",
        "ip": {
            "addresses": ["192.168.12.99/24", "2001:db8:1::99/64", "2001:db8:1::98/64"],
            "destinations": [
                "80 TCP 203.0.113.26",
                "80 TCP 2001:db8:2::26",
                "8443 TCP 2001:db8:2::27 443",
            ],
            "fallbackIP": "2001:db8:2::25",
            "gateway": "192.168.12.1",
            "gateways": ["192.168.12.1", "2001:db8:1::1", "2001:db8:1::1"],
        },
        "log_file": "/tmp/egress-router-log",
        "log_level": "debug",
    }
    nad, deployment = render(router)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["k8s.v1.cni.cncf.io/networks"] == (
        "[\n"
        "  {\n"
        '    "name":"egress-router-cni-nad",\n'
        '    "default-route": ["192.168.12.1", "2001:db8:1::1"]\n'
        "  }\n"
        "]\n"
    )
    assert json.loads(annotations["k8s.v1.cni.cncf.io/networks"]) == [
        {"name": "egress-router-cni-nad", "default-route": ["192.168.12.1", "2001:db8:1::1"]}
    ]
    config = parse_config(nad["spec"]["config"])  # the plugin takes what the operator renders
    assert [str(a) for a in config.ip.addresses] == [a["ip"] for a in DUAL_ADDRESSES]
    assert [str(g) for g in config.ip.gateways] == ["192.168.12.1", "2001:db8:1::1"]
    assert parse_egressrouter(render_cr(router)) == router


def test_ipv6_only_router() -> None:
    router = parse_egressrouter(
        _cr(
            addresses=[{"ip": "2001:db8:1::99/64", "gateway": "fe80::1"}],
            redirect={"redirectRules": [DUAL_REDIRECT["redirectRules"][1]]},
        )
    )
    ip = cni_config(router)["ip"]
    assert ip == {
        "addresses": ["2001:db8:1::99/64"],
        "destinations": ["80 TCP 2001:db8:2::26"],
        "gateway": "fe80::1",
    }
    _, deployment = render(router)
    annotation = deployment["spec"]["template"]["metadata"]["annotations"]
    assert json.loads(annotation["k8s.v1.cni.cncf.io/networks"])[0]["default-route"] == ["fe80::1"]
    parse_config(json.dumps(cni_config(router)))


def _rules(*rules: dict[str, Any], fallback: str | None = None) -> dict[str, Any]:
    redirect: dict[str, Any] = {"redirectRules": list(rules)}
    if fallback is not None:
        redirect["fallbackIP"] = fallback
    return redirect


def _tcp(ip: str, port: int = 80) -> dict[str, Any]:
    return {"destinationIP": ip, "port": port, "protocol": "TCP"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"redirect": _rules(_tcp("203.0.113.26"), _tcp("203.0.113.27", 81), _tcp("10.0.0.9"))},
            "spec.redirect.redirectRules[2].port: TCP port 80 is already redirectRules[0] (a "
            "local port is redirected to one destination)",
        ),
        (
            {
                "addresses": DUAL_ADDRESSES,
                "redirect": _rules(_tcp("2001:db8:2::5"), _tcp("203.0.113.5"), _tcp("2001:db8::6")),
            },
            "spec.redirect.redirectRules[2].port: TCP port 80 is already redirectRules[0] (a "
            "local port is redirected to one destination)",
        ),
        (
            {"redirect": _rules(_tcp("2001:db8:2::5"))},
            "spec.redirect.redirectRules[0].destinationIP: 2001:db8:2::5 is IPv6 but "
            "spec.addresses has no IPv6 address",
        ),
        (
            {"redirect": _rules(fallback="2001:db8:2::5")},
            "spec.redirect.fallbackIP: 2001:db8:2::5 is IPv6 but spec.addresses has no IPv6 "
            "address",
        ),
        (
            {"addresses": DUAL_ADDRESSES[1:], "redirect": _rules(fallback="203.0.113.5")},
            "spec.redirect.fallbackIP: 203.0.113.5 is IPv4 but spec.addresses has no IPv4 address",
        ),
        (
            {"addresses": DUAL_ADDRESSES, "redirect": _rules(_tcp("2001:db8:2::5%eth0"))},
            "spec.redirect.redirectRules[0].destinationIP: must be an IP address, got "
            '"2001:db8:2::5%eth0"',
        ),
        (
            {"addresses": DUAL_ADDRESSES, "redirect": _rules(_tcp("fe80::5"))},
            "spec.redirect.redirectRules[0].destinationIP: fe80::5 cannot be a destination "
            "(link-local)",
        ),
        (
            {"addresses": DUAL_ADDRESSES, "redirect": _rules(_tcp("::1"))},
            "spec.redirect.redirectRules[0].destinationIP: ::1 cannot be a destination (loopback)",
        ),
        (
            {"addresses": DUAL_ADDRESSES, "redirect": _rules(fallback="ff02::1")},
            "spec.redirect.fallbackIP: ff02::1 cannot be a destination (multicast)",
        ),
        (
            {"redirect": _rules(fallback="255.255.255.255")},
            "spec.redirect.fallbackIP: 255.255.255.255 cannot be a destination (broadcast)",
        ),
        (
            {"redirect": _rules(fallback="127.0.0.1")},
            "spec.redirect.fallbackIP: 127.0.0.1 cannot be a destination (loopback)",
        ),
        (
            {"addresses": [{"ip": "fe80::5/64", "gateway": "fe80::1"}]},
            "spec.addresses[0].ip: fe80::5 cannot be an egress address (link-local)",
        ),
        (
            {"addresses": [{"ip": "ff02::5/64", "gateway": "2001:db8:1::1"}]},
            "spec.addresses[0].ip: ff02::5 cannot be an egress address (multicast)",
        ),
        (
            {"addresses": [{"ip": "2001:db8:1::99/64", "gateway": "2001:db8:1::1%eth0"}]},
            'spec.addresses[0].gateway: must be an IP address, got "2001:db8:1::1%eth0"',
        ),
        (
            {"addresses": [{"ip": "2001:db8:1::99/64", "gateway": "ff02::2"}]},
            "spec.addresses[0].gateway: ff02::2 cannot be a gateway (multicast)",
        ),
        (
            {"addresses": [{"ip": "2001:db8:1::99/64", "gateway": "::ffff:192.168.12.1"}]},
            "spec.addresses[0].gateway: ::ffff:192.168.12.1 is an IPv6 spelling of 192.168.12.1: "
            "write it as IPv4",
        ),
        (
            {"addresses": [{"ip": "2001:db8:1::99/64", "gateway": "2001:db8:1::99"}]},
            "spec.addresses[0].ip: 2001:db8:1::99 is the gateway itself",
        ),
    ],
)
def test_invalid_ipv6_and_dual_stack_cr(changes: dict[str, Any], message: str) -> None:
    doc = _cr(**{"redirect": _rules(), **changes})
    with pytest.raises(PolicyError) as info:
        parse_egressrouter(doc, source="cr.yaml")
    assert str(info.value) == f"cr.yaml, {message}"


def test_every_accepted_router_renders_a_config_the_plugin_accepts() -> None:
    """What the CR check lets through, the plugin takes: the refusals above mirror its own."""
    for redirect in (
        DUAL_REDIRECT,
        _rules(_tcp("169.254.10.1"), fallback="2001:db8:2::9"),  # IPv4 link-local is routable
    ):
        router = parse_egressrouter(_cr(addresses=DUAL_ADDRESSES, redirect=redirect))
        parse_config(json.dumps(cni_config(router)))
