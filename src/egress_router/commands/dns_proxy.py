"""CLI front end for ``egress-router dns-proxy`` (the ose-egress-dns-proxy container).

Owns: reading the environment, printing the plan in unit-test mode, starting the service.
Must not: contain parsing or forwarding logic (``dns_proxy.model.destinations``, ``dns_proxy``).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

METRICS = "EGRESS_DNS_PROXY_METRICS"


def register(app: typer.Typer) -> None:
    """Add this command group to the main application."""

    @app.command("dns-proxy")
    def dns_proxy(
        metrics: Annotated[
            str | None,
            typer.Option(
                metavar="ADDR:PORT", help=f"Serve Prometheus /metrics here [off] [env {METRICS}]"
            ),
        ] = None,
    ) -> int:
        """Forward TCP ports to IPs or DNS names (EGRESS_DNS_PROXY_DESTINATION), following
        each name's answers; see docs/dns-proxy.md."""
        from egress_router.dns_proxy.model.destinations import parse_settings, render_plan
        from egress_router.errors import VariableError

        settings = parse_settings(os.environ)
        listen = None
        text = metrics if metrics is not None else os.environ.get(METRICS) or None
        if text is not None and text.strip().lower() != "off":
            from egress_router.runtime.metrics import parse_listen

            variable = "--metrics" if metrics is not None else METRICS
            try:
                listen = parse_listen(text)
            except ValueError as exc:
                raise VariableError(variable, str(exc), text=text) from None
        if settings.unit_test:
            typer.echo(render_plan(settings), nl=False)
            return 0
        from egress_router.dns_proxy.main import run

        return run(settings, listen)
