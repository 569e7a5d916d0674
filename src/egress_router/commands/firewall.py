"""``egress-router firewall apply|run|agent|explain|check``: the egress firewall's CLI.

Owns: the flags (``--pods NAMESPACE=CIDR[,CIDR...]`` repeatable, ``--cluster-cidr`` and
``--service-cidr`` repeatable or comma lists, ``--namespace`` for policies without
``metadata.namespace``, ``--dns-listen ADDR[:PORT]``; ``agent --node NAME --kubeconfig``)
and printing results.
Must not: contain policy logic (``firewall.model``) or kernel access (``firewall.agent``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from egress_router.errors import VariableError

if TYPE_CHECKING:
    from egress_router.firewall.agent import AgentConfig
    from egress_router.firewall.model.decide import Address, Members, NodeConfig
    from egress_router.firewall.model.policy import Rule

fw = typer.Typer(
    name="firewall",
    help="Egress firewall: EgressNetworkPolicy / EgressFirewall enforced with nftables.",
    no_args_is_help=True,
)

Policies = Annotated[
    list[Path], typer.Argument(help="Policy files (JSON or YAML; Lists and multi-document)")
]
Pods = Annotated[
    list[str] | None,
    typer.Option(
        "--pods",
        metavar="NAMESPACE=CIDR[,CIDR...]",
        help="Pod addresses of a namespace on this node (repeatable).",
    ),
]
Cluster = Annotated[
    list[str] | None,
    typer.Option("--cluster-cidr", help="Cluster pod network, never filtered (repeatable)."),
]
Service = Annotated[
    list[str] | None,
    typer.Option("--service-cidr", help="Service network, never filtered (repeatable)."),
]
Namespace = Annotated[
    str | None,
    typer.Option("--namespace", "-n", help="Namespace of policies without metadata.namespace."),
]


def register(app: typer.Typer) -> None:
    """Add the ``firewall`` command group to the main application."""
    app.add_typer(fw, name="firewall")


def _node(
    pods: list[str] | None, cluster: list[str] | None, service: list[str] | None
) -> NodeConfig:
    from egress_router.firewall.model.decide import parse_node

    return parse_node(pods or [], cluster or [], service or [])


def _hostport(flag: str, text: str, default_port: int) -> tuple[str, int]:
    from egress_router.common.endpoints import parse_endpoint

    try:
        endpoint = parse_endpoint(text, default_port=default_port)
    except ValueError as exc:
        raise VariableError(flag, str(exc), text=text, expected="ADDR[:PORT]") from exc
    return endpoint.host, endpoint.port


@fw.command()
def check(policies: Policies, namespace: Namespace = None) -> int:
    """Validate policies only (exit 0 valid, 1 invalid); nothing is applied.

    A policy without metadata.namespace is checked as if it were in --namespace, or in
    ``default`` (for validation the namespace only matters for "one policy per namespace").
    """
    from egress_router.firewall.agent import load_policies

    loaded = load_policies(policies, namespace or "default")
    rules = sum(len(p.rules) for p in loaded.values())
    print(f"valid: {len(loaded)} policies, {rules} rules")
    return 0


@fw.command()
def apply(
    policies: Policies,
    pods: Pods = None,
    cluster_cidr: Cluster = None,
    service_cidr: Service = None,
    namespace: Namespace = None,
) -> int:
    """Validate all, resolve dnsName rules once, replace our nftables table in one transaction."""
    from egress_router.firewall.agent import (
        Agent,
        AgentConfig,
        load_policies,
        log,
        summary,
        warnings,
    )

    agent = Agent(AgentConfig(policies, _node(pods, cluster_cidr, service_cidr), namespace))
    loaded = load_policies(agent.config.files, agent.config.default_namespace)
    problems = agent.resolve_once(loaded)
    agent.apply(loaded)
    print(f"applied: {summary(agent)}")
    for warning in warnings(agent):
        log(f"warning: {warning}")
    for problem in problems:
        log(f"warning: {problem}")
    names = {r.dns_name for p in loaded.values() for r in p.rules if r.dns_name}
    if names:
        learned = sum(len(a) for a in agent.learned.values())
        log(
            f"warning: dnsName rules resolved once ({len(names)} names, {learned} addresses);"
            " they will not follow DNS changes without `firewall run`"
        )
    return 0


DnsListen = Annotated[
    str | None,
    typer.Option(metavar="ADDR[:PORT]", help="Serve DNS to pods here (learn before answering)."),
]
DnsUpstream = Annotated[
    str | None,
    typer.Option(metavar="ADDR[:PORT]", help="Resolver to ask (default: /etc/resolv.conf)."),
]
TtlFloor = Annotated[float, typer.Option(help="Shortest refresh interval, s.")]
TtlCeiling = Annotated[float, typer.Option(help="Longest refresh interval, s.")]
Grace = Annotated[float, typer.Option(help="Keep addresses this long past TTL, s.")]
RetryFirst = Annotated[float, typer.Option(help="Retry delay after a failure, s.")]
RetryMax = Annotated[float, typer.Option(help="Cap of the retry back-off, s.")]
Metrics = Annotated[
    str | None,
    typer.Option(
        metavar="ADDR:PORT",
        envvar="EGRESS_FIREWALL_METRICS",
        help="Serve Prometheus /metrics here [off].",
    ),
]
HealthListen = Annotated[
    str | None,
    typer.Option(
        "--health",
        metavar="[ADDR:]PORT",
        envvar="EGRESS_ROUTER_HEALTH_PORT",
        help="Serve /healthz and /readyz (ready once the rules are applied) here [off].",
    ),
]


def _config(
    files: list[Path],
    node: NodeConfig,
    namespace: str | None,
    dns_listen: str | None,
    dns_upstream: str | None,
    timing: tuple[float, float, float, float, float],
    watch_interval: float,
    metrics: str | None,
    health: str | None = None,
) -> AgentConfig:
    """The agent's settings from the flags ``run`` and ``agent`` share."""
    from egress_router.firewall.agent import AgentConfig
    from egress_router.firewall.model.dnsrules import dns_settings

    ttl_floor, ttl_ceiling, grace, retry_first, retry_max = timing
    if not 0 < ttl_floor <= ttl_ceiling or retry_first <= 0 or retry_max < retry_first:
        raise VariableError(
            "--ttl-floor", "need 0 < floor <= ceiling and 0 < retry-first <= retry-max"
        )
    settings = dns_settings(
        ttl_floor=ttl_floor,
        ttl_ceiling=ttl_ceiling,
        grace=grace,
        retry_first=retry_first,
        retry_max=retry_max,
    )
    metrics_listen = None
    if metrics and metrics.strip().lower() != "off":
        from egress_router.runtime.metrics import parse_listen

        try:
            metrics_listen = parse_listen(metrics)
        except ValueError as exc:
            raise VariableError("--metrics", str(exc), text=metrics) from None
    from egress_router.common.endpoints import parse_health

    try:
        health_listen = parse_health(health)
    except ValueError as exc:
        raise VariableError("--health", str(exc), text=health or "") from None
    return AgentConfig(
        files,
        node,
        namespace,
        dns=settings,
        dns_listen=_hostport("--dns-listen", dns_listen, 53) if dns_listen else None,
        upstream=[_hostport("--dns-upstream", dns_upstream, 53)] if dns_upstream else None,
        watch_interval=watch_interval,
        metrics=metrics_listen,
        health=health_listen,
    )


def _serve(main: Coroutine[Any, Any, None]) -> None:
    import asyncio

    from egress_router.runtime import logsink, unexpected

    async def reported() -> None:  # what escapes a callback or an unawaited task: logged, counted
        unexpected.install(asyncio.get_running_loop(), "firewall")
        await main

    with logsink.installed():  # a stalled log reader must not stop the DNS server or a reload
        try:
            import uvloop

            uvloop.run(reported())
        except ImportError:  # pragma: no cover - uvloop is a pinned dependency
            asyncio.run(reported())


@fw.command()
def run(
    policies: Policies,
    pods: Pods = None,
    cluster_cidr: Cluster = None,
    service_cidr: Service = None,
    namespace: Namespace = None,
    dns_listen: DnsListen = None,
    dns_upstream: DnsUpstream = None,
    ttl_floor: TtlFloor = 5.0,
    ttl_ceiling: TtlCeiling = 1800.0,
    grace: Grace = 5.0,
    retry_first: RetryFirst = 5.0,
    retry_max: RetryMax = 120.0,
    watch_interval: Annotated[float, typer.Option(help="Policy-file check interval, s.")] = 1.0,
    metrics: Metrics = None,
    health: HealthListen = None,
) -> int:
    """Apply, then keep DNS-named rules current and reload on file change or SIGHUP."""
    from egress_router.firewall.agent import Agent
    from egress_router.firewall.loop import run

    config = _config(
        policies,
        _node(pods, cluster_cidr, service_cidr),
        namespace,
        dns_listen,
        dns_upstream,
        (ttl_floor, ttl_ceiling, grace, retry_first, retry_max),
        watch_interval,
        metrics,
        health,
    )
    _serve(run(Agent(config)))
    return 0


_NODE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")  # DNS-1123 subdomain


@fw.command()
def agent(
    node: Annotated[
        str,
        typer.Option(
            envvar="NODE_NAME", help="This node's name: its pods are filtered [env NODE_NAME]."
        ),
    ],
    kubeconfig: Annotated[
        str | None,
        typer.Option(
            help="kubeconfig file (default: the pod's service account, else $KUBECONFIG or "
            "~/.kube/config)"
        ),
    ] = None,
    cluster_cidr: Cluster = None,
    service_cidr: Service = None,
    dns_listen: DnsListen = None,
    dns_upstream: DnsUpstream = None,
    ttl_floor: TtlFloor = 5.0,
    ttl_ceiling: TtlCeiling = 1800.0,
    grace: Grace = 5.0,
    retry_first: RetryFirst = 5.0,
    retry_max: RetryMax = 120.0,
    debounce: Annotated[
        float, typer.Option(help="Quiet time after a change before applying, s.")
    ] = 0.05,
    metrics: Metrics = None,
    health: HealthListen = None,
) -> int:
    """Watch policies, namespaces and this node's pods in the API server, and enforce them.

    Every EgressFirewall / EgressNetworkPolicy of the cluster, applied to the pods scheduled
    on --node (their status.podIPs); each policy's status gets this node's result.
    """
    from egress_router.firewall.agent import Agent
    from egress_router.firewall.cluster import ClusterConfig, run
    from egress_router.kube.client import Kube

    if not _NODE_NAME.match(node):
        raise VariableError("--node", "not a valid node name", text=node, expected="worker-1")
    if not 0 <= debounce <= 5:
        raise VariableError("--debounce", "must be 0-5 seconds", text=str(debounce))
    exempt = _node([], cluster_cidr, service_cidr).exempt
    config = _config(
        [],
        _node([], None, None),
        None,
        dns_listen,
        dns_upstream,
        (ttl_floor, ttl_ceiling, grace, retry_first, retry_max),
        1.0,
        metrics,
        health,
    )
    config.precheck = False  # one all-or-nothing transaction per change (docs/firewall.md)
    cluster = ClusterConfig(
        node=node, exempt=exempt, debounce=debounce, debounce_max=max(4 * debounce, 0.2)
    )
    kube = Kube(kubeconfig)
    try:
        _serve(run(Agent(config), kube, cluster))
    finally:
        kube.close()
    return 0


@fw.command()
def explain(
    policies: Policies,
    from_: Annotated[str, typer.Option("--from", help="Source pod address.")],
    to: Annotated[str, typer.Option("--to", metavar="IP|NAME", help="Destination.")],
    port: Annotated[int | None, typer.Option(help="Destination port.")] = None,
    proto: Annotated[str, typer.Option(help="tcp, udp or sctp.")] = "tcp",
    pods: Pods = None,
    cluster_cidr: Cluster = None,
    service_cidr: Service = None,
    namespace: Namespace = None,
    live: Annotated[
        bool, typer.Option(help="Count addresses the running agent has learned for dnsName rules.")
    ] = True,
) -> int:
    """Print the verdict for one connection and the rule that decided it."""
    from egress_router.common.values import is_dns_name
    from egress_router.firewall.agent import load_policies
    from egress_router.firewall.model.decide import decide

    loaded = load_policies(policies, namespace)
    node = _node(pods, cluster_cidr, service_cidr)
    try:
        src = ipaddress.ip_address(from_)
    except ValueError as exc:
        raise VariableError("--from", "not an IP address", text=from_) from exc
    if proto.lower() not in ("tcp", "udp", "sctp"):
        raise VariableError("--proto", "must be tcp, udp or sctp", text=proto)
    if port is not None and not 1 <= port <= 65535:
        raise VariableError("--port", "must be 1-65535", text=str(port))
    try:
        targets = [ipaddress.ip_address(to)]
        name = None
    except ValueError:
        if not is_dns_name(to):
            raise VariableError("--to", "not an IP address or DNS name", text=to) from None
        import asyncio

        from egress_router.firewall.agent import new_resolver

        targets = list(asyncio.run(new_resolver(None).lookup(to)).require(to).addresses)
        name = to
    members = _live_members() if live else None
    for dst in targets:
        verdict = decide(
            loaded, node, src, dst, name=name, proto=proto.lower(), port=port, members=members
        )
        print(f"{dst}: {verdict}" if name else str(verdict))
    return 0


def _live_members() -> Members | None:
    """Addresses in the kernel's DNS sets, if our table is readable here (else None)."""
    from egress_router.errors import DataplaneError
    from egress_router.firewall.model.plan import dns_set_name
    from egress_router.firewall.model.render import FAMILY, TABLE
    from egress_router.kernel import nftables

    try:
        listed = nftables.list_sets(FAMILY, TABLE) or {}
    except (DataplaneError, ValueError):
        return None
    sets = {name: {e.key for e in elements} for name, elements in listed.items()}

    def members(namespace: str, rule: Rule, address: Address) -> bool:
        assert rule.dns_name is not None
        name = dns_set_name(namespace, rule.dns_name, address.version)
        return str(address) in sets.get(name, set())

    return members
