"""IPv6 beside IPv4 on the lab's networks (dual stack), for the IPv6 egress router.

Owns: the lab's IPv6 addresses (all from 2001:db8::/32, the documentation prefix) and putting
them on a built ``Lab``: the cluster network, the node's external LAN and the server network
each get a /64, with routes and forwarding as the IPv4 ones have.
Must not: touch the host's namespace, or anything of the lab's IPv4 side.

    client pod  eth0 2001:db8:c::3 ─┐
                                    ├─ cbr0 2001:db8:c::1 [node] ext0 2001:db8:1::10
    (extra pods, e.g. the CNI's     │                               ║
     container: 2001:db8:c::4)    ──┘                lan0 2001:db8:1::1 [gateway]
                                                     srv0 2001:db8:2::1
                                 web server eth0 2001:db8:2::25 (+ ::26, ::27)

The router's reserved IPv6 address on the LAN is ``egress_source`` (2001:db8:1::99). The lab
builds with duplicate address detection off (``topology._NO_DAD``), so every address here is
usable at once.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from egress_router.kernel.netlink import Netlink
from egress_router.lab.topology import Lab

IPv6 = ipaddress.IPv6Address
Iface6 = ipaddress.IPv6Interface


@dataclass(frozen=True)
class Addressing6:
    """The lab's IPv6 addresses (2001:db8::/32 only)."""

    cluster_net: ipaddress.IPv6Network = ipaddress.IPv6Network("2001:db8:c::/64")
    node_cluster_ip: IPv6 = IPv6("2001:db8:c::1")
    router_pod_ip: IPv6 = IPv6("2001:db8:c::2")
    client_pod_ip: IPv6 = IPv6("2001:db8:c::3")
    lan_net: ipaddress.IPv6Network = ipaddress.IPv6Network("2001:db8:1::/64")
    gateway_ip: IPv6 = IPv6("2001:db8:1::1")
    node_lan_ip: IPv6 = IPv6("2001:db8:1::10")
    egress_source: IPv6 = IPv6("2001:db8:1::99")
    server_net: ipaddress.IPv6Network = ipaddress.IPv6Network("2001:db8:2::/64")
    gateway_server_ip: IPv6 = IPv6("2001:db8:2::1")
    server_ips: tuple[IPv6, ...] = (
        IPv6("2001:db8:2::25"),
        IPv6("2001:db8:2::26"),
        IPv6("2001:db8:2::27"),
    )

    def on(self, net: ipaddress.IPv6Network, address: IPv6) -> Iface6:
        return Iface6(f"{address}/{net.prefixlen}")


ADDR6 = Addressing6()


def enable_ipv6(lab: Lab, pods: dict[str, IPv6] | None = None) -> Addressing6:
    """Give the built ``lab`` its IPv6 side; ``pods``: extra roles wired to cbr0 by the caller
    (their ``eth0``) and the cluster address each gets. Returns the addressing used."""
    a = ADDR6
    with Netlink(lab.ns("node")) as node:
        node.add_address("cbr0", a.on(a.cluster_net, a.node_cluster_ip))
        node.add_address("ext0", a.on(a.lan_net, a.node_lan_ip))
        node.add_route(None, a.gateway_ip, "ext0")
    pods_on_cbr0 = {
        "router": (lab.cluster_ifname, a.router_pod_ip),
        "client": ("eth0", a.client_pod_ip),
    }
    for role, address in (pods or {}).items():
        pods_on_cbr0[role] = ("eth0", address)
    for role, (ifname, address) in pods_on_cbr0.items():
        with Netlink(lab.ns(role)) as pod:
            pod.add_address(ifname, a.on(a.cluster_net, address))
            pod.add_route(None, a.node_cluster_ip, ifname)
    with Netlink(lab.ns("gw")) as gw:
        gw.add_address("lan0", a.on(a.lan_net, a.gateway_ip))
        gw.add_address("srv0", a.on(a.server_net, a.gateway_server_ip))
    with Netlink(lab.ns("web")) as web:
        for ip in a.server_ips:
            web.add_address("eth0", a.on(a.server_net, ip))
        web.add_route(None, a.gateway_server_ip, "eth0")
    for role in ("node", "gw"):
        lab.sysctl(role, "net.ipv6.conf.all.forwarding", "1")
    return a
