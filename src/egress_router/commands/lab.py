"""CLI front end for ``egress-router lab``: the reference blog's topology on this machine.

Owns: the ``lab up|demo|down|status`` commands and their output.
Must not: build namespaces itself (``lab.topology``) or contain the demo's steps
(``lab.demo``); it never touches the host's own interfaces.
"""

from __future__ import annotations

from typing import Annotated

import typer

lab_app = typer.Typer(
    help="Build the reference blog's topology in network namespaces, run the demo, tear down.",
    no_args_is_help=True,
)


@lab_app.command("up")
def up(
    kubernetes: Annotated[
        bool,
        typer.Option(
            "--kubernetes",
            help="Also start a real control plane (etcd, kube-apiserver, "
            "kube-controller-manager) on 127.0.0.1 with our CRDs, and print its kubeconfig",
        ),
    ] = False,
) -> int:
    """Build a lab (namespaces node, router, client, gw, web) and leave it running."""
    from egress_router.lab.controlplane import binaries_dir, start_for_lab
    from egress_router.lab.topology import Lab

    if kubernetes:
        binaries_dir()  # fail before building anything when the binaries are missing
    built = Lab().up()
    if kubernetes:
        try:
            plane = start_for_lab(built.work)
        except BaseException:
            built.down()
            raise
    print(built.lab_id)
    for role in built.roles:
        print(f"  {role:7} ip netns exec {built.ns(role)} ...")
    if kubernetes:
        print(f"  kubeconfig {plane.kubeconfig('admin')}")
        print(f"  server     {plane.server}")
    return 0


@lab_app.command("demo")
def demo(
    only: Annotated[
        list[str] | None,
        typer.Option(
            metavar="MODE",
            help="Run only this part (repeatable): redirect, http-proxy, dns-proxy, "
            "firewall, cni, image",
        ),
    ] = None,
    destination: Annotated[
        str | None,
        typer.Option(
            help="EGRESS_DESTINATION of the redirect part's first router (default: the web "
            "server's IP)"
        ),
    ] = None,
    keep: Annotated[bool, typer.Option(help="Leave the lab up afterwards for exploring")] = False,
    lab_id: Annotated[
        str | None, typer.Option(help="Lab id (namespaces are named er<id>-<role>)")
    ] = None,
) -> int:
    """The guided tour: every mode run for real in a lab, each claim checked; then tear down."""
    from egress_router.lab.demo import MODES, run_demo

    if lab_id is not None and not (lab_id.isalnum() and lab_id.isascii() and len(lab_id) <= 8):
        raise typer.BadParameter("1-8 ASCII letters or digits", param_hint="--lab-id")
    for mode in only or ():
        if mode not in MODES:
            raise typer.BadParameter(
                f"{mode!r} is not one of {', '.join(MODES)}", param_hint="--only"
            )
    return run_demo(destination or None, keep=keep, lab_id=lab_id, only=tuple(only or ()))


@lab_app.command("down")
def down(
    lab_id: Annotated[str | None, typer.Argument(help="Lab id (default: every saved lab)")] = None,
    stale: Annotated[
        bool,
        typer.Option(
            help="Also remove lab namespaces without a state file (crashed runs). Only when no "
            "other lab is being built: a lab being built has no state file yet."
        ),
    ] = False,
) -> int:
    """Remove a lab (or every lab this machine has state for) and its processes."""
    from egress_router.lab.controlplane import stop_for_lab
    from egress_router.lab.topology import Lab, cleanup_stale

    ids = [lab_id] if lab_id else Lab.saved()
    for one in ids:
        try:
            lab = Lab.load(one)
        except (OSError, ValueError, KeyError):
            lab = Lab(lab_id=one)
        stop_for_lab(lab.work)
        lab.down()
        print(f"removed lab {one}")
    if stale:
        for name in cleanup_stale():
            print(f"removed stale namespace {name}")
    return 0


@lab_app.command("status")
def status() -> int:
    """List the labs that exist on this machine."""
    from egress_router.kernel.netlink import list_netns
    from egress_router.lab.topology import Lab

    existing = set(list_netns())
    ids = Lab.saved()
    if not ids:
        print("no lab")
    for one in ids:
        lab = Lab.load(one)
        alive = sum(1 for ns in lab.namespaces if ns in existing)
        print(f"{one}: {alive}/{len(lab.namespaces)} namespaces present")
    return 0


def register(app: typer.Typer) -> None:
    """Add this command group to the main application."""
    app.add_typer(lab_app, name="lab")
