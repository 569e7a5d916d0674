"""Helpers for the CNI plugin's namespace tests: a container namespace and the plugin runner."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from egress_router.kernel.netlink import Netlink, netns_path
from egress_router.lab.topology import Lab

PLUGIN = str(Path(sys.executable).parent / "egress-router-cni")
CONTAINER = "cpod"  # the extra lab role standing in for the egress router pod
CONTAINER_IP = "198.18.0.4"
LAB_CONFIG: dict[str, Any] = {
    "cniVersion": "0.4.0",
    "name": "egress-router-cni-nad",
    "type": "egress-router",
    "interfaceArgs": {"master": "ext0"},
    "ip": {
        "addresses": ["198.19.123.99/24"],
        "destinations": ["8080 TCP 203.0.113.25 80", "5353 udp 203.0.113.26"],
        "gateway": "198.19.123.1",
    },
}


def attach_cluster_side(lab: Lab) -> None:
    """Give the container pod an ``eth0`` on the node's cbr0 and a default route via the node."""
    with Netlink(lab.ns("node")) as node:
        node.add_veth("vcpod", "eth0", lab.ns(CONTAINER))
        node.set_master("vcpod", "cbr0")
        node.set_up("vcpod")
    with Netlink(lab.ns(CONTAINER)) as pod:
        pod.set_up("eth0")
        pod.add_address("eth0", ipaddress.IPv4Interface(f"{CONTAINER_IP}/24"))
        pod.add_route(None, ipaddress.IPv4Address("198.18.0.1"), "eth0")


def run_plugin(
    lab: Lab,
    command: str,
    config: dict[str, Any] | str | None,
    log_file: Path,
    ifname: str = "net1",
    netns: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the plugin inside the lab's node namespace, as multus would on a node."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CNI_", "EGRESS_"))}
    env.update(
        {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": "c0ffee",
            "CNI_NETNS": netns if netns is not None else netns_path(lab.ns(CONTAINER)),
            "CNI_IFNAME": ifname,
            "CNI_PATH": "/opt/cni/bin",
            "EGRESS_ROUTER_CNI_LOG": str(log_file),
        }
    )
    if isinstance(config, dict):
        config = json.dumps({**config, "log_file": str(log_file)})
    argv = ["ip", "netns", "exec", lab.ns("node"), PLUGIN]
    return subprocess.run(
        argv, input=config or "", capture_output=True, text=True, env=env, timeout=30
    )


def container_state(lab: Lab) -> dict[str, Any]:
    """Links, routes and our table inside the container pod."""

    def run(argv: list[str]) -> str:
        return str(lab.exec(CONTAINER, argv).stdout)

    return {
        "links": json.loads(run(["ip", "-d", "-j", "link"])),
        "routes": run(["ip", "route"]),
        "ruleset": run(["nft", "list", "ruleset"]),
    }
