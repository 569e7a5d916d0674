"""CLI front end for ``egress-router http-proxy`` (the ose-egress-http-proxy container).

Owns: reading EGRESS_HTTP_PROXY_* (each knob also a flag; a flag wins over the variable),
``unit-test`` mode (print the parsed rule table), finding the cluster-side listen addresses
through the netlink adapter, and starting the proxy.
Must not: parse destinations (``http_proxy.model.rules``) or handle connections (``http_proxy``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any

import typer

DESTINATION = "EGRESS_HTTP_PROXY_DESTINATION"
FILE_VARIABLE = "EGRESS_HTTP_PROXY_DESTINATION_FILE"
MODE = "EGRESS_HTTP_PROXY_MODE"
CLUSTER_INTERFACE = "EGRESS_ROUTER_CLUSTER_INTERFACE"
MACVLAN_INTERFACE = "EGRESS_ROUTER_MACVLAN_INTERFACE"  # as `egress-router setup` names it

# flag name -> (variable, help)
KNOBS: dict[str, tuple[str, str]] = {
    "listen_port": ("EGRESS_HTTP_PROXY_LISTEN_PORT", "Port to listen on [8080]"),
    "listen_address": (
        "EGRESS_HTTP_PROXY_LISTEN_ADDRESS",
        "Addresses to listen on, comma separated [the cluster interface's addresses and 127.0.0.1]",
    ),
    "cluster_interface": (
        CLUSTER_INTERFACE,
        "Cluster-side interface whose addresses we use [eth0]",
    ),
    "access_log": ("EGRESS_HTTP_PROXY_ACCESS_LOG", "on/off: one line per request on stdout [on]"),
    "splice": ("EGRESS_HTTP_PROXY_SPLICE", "on/off: CONNECT tunnels relayed by the kernel [on]"),
    "connect_ports": (
        "EGRESS_HTTP_PROXY_CONNECT_PORTS",
        "Ports CONNECT may reach, e.g. '443,8443' or '8000-8999' [all]",
    ),
    "workers": ("EGRESS_HTTP_PROXY_WORKERS", "Worker processes sharing the port [CPUs, max 4]"),
    "max_header_bytes": ("EGRESS_HTTP_PROXY_MAX_HEADER_BYTES", "Largest request head [65536]"),
    "max_connections": ("EGRESS_HTTP_PROXY_MAX_CONNECTIONS", "Client connections per worker"),
    "header_timeout": ("EGRESS_HTTP_PROXY_HEADER_TIMEOUT", "Seconds to send a request head [10]"),
    "idle_timeout": ("EGRESS_HTTP_PROXY_IDLE_TIMEOUT", "Idle keep-alive seconds [60]"),
    "io_timeout": ("EGRESS_HTTP_PROXY_IO_TIMEOUT", "Seconds without traffic in flight [900]"),
    "connect_timeout": ("EGRESS_HTTP_PROXY_CONNECT_TIMEOUT", "Resolve+connect seconds [10]"),
    "shutdown_timeout": ("EGRESS_HTTP_PROXY_SHUTDOWN_TIMEOUT", "Drain seconds on SIGTERM [20]"),
    "metrics": ("EGRESS_HTTP_PROXY_METRICS", "ADDR:PORT serving Prometheus /metrics [off]"),
}


LOOPBACK = "127.0.0.1"


def _listen_addresses(interface: str) -> tuple[str, ...]:
    from egress_router.errors import VariableError
    from egress_router.kernel.netlink import Netlink

    with Netlink() as nl:
        if nl.link(interface) is None:
            raise VariableError(CLUSTER_INTERFACE, "no such interface in this pod", text=interface)
        found = tuple(str(a.ip) for a in nl.addresses(interface))
    if not found:
        raise VariableError(CLUSTER_INTERFACE, "the interface has no address yet", text=interface)
    # Loopback too, as the reference's squid listened there: processes inside the pod (probes,
    # `oc rsh` + curl while troubleshooting) can use the proxy; nothing outside the pod can.
    return (*found, LOOPBACK)


def _refuse_reserved(listen: tuple[str, ...], variable: str, macvlan: str) -> None:
    """Never listen on the reserved external address: that made the reference an open proxy."""
    from egress_router.errors import VariableError
    from egress_router.kernel.netlink import Netlink

    with Netlink() as nl:
        if nl.link(macvlan) is None:
            return
        reserved = {str(a.ip) for a in nl.addresses(macvlan)}
    for address in listen:
        if address in reserved:
            raise VariableError(
                variable,
                f"refusing to listen on the reserved external address of {macvlan}",
                text=address,
            )


def with_file(env: Mapping[str, str]) -> dict[str, str]:
    """The environment with EGRESS_HTTP_PROXY_DESTINATION read from the file, if one is named."""
    from egress_router.runtime.reload import with_variable_file

    return with_variable_file(env, DESTINATION, FILE_VARIABLE)


def build_settings(env: Mapping[str, str], flags: Mapping[str, str | None]) -> Any:
    """``ProxySettings`` from flags (preferred) and the environment; raises VariableError."""
    from egress_router.common.names import interface_variable
    from egress_router.common.switches import PER_CPU, parse_switch, parse_workers
    from egress_router.common.values import parse_port
    from egress_router.errors import VariableError
    from egress_router.http_proxy.model import settings as s
    from egress_router.http_proxy.model.rules import parse_destinations
    from egress_router.runtime import workers

    def value(knob: str) -> tuple[str, str | None]:
        variable = KNOBS[knob][0]
        given = flags.get(knob)
        return variable, given if given is not None else env.get(variable) or None

    options: dict[str, Any] = {}
    variable, text = value("listen_port")
    if text is not None:
        try:
            options["port"] = parse_port(text.strip())
        except ValueError as exc:
            raise VariableError(variable, str(exc), text=text) from None
    for knob in ("access_log", "splice"):
        variable, text = value(knob)
        if text is not None:
            try:
                options[knob] = parse_switch(text, default=True)
            except ValueError as exc:
                raise VariableError(variable, str(exc), text=text) from None
    variable, text = value("connect_ports")
    if text is not None:
        options["connect_ports"] = s.parse_connect_ports(text, variable)
    variable, text = value("workers")
    try:
        configured = parse_workers(text, per_cpu=False) if text else PER_CPU
    except ValueError as exc:
        raise VariableError(variable, str(exc), text=text) from None
    options["workers"] = workers.count(configured, per_cpu_max=s.DEFAULT_MAX_WORKERS)
    for knob in ("max_header_bytes", "max_connections"):
        variable, text = value(knob)
        if text is not None:
            options[knob] = int(s.parse_positive(text, variable, integer=True))
    for knob in ("header_timeout", "idle_timeout", "io_timeout", "connect_timeout"):
        variable, text = value(knob)
        if text is not None:
            options[knob] = s.parse_positive(text, variable)
    variable, text = value("shutdown_timeout")
    if text is not None:
        options["shutdown_timeout"] = s.parse_positive(text, variable)
    variable, text = value("metrics")
    if text is not None and text.strip().lower() not in ("", "off"):
        from egress_router.runtime.metrics import parse_listen

        try:
            options["metrics"] = parse_listen(text)
        except ValueError as exc:
            raise VariableError(variable, str(exc), text=text) from None
    rules = parse_destinations(env.get(DESTINATION))
    macvlan = interface_variable(MACVLAN_INTERFACE, env.get(MACVLAN_INTERFACE) or "macvlan0")
    variable, text = value("listen_address")
    if text is not None:
        listen = s.parse_listen(text, variable)
    else:
        variable, interface = value("cluster_interface")
        listen = _listen_addresses(interface_variable(variable, interface or "eth0"))
    _refuse_reserved(listen, variable, macvlan)
    return s.ProxySettings(rules=rules, listen=listen, **options)


def _opt(knob: str) -> Any:
    variable, text = KNOBS[knob]
    return typer.Option("--" + knob.replace("_", "-"), help=f"{text} [env {variable}]")


# Module level: typer evaluates the (string) annotations in this module's namespace.
ListenPort = Annotated[str | None, _opt("listen_port")]
ListenAddress = Annotated[str | None, _opt("listen_address")]
ClusterInterface = Annotated[str | None, _opt("cluster_interface")]
AccessLog = Annotated[str | None, _opt("access_log")]
Splice = Annotated[str | None, _opt("splice")]
ConnectPorts = Annotated[str | None, _opt("connect_ports")]
Workers = Annotated[str | None, _opt("workers")]
MaxHeaderBytes = Annotated[str | None, _opt("max_header_bytes")]
MaxConnections = Annotated[str | None, _opt("max_connections")]
HeaderTimeout = Annotated[str | None, _opt("header_timeout")]
IdleTimeout = Annotated[str | None, _opt("idle_timeout")]
IoTimeout = Annotated[str | None, _opt("io_timeout")]
ConnectTimeout = Annotated[str | None, _opt("connect_timeout")]
ShutdownTimeout = Annotated[str | None, _opt("shutdown_timeout")]
Metrics = Annotated[str | None, _opt("metrics")]


def register(app: typer.Typer) -> None:
    """Add this command group to the main application."""

    @app.command("http-proxy")
    def http_proxy(
        listen_port: ListenPort = None,
        listen_address: ListenAddress = None,
        cluster_interface: ClusterInterface = None,
        access_log: AccessLog = None,
        splice: Splice = None,
        connect_ports: ConnectPorts = None,
        workers: Workers = None,
        max_header_bytes: MaxHeaderBytes = None,
        max_connections: MaxConnections = None,
        header_timeout: HeaderTimeout = None,
        idle_timeout: IdleTimeout = None,
        io_timeout: IoTimeout = None,
        connect_timeout: ConnectTimeout = None,
        shutdown_timeout: ShutdownTimeout = None,
        metrics: Metrics = None,
    ) -> int:
        """HTTP/HTTPS forward proxy allowing the destinations in EGRESS_HTTP_PROXY_DESTINATION
        (or the file EGRESS_HTTP_PROXY_DESTINATION_FILE, reloaded when it changes or on
        SIGHUP); see docs/http-proxy.md."""
        flags = dict(locals())
        from egress_router.http_proxy.model.rules import RuleTable, parse_destinations
        from egress_router.runtime.reload import Source, signature

        watched = os.environ.get(FILE_VARIABLE) or None
        baseline = signature(watched) if watched else None  # before the first read

        if os.environ.get(MODE) == "unit-test":
            text = with_file(os.environ).get(DESTINATION)
            typer.echo(parse_destinations(text).render(), nl=False)
            return 0
        settings = build_settings(with_file(os.environ), flags)
        from egress_router.common.endpoints import HEALTH_VARIABLE, parse_health
        from egress_router.errors import VariableError
        from egress_router.http_proxy.server import serve

        health_text = os.environ.get(HEALTH_VARIABLE)
        try:
            health = parse_health(health_text)
        except ValueError as exc:
            raise VariableError(HEALTH_VARIABLE, str(exc), text=health_text or "") from None
        if health is not None and health[1] == settings.port:
            raise VariableError(HEALTH_VARIABLE, f"port {health[1]} is the proxy's own port")

        def reparse() -> RuleTable:
            return parse_destinations(with_file(os.environ).get(DESTINATION))

        return serve(settings, Source(reparse, watched, baseline=baseline), health)
