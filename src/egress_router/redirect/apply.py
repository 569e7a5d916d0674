"""Applying a validated ``RouterEnv`` to the network namespace this process runs in.

Owns: observing the pod (links, addresses, routes, ip_forward, our nftables table), running
the core plans through the kernel adapters in the safe order, and the gratuitous ARPs.
Must not: parse or decide anything (``redirect.model.env``, ``redirect.model.plan`` and
``redirect.model.rules`` do), or touch any namespace but the caller's own.

Order (nothing partially applied):
  1. the ruleset is built and, if it differs from the live table, checked by the kernel
     (``nft -c``) before anything changes;
  2. netlink operations and the ip_forward sysctl, only those the plan says differ;
  3. the ruleset swap, one nftables transaction (our table deleted and re-created);
  4. the gratuitous ARP replies, one per reserved address (the requests follow, see
     ``announce_request``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

from egress_router.errors import DataplaneError
from egress_router.kernel import arp, nftables, sysctl
from egress_router.kernel.netlink import Netlink
from egress_router.redirect.model import rules as redirect_rules
from egress_router.redirect.model.env import RouterEnv
from egress_router.redirect.model.plan import (
    AddAddress,
    AddRoute,
    Announce,
    DeleteAddress,
    DeleteRoute,
    NetworkOp,
    ObservedNetwork,
    ObservedRoute,
    SetSysctl,
    SetUp,
    announcements,
    plan_network,
)

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class Outcome:
    """What one run changed (empty lists on a no-op rerun)."""

    network_ops: list[NetworkOp] = field(default_factory=list)
    ruleset_replaced: bool = False
    ruleset_removed: bool = False
    announced: list[Announce] = field(default_factory=list)


def observe_network(nl: Netlink, env: RouterEnv) -> ObservedNetwork:
    """Read what the plan needs; fails if either interface is missing."""
    macvlan = nl.require_link(env.interfaces.macvlan)
    nl.require_link(env.interfaces.cluster)
    names = {link.index: link.name for link in nl.links()}
    routes = tuple(
        ObservedRoute(
            dst=None if r.is_default else r.dst,
            gateway=r.gateway,
            device=names.get(r.oif) if r.oif is not None else None,
        )
        for r in nl.routes()
        if r.proto != 2  # kernel-made connected routes follow the addresses by themselves
    )
    return ObservedNetwork(
        macvlan_up=macvlan.up,
        macvlan_addresses=tuple(nl.addresses(env.interfaces.macvlan)),
        routes=routes,
        ip_forward=sysctl.read("net.ipv4.ip_forward"),
    )


def _execute(nl: Netlink, op: NetworkOp) -> None:
    if isinstance(op, AddAddress):
        nl.add_address(op.device, op.address)
    elif isinstance(op, DeleteAddress):
        nl.delete_address(op.device, op.address)
    elif isinstance(op, SetUp):
        nl.set_up(op.device)
    elif isinstance(op, AddRoute):
        nl.add_route(op.route.dst, op.route.gateway, op.route.device)
    elif isinstance(op, DeleteRoute):
        _delete_route(nl, op.route)
    elif isinstance(op, SetSysctl):
        sysctl.write(op.key, op.value)


def _delete_route(nl: Netlink, route: ObservedRoute) -> None:
    for live in nl.routes():
        dst = None if live.is_default else live.dst
        same_dev = route.device is None or (
            (link := nl.link(route.device)) is not None and link.index == live.oif
        )
        if dst == route.dst and live.gateway == route.gateway and same_dev:
            nl.delete_route(live)
            return


def desired_ruleset(env: RouterEnv) -> list[nftables.Command] | None:
    """Our table's content for redirect modes; None for the proxy modes (no table)."""
    if env.destination is None:
        return None
    health_port = env.health[1] if env.health is not None else None
    return redirect_rules.redirect_ruleset(
        env.destination, env.source_ips, env.interfaces, health_port
    )


def check_ruleset(env: RouterEnv) -> None:
    """Have the kernel check our ruleset without applying it (``nft -c``)."""
    desired = desired_ruleset(env)
    if desired is not None:
        nftables.check(nftables.replace_table_commands(*TABLE) + desired)


TABLE = redirect_rules.FAMILY, redirect_rules.TABLE


def configure(
    env: RouterEnv,
    log: Log = _quiet,
    *,
    checked: bool = False,
    announce_if: Callable[[], bool] | None = None,
) -> Outcome:
    """Bring this namespace to the state ``env`` describes; idempotent.

    ``checked``: the ruleset was already checked by ``check_ruleset`` (failover does so once at
    start, so a takeover does not spend a kernel check inside its deadline). ``announce_if``:
    asked just before the gratuitous ARP, which is skipped when it says no (failover: the
    instance's deadline passed while configuring, so it must not announce the address).
    """
    outcome = Outcome()
    table = redirect_rules.FAMILY, redirect_rules.TABLE
    listing = nftables.list_table(*table)
    desired = desired_ruleset(env)
    swap: list[nftables.Command] = []
    if desired is not None and not redirect_rules.is_current(desired, listing):
        swap = nftables.replace_table_commands(*table) + desired
        if not checked:
            log(f"checking the ruleset with the kernel ({len(swap)} commands)")
            nftables.check(swap)
    elif desired is None and listing is not None:
        swap = nftables.replace_table_commands(*table)
    with Netlink() as nl:
        observed = observe_network(nl, env)
        ops = plan_network(env, observed)
        for op in ops:
            log(str(op))
            _execute(nl, op)
        outcome.network_ops = ops
        if swap:
            log(f"replacing table {table[0]} {table[1]} in one transaction")
            nftables.apply(swap)
            outcome.ruleset_replaced = desired is not None
            outcome.ruleset_removed = desired is None
        else:
            log("ruleset already current" if desired is not None else "no ruleset in this mode")
        mac = nl.require_link(env.interfaces.macvlan).mac
    if mac is None:
        raise DataplaneError(f"interface {env.interfaces.macvlan} has no MAC address")
    if announce_if is not None and not announce_if():
        log("deadline passed while configuring: no gratuitous ARP")
        return outcome
    for reply in announcements(env, request=False):
        log(str(reply))
        arp.announce(reply.device, mac, reply.address, request=False)
        outcome.announced.append(reply)
    return outcome


def announce_request(env: RouterEnv, log: Log = _quiet) -> tuple[Announce, ...]:
    """The second gratuitous ARPs (request form); best effort, as in the reference."""
    requests = announcements(env, request=True)
    try:
        with Netlink() as nl:
            mac = nl.require_link(env.interfaces.macvlan).mac
        for request in requests:
            log(str(request))
            if mac:
                arp.announce(request.device, mac, request.address, request=True)
    except DataplaneError as exc:
        log(f"ignored: {exc}")
    return requests


def withdraw(
    macvlan: str, address: ipaddress.IPv4Interface, log: Log = _quiet, nl: Netlink | None = None
) -> bool:
    """Stop answering for ``address``: delete it (its routes go with it), then our table.

    The address goes first: it is what makes the kernel answer ARP for the reserved IP, and
    the macvlan's routes are flushed with it. Idempotent; ``True`` when the address was still
    there. Used by failover on demotion and by its guard process (which passes a netlink
    socket it opened in advance, so a withdrawal does not wait for one).
    """
    own = nl is None
    link = Netlink() if nl is None else nl
    try:
        present = withdraw_address(link, macvlan, address, log)
    finally:
        if own:
            link.close()
    remove_rules(log)
    return present


def withdraw_address(
    nl: Netlink, macvlan: str, address: ipaddress.IPv4Interface, log: Log = _quiet
) -> bool:
    """Delete ``address`` from ``macvlan`` and any route left through it; ``True`` if present."""
    present = False
    if nl.link(macvlan) is not None and address in nl.addresses(macvlan):
        present = True
        log(f"address del {address} dev {macvlan}")
        nl.delete_address(macvlan, address)
    index = link.index if (link := nl.link(macvlan)) is not None else None
    for route in nl.routes():
        if index is not None and route.oif == index and route.proto != 2:
            nl.delete_route(route)
    return present


def remove_rules(log: Log = _quiet) -> None:
    """Delete our nftables table if it is there."""
    if nftables.list_table(*TABLE) is not None:
        log(f"deleting table {TABLE[0]} {TABLE[1]}")
        nftables.delete_table(*TABLE)
