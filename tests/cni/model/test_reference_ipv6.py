"""The reference's IPv6 EgressRouter (origin's e2e fixture ``egress-router-cni-v6-cr.yaml``)
rendered by our operator model and read by our plugin's config parser, end to end in memory."""

from __future__ import annotations

import json
from typing import Any

from egress_router.cni.model import config as cni_config
from egress_router.cni.model import egressrouter, skel
from egress_router.cni.model.config import CniConfig

V6_CR: dict[str, Any] = {
    "apiVersion": "network.operator.openshift.io/v1",
    "kind": "EgressRouter",
    "metadata": {"name": "egress-router-cni-v6", "namespace": "e2e"},
    "spec": {
        "addresses": [{"ip": "192:168:3::10/64", "gateway": "192:168:3::1"}],
        "mode": "Redirect",
        "redirect": {
            "redirectRules": [
                {"destinationIP": "10:100:3::0", "port": 80, "protocol": "UDP"},
                {"destinationIP": "203:0:113::26", "port": 8080, "protocol": "SCTP",
                 "targetPort": 80},
                {"destinationIP": "203:0:113::27", "port": 8443, "protocol": "TCP",
                 "targetPort": 443},
            ]
        },
        "networkInterface": {"macvlan": {"mode": "Bridge"}},
    },
}  # fmt: skip


def _parsed() -> CniConfig:
    router = egressrouter.parse_egressrouter(V6_CR)
    return cni_config.parse_config(json.dumps(egressrouter.cni_config(router)))


def test_the_destinations_reach_the_plugin_as_written_for_its_log_line() -> None:
    config = _parsed()
    assert skel.go_list(config.ip.destinations) == (
        "[80 UDP 10:100:3::0 8080 SCTP 203:0:113::26 80 8443 TCP 203:0:113::27 443]"
    )


def test_the_ipv6_router_results_and_rules() -> None:
    config = _parsed()
    assert [str(a) for a in config.ip.addresses] == ["192:168:3::10/64"]
    assert str(config.ip.gateway) == "192:168:3::1"
    result = json.loads(skel.add_result(config, "net1", "0a:58:0a:00:00:01", "/var/run/netns/x"))
    assert result["ips"] == [
        {"version": "6", "interface": 0, "address": "192:168:3::10/64", "gateway": "192:168:3::1"}
    ]
    assert skel.dnat_rule_texts(config.ip.destination) == [
        "iif eth0 udp dport 80 dnat to 10:100:3::",
        "iif eth0 sctp dport 8080 dnat to [203:0:113::26]:80",
        "iif eth0 tcp dport 8443 dnat to [203:0:113::27]:443",
    ]
    old = cni_config.CniConfig(**{**config.__dict__, "cni_version": "0.2.0"})
    assert json.loads(skel.add_result(old, "net1", "m", "s")) == {
        "cniVersion": "0.2.0",
        "ip6": {"ip": "192:168:3::10/64", "gateway": "192:168:3::1"},
        "dns": {},
    }
