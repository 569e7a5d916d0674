"""Settings of the HTTP proxy: every knob, its unit, its default and why it is bounded.

Owns: the frozen ``ProxySettings`` value and the parsing of the optional ``EGRESS_HTTP_PROXY_*``
knobs (the command passes flags and environment values here).
Must not: open sockets or read the environment itself.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from egress_router.common.lines import bad_char, describe_char
from egress_router.common.values import parse_port, unmap_address
from egress_router.errors import VariableError
from egress_router.http_proxy.model.rules import RuleTable

# Unset, the proxy runs one worker per CPU it may run on, at most this many (the relay is I/O
# bound beyond that); a set EGRESS_HTTP_PROXY_WORKERS is 1..common.switches.MAX_WORKERS.
DEFAULT_MAX_WORKERS = 4


@dataclass(frozen=True)
class ProxySettings:
    """Everything the proxy needs; durations in seconds, sizes in bytes."""

    rules: RuleTable
    listen: tuple[str, ...]  # addresses to bind (never the unspecified address)
    port: int = 8080  # the reference image's port; clients use http://egress-1:8080/
    workers: int = 1  # processes sharing the port with SO_REUSEPORT
    access_log: bool = True  # one line per request or tunnel on stdout
    connect_ports: frozenset[int] | None = None  # CONNECT target ports allowed; None = all
    # 64 KiB: squid's request_header_max_size default; a larger head is 431. Bounds the memory a
    # client can make us hold before the policy has even been checked.
    max_header_bytes: int = 64 * 1024
    # Per worker. Each client costs two descriptors (client + upstream); the command lowers this
    # to fit RLIMIT_NOFILE. Past it new clients get 503 instead of exhausting descriptors.
    max_connections: int = 10_000
    # A request head must arrive within this time from its first byte (slowloris defence).
    header_timeout: float = 10.0
    # A keep-alive client connection idle between requests is closed after this.
    idle_timeout: float = 60.0
    # An exchange or tunnel with no byte moving in either direction for this long is closed;
    # also bounds the wait for the upstream's response head (504). 15 min as squid's
    # read_timeout: tunnels (TLS, database connections) are often quiet for minutes.
    io_timeout: float = 900.0
    # Resolving and connecting to the upstream must finish within this (504 otherwise).
    connect_timeout: float = 10.0
    # On SIGTERM: stop accepting, let in-flight exchanges finish for at most this long.
    # Below Kubernetes' default 30 s grace period so we exit 0 before SIGKILL.
    shutdown_timeout: float = 20.0
    # Bytes queued towards a slow peer before we stop reading from the other side. Large buffers
    # keep throughput up; the bound keeps memory per connection at a few MiB.
    write_high_water: int = 1024 * 1024
    # CONNECT tunnels relayed by the kernel (splice); off = relayed by the event loop, for
    # sandboxes that forbid splice(2).
    splice: bool = True
    # Serve Prometheus metrics on this (address, port); None = no metrics at all.
    metrics: tuple[str, int] | None = None
    via: str = field(default="1.1 egress-router")


def _checked(value: str, variable: str) -> str:
    """The value trimmed of blanks, or an error for a control or non-ASCII blank character."""
    ch = bad_char(value.strip(" \t\r\n"))
    if ch is not None:
        raise VariableError(variable, f"character {describe_char(ch)} is not allowed", text=value)
    return value.strip(" \t\r\n")


def _items(text: str) -> list[str]:
    """Comma, space or tab separated items (no other blank separates)."""
    return [item for item in re.split(r"[ \t,]+", text) if item]


def parse_connect_ports(value: str, variable: str) -> frozenset[int] | None:
    """``443,8443 10000-10100``: ports and inclusive ranges, comma or space separated."""
    text = _checked(value, variable)
    if not text or text == "*":
        return None
    ports: set[int] = set()
    for item in _items(text):
        low_text, dash, high_text = item.partition("-")
        try:
            low = parse_port(low_text)
            high = parse_port(high_text) if dash else low
        except ValueError as exc:
            raise VariableError(
                variable, str(exc), text=item, expected="443,8443 or 8000-8999"
            ) from None
        if high < low:
            raise VariableError(variable, "range runs backwards", text=item)
        ports.update(range(low, high + 1))
    return frozenset(ports)


def parse_listen(value: str, variable: str) -> tuple[str, ...]:
    """Explicit listen addresses (comma or space separated); the unspecified address is refused."""
    out: list[str] = []
    for item in _items(_checked(value, variable)):
        try:
            if not item.isascii() or "%" in item:
                raise ValueError  # non-ASCII digits, a zone id
            # ::ffff:a.b.c.d binds a.b.c.d: checked and bound as the IPv4 address it is
            address = unmap_address(ipaddress.ip_address(item.strip("[]")))
        except ValueError:
            raise VariableError(variable, "not an IP address", text=item) from None
        if address.is_unspecified:
            raise VariableError(
                variable,
                "refusing to listen on every address (that would include the reserved external "
                "address and make an open proxy)",
                text=item,
            )
        out.append(str(address))
    if not out:
        raise VariableError(variable, "no address given")
    return tuple(out)


def parse_positive(value: str, variable: str, *, integer: bool = False) -> float:
    """A positive number (seconds, bytes or a count), in ASCII digits."""
    try:
        if not value.isascii() or "_" in value:
            raise ValueError  # int()/float() also take "１", "٥" and "1_000"
        number = int(value) if integer else float(value)
    except ValueError:
        raise VariableError(variable, "not a number", text=value) from None
    if not number > 0 or number != number or number == float("inf"):
        raise VariableError(variable, "must be a positive number", text=value)
    return number
