"""The ``EGRESS_DNS_PROXY_DESTINATION`` grammar and the DNS proxy's settings, parsed into values.

Owns: what a DNS-proxy destination line means (``<port> <address> [<remote_port>]``), the
settings read from the ``EGRESS_DNS_PROXY_*`` / ``EGRESS_ROUTER_*`` variables, and the text
of the plan printed by ``EGRESS_DNS_PROXY_MODE=unit-test``.
Must not: resolve names, open sockets or touch the kernel (the command and the adapters do).

Grammar (one destination per meaningful line, see ``common.lines`` for comments/CRLF/blanks):

    <port> <remote_address>                 local port -> same port on the remote address
    <port> <remote_address> <remote_port>   local port -> remote_port on the remote address

``remote_address`` is an IPv4 address (every octet 0-255) or a DNS host name (RFC 1123 labels)
with at least two labels. The reference rejected single-label names too; we keep that on
purpose: a typo that drops the domain (``8080 exmaple``) would otherwise be searched through
the pod's search domains, and its golden test expects ``Bad destination '8080 invalid'``.
Names with a dot still go through the resolver's search list (``ndots``) like any pod lookup.
Local ports must be unique; duplicate destinations are allowed.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from egress_router.common.lines import meaningful_lines
from egress_router.common.names import interface_variable
from egress_router.common.switches import (
    MAX_WORKERS,
    PER_CPU,
    SWITCH_EXPECTED,
    parse_switch,
    parse_workers,
)
from egress_router.common.values import (
    is_decimal,
    is_dns_name,
    is_peer,
    normalize_name,
    parse_ipv4,
    parse_port,
    trim,
)
from egress_router.errors import VariableError

DESTINATION_VAR = "EGRESS_DNS_PROXY_DESTINATION"
DEBUG_VAR = "EGRESS_DNS_PROXY_DEBUG"
MODE_VAR = "EGRESS_DNS_PROXY_MODE"
FORWARDING_VAR = "EGRESS_DNS_PROXY_FORWARDING"
TTL_MIN_VAR = "EGRESS_DNS_PROXY_TTL_MIN"
TTL_MAX_VAR = "EGRESS_DNS_PROXY_TTL_MAX"
CLUSTER_IF_VAR = "EGRESS_ROUTER_CLUSTER_INTERFACE"
EGRESS_IF_VAR = "EGRESS_ROUTER_EGRESS_INTERFACE"
WORKERS_VAR = "EGRESS_DNS_PROXY_RELAY_WORKERS"
MAX_RELAY_WORKERS = MAX_WORKERS

DEFAULT_TTL_MIN_S = 5  # do not query the cluster DNS more often than this per name
DEFAULT_TTL_MAX_S = 1800  # re-check at least every 30 min, even if the TTL says a day
MAX_TTL_SETTING_S = 86_400  # a bound on the knobs themselves (one day)
_PORT_RANGE = "must be in the range 1 to 65535"


# "This network", loopback, multicast, reserved + broadcast: never a TCP peer to forward to.
class Forwarding(enum.StrEnum):
    """How connections are carried: by the kernel (nftables DNAT) or by our TCP relay."""

    KERNEL = "kernel"
    RELAY = "relay"


@dataclass(frozen=True)
class Destination:
    """One line: ``local_port`` goes to ``host``:``remote_port``.

    ``address`` is set when ``host`` is an IPv4 literal (no lookup ever); otherwise ``host``
    is a normalised DNS name (lower case, no trailing dot).
    """

    line: int
    local_port: int
    host: str
    remote_port: int
    address: ipaddress.IPv4Address | None

    @property
    def is_name(self) -> bool:
        return self.address is None


@dataclass(frozen=True)
class Settings:
    """Everything the command reads from the environment, validated.

    ttl_min_s / ttl_max_s: bounds (seconds) applied to an answer's TTL before re-resolving.
    cluster_interface: where clients arrive (kernel path DNATs only there; relay listens only
    on its addresses). egress_interface: the macvlan, where traffic leaves with EGRESS_SOURCE.
    """

    destinations: tuple[Destination, ...]
    debug: bool = False
    unit_test: bool = False
    forwarding: Forwarding = Forwarding.KERNEL
    ttl_min_s: int = DEFAULT_TTL_MIN_S
    ttl_max_s: int = DEFAULT_TTL_MAX_S
    cluster_interface: str = "eth0"
    egress_interface: str = "macvlan0"
    relay_workers: int = 0  # relay processes sharing each port; 0 = one per CPU

    @property
    def names(self) -> tuple[str, ...]:
        """Distinct DNS names, in order of first appearance."""
        return tuple(dict.fromkeys(d.host for d in self.destinations if d.is_name))


def _bad(line: int, text: str, why: str | None = None) -> VariableError:
    return VariableError(
        DESTINATION_VAR,
        "Bad destination",
        line=line,
        text=text,
        expected=why or "'<port> <ipv4-or-name> [<remote_port>]'",
    )


def _port(text: str, line: int, whole: str) -> int:
    try:
        return parse_port(text)
    except ValueError:
        raise VariableError(
            DESTINATION_VAR, f"Invalid port: {text}, {_PORT_RANGE}", line=line, text=whole
        ) from None


def _address(text: str, line: int, whole: str) -> tuple[str, ipaddress.IPv4Address | None]:
    if text.isascii() and text.replace(".", "").isdigit():
        try:
            ip = parse_ipv4(text)
        except ValueError as exc:
            raise _bad(line, whole, f"an IPv4 address with octets 0-255: {exc}") from None
        if not is_peer(ip):
            raise _bad(line, whole, "a unicast IPv4 address (not 0/8, 127/8, 224/4 or 240/4)")
        return str(ip), ip
    if not text.isascii() or not is_dns_name(text, min_labels=2):
        raise _bad(line, whole, "an IPv4 address or a host name with a dot, such as example.com")
    return normalize_name(text), None


def parse_destinations(value: str | None) -> tuple[Destination, ...]:
    """Parse the whole variable; raise ``VariableError`` on the first bad line."""
    if value is None or not trim(value):
        raise VariableError(DESTINATION_VAR, f"Must specify {DESTINATION_VAR}")
    result: list[Destination] = []
    used: dict[int, int] = {}
    for line in meaningful_lines(value, DESTINATION_VAR):
        fields = line.fields
        if len(fields) not in (2, 3) or not is_decimal(fields[0]):
            raise _bad(line.number, line.text)
        host, address = _address(fields[1], line.number, line.text)
        local_port = _port(fields[0], line.number, line.text)
        remote_port = _port(fields[2], line.number, line.text) if len(fields) == 3 else local_port
        if local_port in used:
            raise VariableError(
                DESTINATION_VAR,
                f"Proxy port {local_port} already used, must be unique for each destination"
                f" (first used on line {used[local_port]})",
                line=line.number,
                text=line.text,
            )
        used[local_port] = line.number
        result.append(Destination(line.number, local_port, host, remote_port, address))
    if not result:
        raise VariableError(
            DESTINATION_VAR, f"Must specify {DESTINATION_VAR} (only comments and blank lines)"
        )
    return tuple(result)


def render_destinations(destinations: tuple[Destination, ...]) -> str:
    """The value that parses back to ``destinations`` (each on its own line number)."""
    out: list[str] = []
    for d in destinations:
        out += [""] * (d.line - 1 - len(out))
        out.append(f"{d.local_port} {d.host} {d.remote_port}")
    return "\n".join(out) + "\n"


def _seconds(env: Mapping[str, str], var: str, default: int, minimum: int) -> int:
    text = trim(env.get(var, ""))
    if not text:
        return default
    if not is_decimal(text) or len(text) > 6 or not minimum <= int(text) <= MAX_TTL_SETTING_S:
        raise VariableError(
            var, "must be a whole number of seconds", text=text,
            expected=f"{minimum} to {MAX_TTL_SETTING_S}",
        )  # fmt: skip
    return int(text)


def _interface(env: Mapping[str, str], var: str, default: str) -> str:
    return interface_variable(var, trim(env.get(var, "")) or default)


def parse_settings(env: Mapping[str, str]) -> Settings:
    """Validate every variable the DNS proxy reads (nothing is applied before this passes)."""
    destinations = parse_destinations(env.get(DESTINATION_VAR))
    mode = trim(env.get(MODE_VAR, ""))
    if mode not in ("", "unit-test"):
        raise VariableError(MODE_VAR, "unrecognised mode", text=mode, expected="'unit-test'")
    forwarding_text = trim(env.get(FORWARDING_VAR, "")).lower() or Forwarding.KERNEL.value
    try:
        forwarding = Forwarding(forwarding_text)
    except ValueError:
        raise VariableError(
            FORWARDING_VAR, "unrecognised forwarding", text=forwarding_text,
            expected="'kernel' or 'relay'",
        ) from None  # fmt: skip
    ttl_min = _seconds(env, TTL_MIN_VAR, DEFAULT_TTL_MIN_S, 1)
    ttl_max = _seconds(env, TTL_MAX_VAR, max(DEFAULT_TTL_MAX_S, ttl_min), 1)
    if ttl_max < ttl_min:
        raise VariableError(
            TTL_MAX_VAR, f"must not be below {TTL_MIN_VAR} ({ttl_min})", text=str(ttl_max)
        )
    workers_text = trim(env.get(WORKERS_VAR, "")) or str(PER_CPU)
    try:
        relay_workers = parse_workers(workers_text, per_cpu=True)
    except ValueError as exc:
        raise VariableError(
            WORKERS_VAR, f"must be a number of processes ({exc})", text=workers_text,
            expected=f"{PER_CPU} (one per CPU) to {MAX_RELAY_WORKERS}",
        ) from None  # fmt: skip
    debug_text = env.get(DEBUG_VAR)
    try:
        debug = parse_switch(debug_text)
    except ValueError:
        raise VariableError(
            DEBUG_VAR, "expected on or off", text=debug_text, expected=SWITCH_EXPECTED
        ) from None
    cluster = _interface(env, CLUSTER_IF_VAR, "eth0")
    egress = _interface(env, EGRESS_IF_VAR, "macvlan0")
    if cluster == egress:
        raise VariableError(CLUSTER_IF_VAR, f"must differ from {EGRESS_IF_VAR}", text=cluster)
    return Settings(
        destinations=destinations,
        debug=debug,
        unit_test=mode == "unit-test",
        forwarding=forwarding,
        ttl_min_s=ttl_min,
        ttl_max_s=ttl_max,
        cluster_interface=cluster,
        egress_interface=egress,
        relay_workers=relay_workers,
    )


def render_plan(settings: Settings) -> str:
    """The human-readable plan printed in unit-test mode (no lookups are made)."""
    s = settings
    out = [
        f"dns-proxy plan: forwarding={s.forwarding.value} cluster-interface={s.cluster_interface}"
        f" egress-interface={s.egress_interface} debug={'on' if s.debug else 'off'}"
        f" ttl-min={s.ttl_min_s}s ttl-max={s.ttl_max_s}s",
    ]
    for d in s.destinations:
        kind = "address" if d.address is not None else "name, resolved at run time"
        out.append(f"  line {d.line}: port {d.local_port} -> {d.host}:{d.remote_port} ({kind})")
    return "\n".join(out) + "\n"
