"""CLI front end for ``egress-router dns-proxy`` (the ose-egress-dns-proxy container).

Owns: reading the environment, printing the plan in unit-test mode, starting the service.
Must not: contain parsing or forwarding logic (``dns_proxy.model.destinations``, ``dns_proxy``).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

METRICS = "EGRESS_DNS_PROXY_METRICS"
DESTINATION = "EGRESS_DNS_PROXY_DESTINATION"
FILE_VARIABLE = "EGRESS_DNS_PROXY_DESTINATION_FILE"
FILE_HELP = f"Read {DESTINATION} from this file, reloaded when it changes [env {FILE_VARIABLE}]"


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
        destination_file: Annotated[
            str | None, typer.Option("--destination-file", help=FILE_HELP)
        ] = None,
    ) -> int:
        """Forward TCP ports to IPs or DNS names (EGRESS_DNS_PROXY_DESTINATION), following
        each name's answers; SIGHUP or a changed destination file reloads; see
        docs/dns-proxy.md."""
        from egress_router.dns_proxy.model.destinations import (
            Settings,
            parse_settings,
            render_plan,
        )
        from egress_router.errors import VariableError
        from egress_router.runtime.reload import with_variable_file

        def reparse() -> Settings:
            variables = with_variable_file(
                os.environ, DESTINATION, FILE_VARIABLE, destination_file, "--destination-file"
            )
            return parse_settings(variables)

        from egress_router.runtime.reload import Source, signature

        watched = destination_file or os.environ.get(FILE_VARIABLE) or None
        baseline = signature(watched) if watched else None  # before the first read
        settings = reparse()
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
        from egress_router.common.endpoints import HEALTH_VARIABLE, parse_health
        from egress_router.dns_proxy.main import run

        health_text = os.environ.get(HEALTH_VARIABLE)
        try:
            health = parse_health(health_text)
        except ValueError as exc:
            raise VariableError(HEALTH_VARIABLE, str(exc), text=health_text or "") from None
        if health is not None and health[1] in {d.local_port for d in settings.destinations}:
            raise VariableError(
                HEALTH_VARIABLE, f"port {health[1]} is also a destination's local port"
            )
        return run(settings, listen, Source(reparse, watched, baseline=baseline), health)
