"""Applying a validated ``RouterEnv`` to the network namespace this process runs in.

Owns: observing the pod (links, addresses, routes, ip_forward, our nftables table), running
the core plans through the kernel adapters in the safe order, and the gratuitous ARPs.
Must not: parse or decide anything (``redirect.model.env``, ``redirect.model.plan`` and
``redirect.model.rules`` do), or touch any namespace but the caller's own.

Order (nothing partially applied):
  1. the ruleset is built (one table per address family: ``ip`` and/or ``ip6``) and, if it
     differs from the live tables, checked by the kernel (``nft -c``) before anything changes;
  2. netlink operations and the forwarding sysctls, only those the plan says differ;
  3. the ruleset swap, one nftables transaction (our tables deleted and re-created; the table
     of a family the router no longer has is deleted);
  4. IPv6 only: duplicate address detection of the new addresses is awaited (a tentative
     address drops the replies to the flows it sources); one that fails is an error naming
     it, since another host holds the reserved address;
  5. the gratuitous ARP replies (IPv6: unsolicited neighbour advertisements), one per reserved
     address (the requests follow, see ``announce_request``).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from egress_router.errors import DataplaneError
from egress_router.kernel import arp, nftables, sysctl
from egress_router.kernel.netlink import DadState, Netlink
from egress_router.redirect.model import rules as redirect_rules
from egress_router.redirect.model.env import RouterEnv
from egress_router.redirect.model.plan import (
    FORWARD6_SYSCTL,
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
    disable_ipv6_sysctl,
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
    v6 = 6 in env.families
    routes = tuple(
        ObservedRoute(
            dst=None if r.is_default else r.dst,
            gateway=r.gateway,
            device=names.get(r.oif) if r.oif is not None else None,
            version=r.version,
        )
        for r in nl.routes() + (nl.routes(6) if v6 else [])
        if r.proto != 2  # kernel-made connected routes follow the addresses by themselves
    )
    addresses = nl.all_addresses(env.interfaces.macvlan) if v6 else nl.addresses(macvlan.name)
    return ObservedNetwork(
        macvlan_up=macvlan.up,
        macvlan_addresses=tuple(addresses),
        routes=routes,
        ip_forward=sysctl.read("net.ipv4.ip_forward"),
        ipv6_forwarding=sysctl.read(FORWARD6_SYSCTL) if v6 else "1",
        ipv6_disabled=sysctl.read(disable_ipv6_sysctl(macvlan.name)) if v6 else "0",
    )


# How long an IPv6 address may stay tentative: the kernel waits up to a second
# (rtr_solicit_delay) before its first probe and a second (retrans_time) for an answer per
# probe; the reference waited up to 10 s too.
DAD_TIMEOUT_S = 10.0


def await_dad(
    nl: Netlink, device: str, addresses: list[ipaddress.IPv6Address], log: Log = _quiet
) -> None:
    """Wait until none of ``addresses`` is tentative; a failed one is an error naming it."""
    if not addresses:
        return
    log(f"waiting for duplicate address detection of {', '.join(map(str, addresses))}")
    deadline = time.monotonic() + DAD_TIMEOUT_S
    while True:
        states = nl.dad_states(device)
        failed = [a for a in addresses if states.get(a) == DadState.FAILED]
        if failed:
            raise DataplaneError(
                f"{failed[0]} is already in use on the network of {device}"
                " (IPv6 duplicate address detection failed)"
            )
        if not any(states.get(a) == DadState.TENTATIVE for a in addresses):
            return
        if time.monotonic() > deadline:
            raise DataplaneError(
                f"IPv6 duplicate address detection of {addresses[0]} on {device} did not end"
                f" within {DAD_TIMEOUT_S:g} s"
            )
        time.sleep(0.05)


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
    for live in nl.routes(route.version):
        dst = None if live.is_default else live.dst
        same_dev = route.device is None or (
            (link := nl.link(route.device)) is not None and link.index == live.oif
        )
        if dst == route.dst and live.gateway == route.gateway and same_dev:
            nl.delete_route(live)
            return


def desired_tables(env: RouterEnv) -> dict[int, list[nftables.Command]]:
    """Our tables' content for redirect modes, by address family; none in the proxy modes."""
    if env.destination is None:
        return {}
    health_port = env.health[1] if env.health is not None else None
    return redirect_rules.tables(env.destination, env.source_ips, env.interfaces, health_port)


def desired_ruleset(env: RouterEnv) -> list[nftables.Command] | None:
    """The IPv4 table's content for redirect modes; None for the proxy modes (no table)."""
    return desired_tables(env).get(4)


def _swap_commands(
    env: RouterEnv, desired: dict[int, list[nftables.Command]]
) -> list[nftables.Command]:
    """The transaction that brings our tables to ``desired`` (``env``'s; empty when they
    already are).

    The IPv4 table is always looked at (the proxy modes remove one left behind); the IPv6 one
    only when the router has IPv6 addresses: the variables' routers never make one, and the
    CNI plugin's DEL removes both.
    """
    swap: list[nftables.Command] = []
    for version, family in redirect_rules.FAMILIES.items():
        if version == 6 and 6 not in env.families:
            continue
        listing = nftables.list_table(family, redirect_rules.TABLE)
        wanted = desired.get(version)
        if wanted is not None and not redirect_rules.is_current(wanted, listing):
            swap += _replace(version) + wanted
        elif wanted is None and listing is not None:
            swap += _replace(version)
    return swap


def check_ruleset(env: RouterEnv) -> None:
    """Have the kernel check our ruleset without applying it (``nft -c``)."""
    swap = [c for v, t in desired_tables(env).items() for c in _replace(v) + t]
    if swap:
        nftables.check(swap)


def _replace(version: int) -> list[nftables.Command]:
    return nftables.replace_table_commands(redirect_rules.FAMILIES[version], redirect_rules.TABLE)


TABLES = tuple((family, redirect_rules.TABLE) for family in redirect_rules.FAMILIES.values())


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
    desired = desired_tables(env)
    swap = _swap_commands(env, desired)
    if swap and desired and not checked:
        log(f"checking the ruleset with the kernel ({len(swap)} commands)")
        nftables.check(swap)
    with Netlink() as nl:
        observed = observe_network(nl, env)
        ops = plan_network(env, observed)
        for op in ops:
            log(str(op))
            _execute(nl, op)
        outcome.network_ops = ops
        if swap:
            names = " and ".join(
                f"{redirect_rules.FAMILIES[v]} {redirect_rules.TABLE}" for v in desired
            )
            log(f"replacing table {names or 'egress_router'} in one transaction")
            nftables.apply(swap)
            outcome.ruleset_replaced = bool(desired)
            outcome.ruleset_removed = not desired
        else:
            log("ruleset already current" if desired else "no ruleset in this mode")
        fresh = [
            op.address.ip
            for op in ops
            if isinstance(op, AddAddress) and isinstance(op.address, ipaddress.IPv6Interface)
        ]
        await_dad(nl, env.interfaces.macvlan, fresh, log)
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
    """Delete our nftables tables (``ip`` and ``ip6``) where they are."""
    for family, name in TABLES:
        if nftables.list_table(family, name) is not None:
            log(f"deleting table {family} {name}")
            nftables.delete_table(family, name)
