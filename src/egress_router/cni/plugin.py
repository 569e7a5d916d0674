"""The ``egress-router`` CNI plugin executable (console script ``egress-router-cni``).

Owns: the CNI process contract (CNI_* env, config on stdin, result or error JSON on stdout,
exit status), the log file, and the ADD / DEL / CHECK sequences: the macvlan is created on
the master in the namespace the plugin runs in (the node's), moved into ``CNI_NETNS`` under a
temporary name; then the plugin enters that namespace and the router applier configures it
(every address, gateway host route, default route via the gateway, ip_forward, our nftables
table, SNAT spread over the addresses, a gratuitous ARP for each).
Must not: parse or plan (``cni.model.config``, ``cni.model.skel``, ``redirect.model.plan``,
``redirect.model.rules`` do), or touch any namespace but its own and ``CNI_NETNS``.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import secrets
import sys
from collections.abc import Mapping
from typing import TextIO

from egress_router.cni.model import skel as cni_skel
from egress_router.cni.model.config import (
    CLUSTER_INTERFACE,
    DEFAULT_LOG_FILE,
    INVALID_ENV,
    LOG_LEVELS,
    NOT_AVAILABLE,
    PLUGIN_FAILURE,
    CniConfig,
    CniError,
    load_json,
    parse_config,
    parse_version,
)
from egress_router.common.documents import MAX_CHARS
from egress_router.common.documents import load_json as decode_json
from egress_router.errors import EgressRouterError
from egress_router.redirect.model.env import Interfaces, Mode, RouterEnv
from egress_router.redirect.model.plan import AddRoute, DeleteRoute

LOG_ENV = "EGRESS_ROUTER_CNI_LOG"  # log file when the config names none


class Logger:
    """``<RFC 3339 time> [<level>] <message>`` lines to stderr and the log file."""

    def __init__(self, path: str | None, level: str = "debug", stderr: TextIO = sys.stderr):
        self.level = LOG_LEVELS.index(level)
        self.stderr = stderr
        self.file: TextIO | None = None
        if path:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                self.file = os.fdopen(fd, "a")
            except OSError:
                stderr.write(f"Egress Router CNI logging: cannot open {path}\n")

    def log(self, message: str, level: str = "debug") -> None:
        if LOG_LEVELS.index(level) > self.level:
            return
        now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        line = cni_skel.log_line(now.replace("+00:00", "Z"), level, message)
        self.stderr.write(line)
        if self.file is not None:
            self.file.write(line)
            self.file.flush()

    def verbose(self, message: str) -> None:
        self.log(message, "verbose")

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def _log_path(raw_text: str, env: Mapping[str, str]) -> str:
    try:
        raw = decode_json(raw_text)
        configured = raw.get("log_file") if isinstance(raw, dict) else None
    except ValueError:
        configured = None
    if isinstance(configured, str) and configured:
        return configured
    return env.get(LOG_ENV) or DEFAULT_LOG_FILE


def _create_macvlan(config: CniConfig, sandbox: str, ifname: str, log: Logger) -> bool:
    """Create the macvlan here, move it into ``sandbox`` and enter it; True if it is new."""
    from egress_router.kernel import sysctl
    from egress_router.kernel.netlink import Netlink, enter_netns

    tmp = "egr" + secrets.token_hex(4)
    with Netlink() as nl:
        master = config.master or nl.default_route_link()
        if master is None:
            raise CniError("unable to get default route interface name", code=PLUGIN_FAILURE)
        if nl.link(master) is None:
            raise CniError(f'failed to lookup master "{master}"', code=PLUGIN_FAILURE)
        mtu = config.mtu or nl.require_link(master).mtu
        nl.add_macvlan(tmp, master, mode=config.mode, mtu=mtu)
        try:
            nl.move_link_to_path(tmp, sandbox)
        except BaseException:
            nl.delete_link(tmp)
            raise
    enter_netns(sandbox)
    with Netlink() as nl:
        existing = nl.link(ifname)
        if existing is not None:
            nl.delete_link(tmp)
            if existing.kind != "macvlan":
                raise CniError(f'interface "{ifname}" already exists', code=PLUGIN_FAILURE)
            log.log(f'Using existing macvlan "{ifname}"')
            return False
        log.log("Created macvlan interface")
        try:
            sysctl.write(f"net.ipv4.conf.{tmp}.proxy_arp", "1")
            nl.rename_link(tmp, ifname)
        except BaseException:
            nl.delete_link(tmp)
            raise
        log.log(f'Renamed macvlan to "{ifname}"')
    return True


def _add(config: CniConfig, inv: cni_skel.Invocation, log: Logger) -> str:
    from egress_router.kernel.netlink import Netlink
    from egress_router.redirect import apply

    log.log(f"Gateway: {config.ip.gateway}")
    log.log(f"IP Source Addresses: {cni_skel.go_list([str(a) for a in config.ip.addresses])}")
    log.log(f"IP Destinations: {cni_skel.go_list(config.ip.destinations)}")
    if inv.ifname == CLUSTER_INTERFACE:
        raise CniError(
            f'CNI_IFNAME "{inv.ifname}" is the pod\'s cluster interface', code=INVALID_ENV
        )
    if not os.path.exists(inv.netns):
        raise CniError(f"failed to open netns {inv.netns!r}", code=PLUGIN_FAILURE)
    created = _create_macvlan(config, inv.netns, inv.ifname, log)
    env = RouterEnv(
        addresses=config.ip.addresses,
        gateways=config.ip.gateways,
        mode=Mode.INIT,
        destination=config.ip.destination,
        interfaces=Interfaces(macvlan=inv.ifname, cluster=CLUSTER_INTERFACE),
    )
    try:
        with Netlink() as nl:
            eth0 = nl.link(CLUSTER_INTERFACE)
        outcome = apply.configure(env, log=log.verbose)
        apply.announce_request(env, log=log.verbose)
        with Netlink() as nl:
            mac = nl.require_link(inv.ifname).mac or ""
    except BaseException:
        if created:  # a new attachment leaves nothing behind: its interface, then our tables
            with Netlink() as nl:
                nl.delete_link(inv.ifname)
            with contextlib.suppress(EgressRouterError):
                apply.remove_rules()
        raise
    for op in outcome.network_ops:
        if isinstance(op, AddRoute) and not op.route.is_default:
            family = f"IPv{op.route.version}"
            gateway = config.ip.gateway_for(op.route.version)
            log.log(f"Adding {family} route to gateway {gateway} on macvlan interface")
        elif isinstance(op, DeleteRoute) and op.route.is_default and eth0 is not None:
            gateway_text = str(op.route.gateway) if op.route.gateway else None
            log.log(f"deleted default route {cni_skel.go_route(eth0.index, gateway_text)}")
        elif isinstance(op, AddRoute):
            log.log(f"Added new default route with gateway {op.route.gateway}")
    for gateway in config.ip.gateways:
        if not any(
            isinstance(op, AddRoute) and op.route.is_default and op.route.gateway == gateway
            for op in outcome.network_ops
        ):
            log.log(f"Use existing route with gateway {gateway}")
    rules = cni_skel.dnat_rule_texts(config.ip.destination)
    if not rules:
        log.log("No destination information has been provided")
    for text in rules:
        log.log(f"Added nftables rule: {text}")
    return cni_skel.add_result(config, inv.ifname, mac, inv.netns)


def _del(inv: cni_skel.Invocation, log: Logger) -> None:
    from egress_router.kernel import nftables
    from egress_router.kernel.netlink import Netlink, enter_netns
    from egress_router.redirect.model import rules as redirect_rules

    log.log("Called CNI DEL")
    if not inv.netns or not os.path.exists(inv.netns):
        return
    try:
        enter_netns(inv.netns)
    except EgressRouterError as exc:
        log.log(f"CNI DEL: namespace gone ({exc})", "verbose")
        return
    with Netlink() as nl:
        if nl.link(inv.ifname) is None:
            log.log("CNI DEL called")
        nl.delete_link(inv.ifname)
    for family in redirect_rules.FAMILIES.values():
        if nftables.list_table(family, redirect_rules.TABLE) is not None:
            nftables.delete_table(family, redirect_rules.TABLE)


def _check(config: CniConfig, inv: cni_skel.Invocation) -> None:
    from egress_router.kernel.netlink import Netlink, enter_netns

    cni_skel.check_allowed(config.cni_version)
    enter_netns(inv.netns)
    with Netlink() as nl:
        if nl.link(inv.ifname) is None:
            raise CniError(f'interface "{inv.ifname}" not found', code=PLUGIN_FAILURE)
        present = nl.all_addresses(inv.ifname)
        for address in config.ip.addresses:
            if address not in present:
                raise CniError(f'interface "{inv.ifname}" lacks {address}', code=PLUGIN_FAILURE)


def _status(config: CniConfig) -> None:
    """STATUS (spec 1.1.0): ready when the macvlan's master exists here (error code 50 if not)."""
    from egress_router.kernel.netlink import Netlink

    with Netlink() as nl:
        master = config.master or nl.default_route_link()
        if master is None:
            raise CniError(
                "plugin not available: no default route interface to put the macvlan on",
                code=NOT_AVAILABLE,
            )
        if nl.link(master) is None:
            raise CniError(f'plugin not available: master "{master}" not found', code=NOT_AVAILABLE)


def _gc(stdin: str) -> None:
    """GC (spec 1.1.0): the list is checked; there is nothing to collect.

    Everything ADD creates (the macvlan, its addresses and routes, our nftables table) lives in
    the pod's network namespace and goes with it; the plugin keeps no state on the node.
    """
    cni_skel.gc_attachments(load_json(stdin))


def run(env: Mapping[str, str], stdin: str, out: TextIO, err: TextIO) -> int:
    """One plugin invocation; returns the exit status."""
    logger: list[Logger] = []
    try:
        return _run(env, stdin, out, err, logger)
    finally:
        for log in logger:
            log.close()


def _run(env: Mapping[str, str], stdin: str, out: TextIO, err: TextIO, opened: list[Logger]) -> int:
    if "CNI_COMMAND" not in env:
        err.write(cni_skel.ABOUT + "\n")
        return 0
    version = "0.4.0"
    log: Logger | None = None
    try:
        inv = cni_skel.parse_invocation(env)
        if inv.command == "VERSION":
            out.write(cni_skel.version_json() + "\n")
            return 0
        if inv.command in ("STATUS", "GC"):  # frequent and read-only: not logged to the file
            with contextlib.suppress(ValueError, AttributeError, CniError):
                version = parse_version(decode_json(stdin))
            config = parse_config(stdin)
            cni_skel.check_allowed(config.cni_version, inv.command)
            if inv.command == "STATUS":
                _status(config)
            else:
                _gc(stdin)
            return 0
        log = Logger(_log_path(stdin, env), stderr=err)
        opened.append(log)
        if inv.command == "DEL":
            _del(inv, log)
            return 0
        log.log(f"Called CNI {inv.command}")
        with contextlib.suppress(ValueError, AttributeError, CniError):
            version = parse_version(decode_json(stdin))  # errors answer in the config's version
        config = parse_config(stdin)
        log.level = LOG_LEVELS.index(config.log_level)
        if inv.command == "CHECK":
            _check(config, inv)
            return 0
        out.write(_add(config, inv, log))
        return 0
    except CniError as exc:
        error = exc
    except EgressRouterError as exc:
        error = CniError(exc.one_line(), code=PLUGIN_FAILURE)
    if log is not None:
        log.log(error.one_line(), "error")
    out.write(cni_skel.error_json(error, version) + "\n")
    return 1


def main() -> int:
    """Console-script entry point (install as ``/opt/cni/bin/egress-router``)."""
    # One character past the bound is enough to be refused as too large; never read more.
    stdin = "" if os.environ.get("CNI_COMMAND") == "VERSION" else sys.stdin.read(MAX_CHARS + 1)
    return run(os.environ, stdin, sys.stdout, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
