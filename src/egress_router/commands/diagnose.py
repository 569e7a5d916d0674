"""CLI front end for ``egress-router diagnose``: troubleshoot a router namespace in one command.

Owns: the flags (which namespace: the current one, ``--netns NAME`` or ``--pid PID``; the
interface and destination-file flags of ``setup``; ``--json``, ``--verbose``, the connect
timeout), entering the namespace, and the exit status (0 healthy, 3 a problem found; 1 bad
input, 2 the namespace could not be observed).
Must not: observe (``diagnose.gather``), decide (``diagnose.model``) or format
(``diagnose.report``) anything itself; it never changes the namespace.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from egress_router.commands.setup import ClusterOption, DestinationFileOption, MacvlanOption

MAX_CONNECT_TIMEOUT_S = 30.0


def _namespace(netns: str | None, pid: int | None) -> tuple[str | None, str, str]:
    """(namespace path to enter or None, where it is for the header, its resolv.conf)."""
    from egress_router.errors import VariableError
    from egress_router.kernel.netlink import netns_path
    from egress_router.runtime.resolver import RESOLV_CONF

    if netns is not None and pid is not None:
        raise VariableError("--netns", "give either --netns or --pid, not both")
    if netns is not None:
        if "/" in netns or netns in ("", ".", ".."):
            raise VariableError("--netns", "not a namespace name", text=netns)
        path = netns_path(netns)
        if not os.path.exists(path):
            raise VariableError("--netns", f"no network namespace {netns} ({path})", text=netns)
        own = os.path.join("/etc/netns", netns, "resolv.conf")
        return path, f"namespace {netns}", own if os.path.exists(own) else RESOLV_CONF
    if pid is not None:
        path = f"/proc/{pid}/ns/net"
        if pid <= 0 or not os.path.exists(path):
            raise VariableError("--pid", f"no process {pid}", text=str(pid))
        theirs = f"/proc/{pid}/root/etc/resolv.conf"
        return path, f"process {pid}", theirs if os.path.exists(theirs) else RESOLV_CONF
    return None, "this namespace", RESOLV_CONF


def diagnose(
    netns: Annotated[
        str | None, typer.Option("--netns", metavar="NAME", help="Diagnose this named netns")
    ] = None,
    pid: Annotated[
        int | None, typer.Option("--pid", help="Diagnose the network namespace of this process")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document for tools")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also print routes, conntrack, our table")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds per test connection [2]")
    ] = 2.0,
    macvlan_interface: MacvlanOption = None,
    cluster_interface: ClusterOption = None,
    destination_file: DestinationFileOption = None,
) -> int:
    """Check a router against its EGRESS_* variables and name the likely cause of a failure.

    Read-only: the ARP probes of the gateway and one test connection per destination are the
    only packets sent. Exit 0 healthy, 3 a problem found, 1 bad input. See docs/diagnose.md.
    """
    from rich.console import Console

    from egress_router.commands.setup import FILE_VARIABLE
    from egress_router.diagnose import gather, report
    from egress_router.diagnose.model.expect import expected_from_env
    from egress_router.diagnose.model.verdict import diagnose as decide
    from egress_router.errors import VariableError
    from egress_router.kernel.netlink import enter_netns
    from egress_router.redirect.apply import desired_ruleset
    from egress_router.redirect.model.env import parse_router_env
    from egress_router.runtime.reload import with_variable_file

    if not 0 < timeout <= MAX_CONNECT_TIMEOUT_S:
        raise VariableError(
            "--timeout",
            "out of range",
            text=str(timeout),
            expected=f"0 < s <= {MAX_CONNECT_TIMEOUT_S:g}",
        )
    variables = with_variable_file(
        os.environ, "EGRESS_DESTINATION", FILE_VARIABLE, destination_file, "--destination-file"
    )
    expected = expected_from_env(variables, macvlan=macvlan_interface, cluster=cluster_interface)
    desired = None
    if expected.table is not None:
        init = {**variables, "EGRESS_ROUTER_MODE": "init"}
        desired = desired_ruleset(
            parse_router_env(init, macvlan=macvlan_interface, cluster=cluster_interface)
        )
    path, where, resolv_conf = _namespace(netns, pid)
    if path is not None:
        enter_netns(path)
    observed = gather.observe(
        expected,
        desired=desired,
        resolv_conf=resolv_conf,
        limits=gather.Limits(connect_s=timeout),
    )
    diagnosis = decide(expected, observed)
    if as_json:
        sys.stdout.write(report.as_json(expected, observed, diagnosis))
    else:
        report.render(Console(), expected, observed, diagnosis, where=where, verbose=verbose)
    return report.exit_status(diagnosis)


def register(app: typer.Typer) -> None:
    """Add this command to the main application."""
    app.command("diagnose")(diagnose)
