"""The reference blog's topology, built from network namespaces on this one machine.

Owns: creating and deleting the lab's namespaces, links, addresses and routes (through the
netlink adapter), the node's NAT and the web server's firewall (through the nftables adapter,
run inside the lab namespaces), and the lab's state file.
Must not: open or change the host's own network namespace. Every link is created inside a lab
namespace (veth peers are born in their target namespace), and every address comes from
198.18.0.0/15 or 203.0.113.0/24.

    client pod  eth0 198.18.0.3 ─┐
                                 ├─ cbr0 198.18.0.1 [node] ext0 198.19.123.10
    router pod  eth0 198.18.0.2 ─┘                             ║ (veth)
                macvlan0 (on the node's ext0) ··············· lan0 198.19.123.1 [gateway]
                                                               srv0 203.0.113.1
                                                                 │ (veth)
                              web server eth0 203.0.113.25 (+ .26, .27)
                              admits only EGRESS_SOURCE 198.19.123.99

The router's macvlan sits on the node's external interface, as the SDN does with
``pod.network.openshift.io/assign-macvlan``; it is moved into the router pod unconfigured.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egress_router.common.nft import Table, match_meta
from egress_router.kernel import nftables
from egress_router.kernel.netlink import Netlink, create_netns, list_netns, remove_netns
from egress_router.lab import interrupts, procs

STATE_DIR = Path(os.environ.get("EGRESS_ROUTER_LAB_STATE", "/run/egress-router-lab"))

IPv4 = ipaddress.IPv4Address
Net = ipaddress.IPv4Network


@dataclass(frozen=True)
class Addressing:
    """Every address of the lab; all from 198.18.0.0/15 and 203.0.113.0/24."""

    cluster_net: Net = Net("198.18.0.0/24")
    node_cluster_ip: IPv4 = IPv4("198.18.0.1")
    router_pod_ip: IPv4 = IPv4("198.18.0.2")
    client_pod_ip: IPv4 = IPv4("198.18.0.3")
    lan_net: Net = Net("198.19.123.0/24")
    gateway_ip: IPv4 = IPv4("198.19.123.1")
    node_lan_ip: IPv4 = IPv4("198.19.123.10")
    egress_source: IPv4 = IPv4("198.19.123.99")
    server_net: Net = Net("203.0.113.0/24")
    gateway_server_ip: IPv4 = IPv4("203.0.113.1")
    server_ips: tuple[IPv4, ...] = (
        IPv4("203.0.113.25"),
        IPv4("203.0.113.26"),
        IPv4("203.0.113.27"),
    )

    @property
    def server_ip(self) -> IPv4:
        return self.server_ips[0]


ADDR = Addressing()
_NO_DAD = " && ".join(
    f"echo 0 > /proc/sys/net/ipv6/conf/{scope}/accept_dad" for scope in ("all", "default")
)


@dataclass
class Lab:
    """One lab instance. ``lab_id`` makes every name unique so runs cannot clash."""

    lab_id: str = field(default_factory=lambda: secrets.token_hex(3))
    macvlan_name: str = "macvlan0"
    cluster_ifname: str = "eth0"
    web_firewall: bool = True
    workdir: Path | None = None
    addr: Addressing = ADDR
    # Extra empty namespaces (only ``lo`` up) created and removed with the lab, for helpers
    # that add their own pods (e.g. a second client namespace); they get no links here.
    extra_roles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.workdir is None:
            self.workdir = STATE_DIR / self.lab_id
        self.processes = procs.ProcessGroup(self.workdir)
        # Only the process that made this object tears the lab down: a forked copy of it
        # (pyroute2's helpers are forks) must never run ``down``.
        self.owner_pid = os.getpid()

    # -- names -------------------------------------------------------------------------------

    def ns(self, role: str) -> str:
        """Namespace name of a role: node, router, client, gw, web."""
        return f"er{self.lab_id}-{role}"

    @property
    def roles(self) -> tuple[str, ...]:
        return ("node", "router", "client", "gw", "web", *self.extra_roles)

    @property
    def namespaces(self) -> list[str]:
        return [self.ns(r) for r in self.roles]

    @property
    def work(self) -> Path:
        assert self.workdir is not None
        return self.workdir

    # -- lifecycle ---------------------------------------------------------------------------

    def up(self) -> Lab:
        """Build the topology; on any failure, remove what was built and re-raise."""
        self.work.mkdir(parents=True, exist_ok=True)
        try:
            self._build()
            self.save()
        except BaseException:
            self.down()
            raise
        return self

    def _build(self) -> None:
        a = self.addr
        for role in self.roles:
            interrupts.checkpoint()
            create_netns(self.ns(role))
            # No duplicate address detection: a link-local address (and its local route) is
            # then final as soon as its link is up, not a second later, so a snapshot taken
            # right after ``up`` equals one taken later.
            self.exec(role, ["sh", "-c", _NO_DAD], check=True)
        for role in self.roles:
            interrupts.checkpoint()
            with Netlink(self.ns(role)) as nl:
                nl.set_up("lo")
        interrupts.checkpoint()
        with Netlink(self.ns("node")) as node:
            node.add_bridge("cbr0")
            node.add_veth("vrouter", self.cluster_ifname, self.ns("router"))
            node.add_veth("vclient", "eth0", self.ns("client"))
            node.add_veth("ext0", "lan0", self.ns("gw"))
            for port in ("vrouter", "vclient"):
                node.set_master(port, "cbr0")
                node.set_up(port)
            node.set_up("cbr0")
            node.add_address("cbr0", ipaddress.IPv4Interface(f"{a.node_cluster_ip}/24"))
            node.set_up("ext0")
            node.add_address("ext0", ipaddress.IPv4Interface(f"{a.node_lan_ip}/24"))
            node.add_route(None, a.gateway_ip)
            # The platform's part: a macvlan on the node's external NIC, moved into the pod.
            node.add_macvlan("mvtmp", "ext0", mode="private")
            node.move_link("mvtmp", self.ns("router"), new_name=self.macvlan_name)
        interrupts.checkpoint()
        with Netlink(self.ns("router")) as router:
            router.set_up(self.cluster_ifname)
            router.add_address(
                self.cluster_ifname, ipaddress.IPv4Interface(f"{a.router_pod_ip}/24")
            )
            router.add_route(None, a.node_cluster_ip)
        interrupts.checkpoint()
        with Netlink(self.ns("client")) as client:
            client.set_up("eth0")
            client.add_address("eth0", ipaddress.IPv4Interface(f"{a.client_pod_ip}/24"))
            client.add_route(None, a.node_cluster_ip)
        interrupts.checkpoint()
        with Netlink(self.ns("gw")) as gw:
            gw.add_veth("srv0", "eth0", self.ns("web"))
            gw.set_up("lan0")
            gw.add_address("lan0", ipaddress.IPv4Interface(f"{a.gateway_ip}/24"))
            gw.set_up("srv0")
            gw.add_address("srv0", ipaddress.IPv4Interface(f"{a.gateway_server_ip}/24"))
        interrupts.checkpoint()
        with Netlink(self.ns("web")) as web:
            web.set_up("eth0")
            for ip in a.server_ips:
                web.add_address("eth0", ipaddress.IPv4Interface(f"{ip}/24"))
            web.add_route(None, a.gateway_server_ip)
        interrupts.checkpoint()
        for role in ("node", "gw"):
            self.sysctl(role, "net.ipv4.ip_forward", "1")
        # The node masquerades pod traffic that leaves by its own external interface, as an
        # OpenShift node does for pods without an egress router.
        nat = Table("ip", "lab_node")
        masquerade = nat.rule(
            "post",
            match_meta("oifname", "ext0"),
            _match_saddr(str(a.cluster_net)),
            {"masquerade": None},
        )
        self.nft(
            "node",
            [
                *nat.replace(),
                nat.create(),
                nat.base_chain("post", "nat", "postrouting", 100),
                masquerade,
            ],
        )
        if self.web_firewall:
            self.set_web_firewall([str(a.egress_source)])

    def set_web_firewall(self, admitted: list[str]) -> None:
        """The web server's firewall: only ``admitted`` sources may open connections.

        Others get ICMP host-prohibited, as firewalld answers, so ``curl`` fails at once with
        "No route to host" exactly as in the reference blog.
        """
        a = self.addr
        web = Table("ip", "lab_web")
        accept = {"accept": None}
        rules = [
            web.rule("in", _match_ct_state(["established", "related"]), accept),
            web.rule("in", match_meta("iifname", "lo"), accept),
            web.rule("in", _match_saddr(str(a.server_net)), accept),
            *(web.rule("in", _match_saddr(src), accept) for src in admitted),
            web.rule("in", match_meta("l4proto", "icmp"), accept),
            web.rule("in", {"reject": {"type": "icmp", "expr": "host-prohibited"}}),
        ]
        self.nft(
            "web",
            [*web.replace(), web.create(), web.base_chain("in", "filter", "input", 0), *rules],
        )

    def down(self) -> None:
        """Stop our processes and delete our namespaces.

        Idempotent and tolerant of things already gone (also after a partial ``up``); a no-op
        in any process but the one that made this object (a forked helper must not tear down).
        Signals arriving meanwhile are recorded, never raised: teardown runs to its end.
        """
        if os.getpid() != self.owner_pid:
            return
        with interrupts.tearing_down():
            self._down()

    def _down(self) -> None:
        self.processes.stop_all()
        existing = set(list_netns())
        for name in self.namespaces:
            if name in existing:
                remove_netns(name)
            shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)
        if self.workdir is not None and self.workdir.is_relative_to(STATE_DIR):
            shutil.rmtree(self.workdir, ignore_errors=True)
        state = STATE_DIR / f"{self.lab_id}.json"
        state.unlink(missing_ok=True)

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- state (for `egress-router lab up` / `lab down` in separate processes) ----------------

    def save(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        data = {
            "lab_id": self.lab_id,
            "macvlan_name": self.macvlan_name,
            "cluster_ifname": self.cluster_ifname,
            "web_firewall": self.web_firewall,
            "extra_roles": list(self.extra_roles),
            "workdir": str(self.workdir),
            "pids": [bg.pid for bg in self.processes.started],
        }
        (STATE_DIR / f"{self.lab_id}.json").write_text(json.dumps(data))

    @classmethod
    def load(cls, lab_id: str) -> Lab:
        data: dict[str, Any] = json.loads((STATE_DIR / f"{lab_id}.json").read_text())
        return cls(
            lab_id=data["lab_id"],
            macvlan_name=data["macvlan_name"],
            cluster_ifname=data["cluster_ifname"],
            web_firewall=data["web_firewall"],
            extra_roles=tuple(data.get("extra_roles", ())),
            workdir=Path(data["workdir"]),
        )

    @staticmethod
    def saved() -> list[str]:
        if not STATE_DIR.is_dir():
            return []
        return sorted(p.stem for p in STATE_DIR.glob("*.json"))

    # -- helpers -----------------------------------------------------------------------------

    def exec(self, role: str, argv: list[str], **kwargs: Any) -> Any:
        """Run a command in a role's namespace to completion (see ``procs.run``)."""
        return procs.run(self.ns(role), argv, **kwargs)

    def spawn(self, role: str, argv: list[str], *, name: str, **kwargs: Any) -> procs.Background:
        """Start a background program in a role's namespace; stopped by ``down``."""
        return self.processes.spawn(self.ns(role), argv, name=name, **kwargs)

    def sysctl(self, role: str, key: str, value: str) -> None:
        path = "/proc/sys/" + key.replace(".", "/")
        self.exec(role, ["sh", "-c", f"echo {value} > {path}"], check=True)

    def nft(self, role: str, commands: list[dict[str, Any]]) -> None:
        """Apply nft JSON commands inside a role's namespace, atomically."""
        self.exec(role, ["nft", "-j", "-f", "-"], input=nftables.batch(commands), check=True)

    def resolv_conf(self, role: str, nameservers: list[str]) -> None:
        """Give a role its own /etc/resolv.conf (``ip netns exec`` binds /etc/netns/NS/)."""
        d = Path("/etc/netns") / self.ns(role)
        d.mkdir(parents=True, exist_ok=True)
        (d / "resolv.conf").write_text("".join(f"nameserver {ns}\n" for ns in nameservers))

    def macvlan_mac(self) -> str | None:
        with Netlink(self.ns("router")) as nl:
            link = nl.link(self.macvlan_name)
            return link.mac if link else None


# -- match expressions of the lab's own (non-product) rules -----------------------------


def _match_saddr(cidr: str) -> dict[str, Any]:
    net = ipaddress.IPv4Network(cidr, strict=False)
    right: Any = (
        str(net.network_address)
        if net.prefixlen == 32
        else {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}
    )
    return {
        "match": {
            "op": "==",
            "left": {"payload": {"protocol": "ip", "field": "saddr"}},
            "right": right,
        }
    }


def _match_ct_state(states: list[str]) -> dict[str, Any]:
    return {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": states}}


def cleanup_stale() -> list[str]:
    """Remove namespaces of labs whose state file is gone (crashed runs); returns their names."""
    known = {f"er{lab_id}-" for lab_id in Lab.saved()}
    removed = []
    for name in list_netns():
        if name.startswith("er") and "-" in name and not any(name.startswith(k) for k in known):
            role = name.split("-", 1)[1]
            if role in ("node", "router", "client", "gw", "web"):
                remove_netns(name)
                removed.append(name)
    return removed
