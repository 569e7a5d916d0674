"""Operational metrics (Prometheus text format): definitions, multi-process mode, exposition.

Owns: every ``egress_router_*`` metric and its labels (one small class per long-running
component), bounding label values (rule labels come from the configured rule table, status
codes, local ports, configured names; never client addresses or requested host names),
prometheus_client's multi-process mode for forking components, and the HTTP endpoint.
Must not: be called per byte or per chunk. Callers update once per request, connection, DNS
lookup or reload; gauges of connection counts are set by a once-a-second sweep.

The only module that imports prometheus_client. Everything is opt-in: with no ``--metrics``
the components never construct these classes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable

from prometheus_client import values
from prometheus_client.exposition import start_http_server
from prometheus_client.metrics import Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import CollectorRegistry

from egress_router.common.endpoints import parse_endpoint
from egress_router.common.values import trim
from egress_router.errors import DataplaneError
from egress_router.runtime import logsink, unexpected

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CHILDREN_CACHE_MAX = 4096  # (method, status, rule) -> counter child, for the common cases
RULE_LABELS_MAX = 1000  # distinct rule labels kept; more (never from a sane table) -> "other"
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
APPLY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
HOLD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2)


# -- exposition and multi-process mode ---------------------------------------------------------


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` or ``[V6]:PORT`` (``common.endpoints``; the port is required), trimmed;
    ValueError with the reason."""
    endpoint = parse_endpoint(trim(text))
    return endpoint.host, endpoint.port


def serve(address: str, port: int, registry: CollectorRegistry | None = None) -> None:
    """Serve ``/metrics`` on ``address:port`` from a daemon thread.

    ``registry`` None: the multi-process view (every process writing into the directory of
    ``enable_multiprocess``)."""
    if registry is None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    try:
        start_http_server(port, addr=address, registry=registry)
    except OSError as exc:
        raise DataplaneError(
            f"cannot serve metrics on {address} port {port}: {exc.strerror or exc}"
        ) from None


def enable_multiprocess() -> str:
    """Make metrics created from now on (also in forked children) write to a private directory;
    returns it. Call before creating metrics; ``disable_multiprocess`` removes it."""
    path = tempfile.mkdtemp(prefix="egress-router-metrics-")
    os.environ[MULTIPROC_ENV] = path
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return path


def process_exited(pid: int) -> None:
    """A worker ended: its live gauges (connections, tunnels) leave the sums."""
    if os.environ.get(MULTIPROC_ENV):
        mark_process_dead(pid)  # type: ignore[no-untyped-call]


def disable_multiprocess(path: str) -> None:
    if os.environ.get(MULTIPROC_ENV) == path:
        del os.environ[MULTIPROC_ENV]
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    shutil.rmtree(path, ignore_errors=True)


def new_registry() -> CollectorRegistry:
    """A registry for a single-process component (not the global default one)."""
    return CollectorRegistry(auto_describe=True)


# -- every component: the log sink ------------------------------------------------------------


class LogMetrics:
    """Log lines the process dropped because stdout or stderr was not read fast enough, and
    unexpected exceptions (bugs) reported by ``runtime.unexpected``.

    Every component's metrics create one, so the counters exist wherever metrics are on."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.dropped = Counter(
            "egress_router_log_dropped_lines",
            "Log lines dropped because stdout or stderr was not read fast enough, by stream.",
            ["stream"],
            registry=registry,
        )
        self._streams = {s: self.dropped.labels(s) for s in ("stdout", "stderr")}
        logsink.observe(self.record)
        self.unexpected = Counter(
            "egress_router_unexpected_errors",
            "Unexpected exceptions (bugs), each logged once with its traceback; the connection "
            "or task it hit was ended and the process kept serving, by component.",
            ["component"],
            registry=registry,
        )
        unexpected.observe(self.unexpected_error)

    def record(self, stream: str, lines: int) -> None:
        self._streams[stream].inc(lines)

    def unexpected_error(self, component: str) -> None:
        self.unexpected.labels(component).inc()


# -- http-proxy --------------------------------------------------------------------------------


class HttpProxyMetrics:
    """Per exchange (request or tunnel), recorded when its access-log record is complete."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry
        self.log = LogMetrics(r)
        self.reloads = Counter(
            "egress_router_http_proxy_reloads",
            "Rule-table reloads (SIGHUP or a changed destination file), by result "
            "(ok, failed: refused, the previous rules stay).",
            ["result"],
            registry=r,
        )
        self.requests = Counter(
            "egress_router_http_requests",
            "Requests and CONNECT tunnels finished, by method, status and deciding rule.",
            ["method", "status", "rule"],
            registry=r,
        )
        self.denied = Counter(
            "egress_router_http_denied", "Requests answered 403, by rule.", ["rule"], registry=r
        )
        self.upstream_errors = Counter(
            "egress_router_http_upstream_errors",
            "Requests answered 502 (resolve/connect/bad answer) or 504 (timeout) by us.",
            ["status"],
            registry=r,
        )
        self.bytes = Counter(
            "egress_router_http_bytes",
            "Body and tunnel bytes, direction up (client to upstream) or down.",
            ["direction", "kind"],
            registry=r,
        )
        self.duration = Histogram(
            "egress_router_http_request_duration_seconds",
            "Time from request head to the end of the answer (or of the tunnel).",
            ["kind"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.connections = Gauge(
            "egress_router_http_client_connections",
            "Open client connections (sampled once a second).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.tunnels = Gauge(
            "egress_router_http_tunnels_open",
            "CONNECT tunnels established and not yet closed (sampled once a second).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self._rules: dict[str, str] = {}
        self._children: dict[tuple[str, int, str], Counter] = {}  # label lookups skipped
        self._up = {k: self.bytes.labels("up", k) for k in ("request", "tunnel")}
        self._down = {k: self.bytes.labels("down", k) for k in ("request", "tunnel")}
        self._durations = {k: self.duration.labels(k) for k in ("request", "tunnel")}

    def _rule(self, rule: str) -> str:
        try:
            return self._rules[rule]
        except KeyError:
            label = rule if len(self._rules) < RULE_LABELS_MAX else "other"
            self._rules[rule] = label
            return label

    def exchange(
        self, method: str, status: int, rule: str, up: int, down: int, seconds: float, tunnel: bool
    ) -> None:
        """``rule``: the structured label (``Exchange.rule_id``: ``rule N: text`` of a table
        rule or a fixed word), never a message's text."""
        key = (method, status, rule)
        try:
            child = self._children[key]
        except KeyError:
            label = self._rule(rule)
            child = self.requests.labels(method or "-", str(status), label)
            if len(self._children) < CHILDREN_CACHE_MAX:
                self._children[key] = child
        child.inc()
        if status == 403:
            self.denied.labels(self._rule(rule)).inc()
        elif status in (502, 504):
            self.upstream_errors.labels(str(status)).inc()
        kind = "tunnel" if tunnel else "request"
        if up:
            self._up[kind].inc(up)
        if down:
            self._down[kind].inc(down)
        self._durations[kind].observe(seconds)

    def sample(self, connections: int, tunnels: int) -> None:
        self.connections.set(connections)
        self.tunnels.set(tunnels)

    def reload(self, ok: bool) -> None:
        self.reloads.labels("ok" if ok else "failed").inc()


# -- dns-proxy ---------------------------------------------------------------------------------


class DnsProxyMetrics:
    """Per local port (from the configuration); per lookup, per forwarding update, per
    relayed connection."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry
        self.log = LogMetrics(r)
        self.addresses = Gauge(
            "egress_router_dns_proxy_addresses",
            "Addresses new connections to this local port may go to now.",
            ["port"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.resolutions = Counter(
            "egress_router_dns_proxy_resolutions",
            "Lookups of the port's destination name, by outcome (ok, nxdomain, error).",
            ["port", "outcome"],
            registry=r,
        )
        self.last_success = Gauge(
            "egress_router_dns_proxy_last_success_timestamp_seconds",
            "Unix time of the port's last successful lookup (IP destinations: start time).",
            ["port"],
            registry=r,
            multiprocess_mode="max",
        )
        self.updates = Counter(
            "egress_router_dns_proxy_forwarding_updates",
            "Forwarding updates (nftables transactions or relay route swaps), by outcome.",
            ["outcome"],
            registry=r,
        )
        self.reloads = Counter(
            "egress_router_dns_proxy_reloads",
            "Configuration reloads (SIGHUP or a changed destination file), by result "
            "(ok, failed: refused, the previous configuration stays).",
            ["result"],
            registry=r,
        )
        self.relay_connections = Counter(
            "egress_router_dns_proxy_relay_connections",
            "Relay path: client connections accepted.",
            ["port"],
            registry=r,
        )
        self.relay_active = Gauge(
            "egress_router_dns_proxy_relay_active_connections",
            "Relay path: client connections open now.",
            ["port"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.relay_dial_failures = Counter(
            "egress_router_dns_proxy_relay_dial_failures",
            "Relay path: connections closed because no destination address could be reached.",
            ["port"],
            registry=r,
        )
        self.relay_bytes = Counter(
            "egress_router_dns_proxy_relay_bytes",
            "Relay path: bytes received from the client (up) or the destination (down), "
            "counted when that side closes.",
            ["port", "direction"],
            registry=r,
        )

    def lookup(self, ports: Iterable[int], outcome: str, now: float) -> None:
        """One lookup of a name serving ``ports``: ``ok`` (addresses), ``nxdomain`` (no
        address: NXDOMAIN or no A record) or ``error`` (no answer)."""
        for port in ports:
            self.resolutions.labels(str(port), outcome).inc()
            if outcome == "ok":
                self.last_success.labels(str(port)).set(now)

    def current(self, ports: dict[int, int]) -> None:
        """Address counts per port, after a successful forwarding update."""
        for port, count in ports.items():
            self.addresses.labels(str(port)).set(count)

    def fixed(self, ports: Iterable[int], now: float) -> None:
        for port in ports:
            self.last_success.labels(str(port)).set(now)

    def update(self, ok: bool) -> None:
        self.updates.labels("ok" if ok else "failed").inc()

    def reload(self, ok: bool) -> None:
        self.reloads.labels("ok" if ok else "failed").inc()

    # The relay reports each side once, when it closes (bytes read from the socket's TCP_INFO).

    def relay_open(self, port: int) -> None:
        self.relay_connections.labels(str(port)).inc()
        self.relay_active.labels(str(port)).inc()

    def relay_closed(self, port: int, up: int, dial_failed: bool) -> None:
        label = str(port)
        self.relay_active.labels(label).dec()
        if dial_failed:
            self.relay_dial_failures.labels(label).inc()
        if up:
            self.relay_bytes.labels(label, "up").inc(up)

    def relay_upstream_closed(self, port: int, down: int) -> None:
        if down:
            self.relay_bytes.labels(str(port), "down").inc(down)


# -- firewall agent ----------------------------------------------------------------------------


class FirewallMetrics:
    """Per apply/reload, per learned-set update, per polled lookup, per proxied DNS query."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry
        self.log = LogMetrics(r)
        self.policies = Gauge("egress_router_firewall_policies", "Policies in force.", registry=r)
        self.rules = Gauge("egress_router_firewall_rules", "Rules in force.", registry=r)
        self.reloads = Counter(
            "egress_router_firewall_reloads",
            "Applies of the policy files (the first one included), by outcome (ok, failed).",
            ["outcome"],
            registry=r,
        )
        self.apply_seconds = Histogram(
            "egress_router_firewall_apply_duration_seconds",
            "Validating and atomically replacing the table (successful applies).",
            buckets=APPLY_BUCKETS,
            registry=r,
        )
        self.learned = Gauge(
            "egress_router_firewall_learned_addresses",
            "Addresses currently learned for a dnsName rule (namespace and name from policies).",
            ["namespace", "name"],
            registry=r,
        )
        self.lookups = Counter(
            "egress_router_firewall_dns_lookups",
            "The agent's own lookups of polled dnsName rules, by outcome (ok, error).",
            ["outcome"],
            registry=r,
        )
        self.queries = Counter(
            "egress_router_firewall_dns_proxy_queries",
            "DNS-proxy queries answered to pods, by outcome (answered, servfail).",
            ["outcome"],
            registry=r,
        )
        self.hold = Histogram(
            "egress_router_firewall_dns_proxy_hold_seconds",
            "Time an upstream answer was held until its addresses were in the sets.",
            buckets=HOLD_BUCKETS,
            registry=r,
        )

    def applied(self, ok: bool, seconds: float, policies: int, rules: int) -> None:
        self.reloads.labels("ok" if ok else "failed").inc()
        if ok:
            self.apply_seconds.observe(seconds)
            self.policies.set(policies)
            self.rules.set(rules)

    def learned_counts(self, counts: dict[tuple[str, str], int], *, replace: bool) -> None:
        """Set the learned-address gauges; ``replace`` drops names no policy has any more."""
        if replace:
            self.learned.clear()
        for (namespace, name), count in counts.items():
            self.learned.labels(namespace, name).set(count)

    def lookup(self, ok: bool) -> None:
        self.lookups.labels("ok" if ok else "error").inc()

    def query(self, answered: bool, hold_seconds: float | None) -> None:
        self.queries.labels("answered" if answered else "servfail").inc()
        if hold_seconds is not None:
            self.hold.observe(hold_seconds)


# -- failover (legacy redirect, active/standby) ------------------------------------------------


class FailoverMetrics:
    """Per role transition of a failover instance (never per heartbeat)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry
        self.active = Gauge(
            "egress_router_failover_active",
            "1 while this instance holds the reserved address, else 0.",
            registry=r,
        )
        self.transitions = Gauge(
            "egress_router_failover_transitions",
            "Role transitions of this instance since it started.",
            registry=r,
        )
        self.last_transition = Gauge(
            "egress_router_failover_last_transition_timestamp_seconds",
            "Wall-clock time of this instance's last role transition.",
            registry=r,
        )
        self._seen = 0

    def role(self, active: bool, transitions: int) -> None:
        self.active.set(1 if active else 0)
        if transitions != self._seen:
            self._seen = transitions
            self.last_transition.set_to_current_time()
        self.transitions.set(transitions)
