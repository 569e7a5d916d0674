"""CLI front end for ``egress-router operator``: run the EgressRouter operator.

Owns: the command's options (kubeconfig, router image) and starting the kopf operator.
Must not: contain reconcile logic (``operator.handlers`` and ``operator.model``).
"""

from __future__ import annotations

from typing import Annotated

import typer


def operator(
    kubeconfig: Annotated[
        str | None,
        typer.Option(
            help="kubeconfig file (default: the pod's service account, else $KUBECONFIG or "
            "~/.kube/config)"
        ),
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(help="Image of the router pods (default: the reference's image)"),
    ] = None,
) -> int:
    """Run the EgressRouter operator (cluster-wide, standalone) until SIGINT or SIGTERM."""
    from egress_router.cni.model.egressrouter import DEFAULT_IMAGE
    from egress_router.operator.handlers import run

    run(kubeconfig, image or DEFAULT_IMAGE)
    return 0


def register(app: typer.Typer) -> None:
    """Add this command to the main application."""
    app.command("operator")(operator)
