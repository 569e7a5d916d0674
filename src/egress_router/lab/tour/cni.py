"""Tour part ``cni``: the CNI plugin as multus calls it on a node: ADD, traffic, DEL.

Owns: the CNI steps: a container pod on the node's bridge, the plugin run in the node's
namespace with the CNI variables and a NetworkAttachmentDefinition config on stdin, traffic
from the client pod through the container pod, and DEL removing what ADD made.
Must not: configure the container pod itself (the plugin does).
"""

from __future__ import annotations

import json
from typing import Any

from egress_router.kernel.netlink import netns_path
from egress_router.lab.firewall import add_pod
from egress_router.lab.topology import ADDR
from egress_router.lab.tour.base import EGRESS_ROUTER_CNI, S25, SOURCE, Part, Tour

ROLE = "cpod"  # the extra lab namespace standing in for the pod multus attaches
POD_IP = "198.18.0.4"
CONFIG: dict[str, Any] = {
    "cniVersion": "0.4.0",
    "name": "egress-router-cni-nad",
    "type": "egress-router",
    "interfaceArgs": {"master": "ext0"},
    "ip": {
        "addresses": [f"{SOURCE}/24"],
        "destinations": [f"8080 tcp {S25} 80"],
        "gateway": str(ADDR.gateway_ip),
    },
}


def _plugin(tour: Tour, command: str) -> Any:
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": f"demo{tour.lab.lab_id}",
        "CNI_NETNS": netns_path(tour.lab.ns(ROLE)),
        "CNI_IFNAME": "net1",
        "CNI_PATH": "/opt/cni/bin",
        "EGRESS_ROUTER_CNI_LOG": str(tour.lab.work / "cni.log"),
    }
    config = json.dumps({**CONFIG, "log_file": str(tour.lab.work / "cni.log")})
    return tour.run("node", [EGRESS_ROUTER_CNI], env=env, input=config)


def _pod_state(tour: Tour) -> tuple[bool, bool]:
    """(net1 exists, our table exists) in the container pod."""
    links = tour.run(ROLE, ["ip", "-o", "link", "show"]).stdout
    tables = tour.run(ROLE, ["nft", "list", "tables"]).stdout
    return " net1@" in links or " net1:" in links, "egress_router" in tables


def run(tour: Tour) -> None:
    tour.web()
    tour.step("A pod on the node's bridge; the router pod gives the reserved IP back")
    add_pod(tour.lab, ROLE, POD_IP)
    # the reserved IP is the CNI pod's now: the router pod's macvlan lets it go
    tour.run("router", ["ip", "addr", "flush", "dev", tour.lab.macvlan_name])
    tour.forget_neighbours()
    tour.note(f"container pod {tour.lab.ns(ROLE)}: eth0 {POD_IP}")

    tour.step("CNI ADD, as multus runs it on the node (config on stdin)")
    tour.note(f"ip.destinations: {CONFIG['ip']['destinations']}")
    added = _plugin(tour, "ADD")
    try:
        result = json.loads(added.stdout) if added.returncode == 0 else {}
    except ValueError:
        result = {}
    interfaces = [i.get("name") for i in result.get("interfaces", [])]
    ips = [i.get("address") for i in result.get("ips", [])]
    tour.check(
        "ADD answers a result: net1 in the pod with the reserved IP",
        interfaces == ["net1"] and ips == [f"{SOURCE}/24"],
        f"interfaces {interfaces}, ips {ips}"
        if result
        else f"exit {added.returncode}: {(added.stdout + added.stderr).strip()[-200:]}",
    )

    tour.step("Traffic through the container pod")
    status, out, err = tour.curl(f"http://{POD_IP}:8080/ip", timeout=5)
    tour.check(
        f"the client reaches {S25}:80 through the pod's port 8080, from {SOURCE}",
        status == 0 and out == SOURCE,
        f"curl http://{POD_IP}:8080/ip -> {out or err}",
    )

    tour.step("CNI DEL removes what ADD made")
    deleted = _plugin(tour, "DEL")
    has_link, has_table = _pod_state(tour)
    tour.check(
        "DEL exits 0; net1 and the pod's nftables table are gone",
        deleted.returncode == 0 and not has_link and not has_table,
        f"exit {deleted.returncode}; net1 {'present' if has_link else 'gone'}, "
        f"table {'present' if has_table else 'gone'}",
    )


PART = Part(
    name="cni",
    title="The CNI plugin: egress-router-cni as multus runs it",
    proves="ADD gives a pod a macvlan with the reserved IP and its redirect rules, traffic "
    "leaves from that IP, DEL removes it all",
    run=run,
)
