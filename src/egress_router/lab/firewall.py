"""Lab additions for the egress firewall: IPv6 (documentation prefix) and a second pod.

Owns: giving an up lab IPv6 addresses and routes inside its namespaces only (2001:db8::/32,
the documentation prefix, on the same links as the IPv4 topology: cluster 2001:db8:18::/64,
LAN 2001:db8:123::/64, servers 2001:db8:113::/64, no NAT), and wiring an extra namespace (one
of ``Lab.extra_roles``) as another pod on the node's bridge.
Must not: touch the host namespace or change anything the base topology set up.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from egress_router.errors import DataplaneError
from egress_router.kernel.netlink import Netlink
from egress_router.lab import procs
from egress_router.lab.topology import Lab

V6 = ipaddress.IPv6Address


@dataclass(frozen=True)
class V6Addressing:
    cluster_net: str = "2001:db8:18::/64"
    node_cluster_ip: V6 = V6("2001:db8:18::1")
    client_pod_ip: V6 = V6("2001:db8:18::3")
    lan_gw: V6 = V6("2001:db8:123::1")
    node_lan_ip: V6 = V6("2001:db8:123::10")
    gw_server_ip: V6 = V6("2001:db8:113::1")
    server_ip: V6 = V6("2001:db8:113::25")


ADDR6 = V6Addressing()


def _ip6(lab: Lab, role: str, *args: str) -> None:
    lab.exec(role, ["ip", "-6", *args], check=True)


def _addr6(lab: Lab, role: str, dev: str, address: V6, prefix: int = 64) -> None:
    _ip6(lab, role, "addr", "add", f"{address}/{prefix}", "dev", dev, "nodad")


def add_ipv6(lab: Lab) -> V6Addressing:
    """Dual-stack the lab: client pod, node, gateway and web server get IPv6 too."""
    a = ADDR6
    for role in ("node", "gw"):
        lab.sysctl(role, "net.ipv6.conf.all.forwarding", "1")
    _addr6(lab, "client", "eth0", a.client_pod_ip)
    _ip6(lab, "client", "route", "add", "default", "via", str(a.node_cluster_ip))
    _addr6(lab, "node", "cbr0", a.node_cluster_ip)
    _addr6(lab, "node", "ext0", a.node_lan_ip)
    _ip6(lab, "node", "route", "add", "default", "via", str(a.lan_gw))
    _addr6(lab, "gw", "lan0", a.lan_gw)
    _addr6(lab, "gw", "srv0", a.gw_server_ip)
    _ip6(lab, "gw", "route", "add", a.cluster_net, "via", str(a.node_lan_ip))
    _addr6(lab, "web", "eth0", a.server_ip)
    _ip6(lab, "web", "route", "add", "default", "via", str(a.gw_server_ip))

    # Link-local addresses stay "tentative" (unusable for neighbour discovery) for a second
    # or two after a link comes up; wait so the first IPv6 connection does not time out.
    def settled() -> bool:
        return all(
            not lab.exec(role, ["ip", "-6", "addr", "show", "tentative"]).stdout.strip()
            for role in ("client", "node", "gw", "web")
        )

    if not procs.wait_for(settled, 10.0, interval=0.1):
        raise DataplaneError("IPv6 addresses of the lab stayed tentative")
    return a


def add_pod(lab: Lab, role: str, address: str, port_name: str | None = None) -> None:
    """Wire ``role`` (listed in ``lab.extra_roles``) as a pod with ``address`` on cbr0."""
    if role not in lab.extra_roles:
        raise ValueError(f"{role} must be one of the lab's extra_roles")
    port = port_name or f"v{role}"[:15]
    with Netlink(lab.ns("node")) as node:
        node.add_veth(port, "eth0", lab.ns(role))
        node.set_master(port, "cbr0")
        node.set_up(port)
    with Netlink(lab.ns(role)) as pod:
        pod.set_up("eth0")
        pod.add_address("eth0", ipaddress.IPv4Interface(f"{address}/24"))
        pod.add_route(None, lab.addr.node_cluster_ip)
