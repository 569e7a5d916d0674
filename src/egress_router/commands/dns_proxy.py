"""CLI front end for ``egress-router dns-proxy`` (the ose-egress-dns-proxy container).

Owns: reading the environment, printing the plan in unit-test mode, starting the service.
Must not: contain parsing or forwarding logic (``core.dns_destinations``, ``proxy.dns``).
"""

from __future__ import annotations

import os

import typer


def register(app: typer.Typer) -> None:
    """Add this command group to the main application."""

    @app.command("dns-proxy")
    def dns_proxy() -> int:
        """Forward TCP ports to IPs or DNS names (EGRESS_DNS_PROXY_DESTINATION), following
        each name's answers; see docs/dns-proxy.md."""
        from egress_router.core.dns_destinations import parse_settings, render_plan

        settings = parse_settings(os.environ)
        if settings.unit_test:
            typer.echo(render_plan(settings), nl=False)
            return 0
        from egress_router.proxy.dns.main import run

        return run(settings)
