"""``ADDR:PORT``: the one reading of an IP address with a port (listen and upstream settings).

Owns: splitting ``HOST:PORT`` / ``[V6]:PORT`` (``split_host_port``, also used for the HTTP
CONNECT authority, whose host may be a name) and parsing an endpoint whose host is an IP
address (``parse_endpoint``: ``EGRESS_*_METRICS``, ``EGRESS_ROUTER_HEALTH_PORT``,
``EGRESS_ROUTER_FAILOVER_METRICS``, ``firewall run --dns-listen/--dns-upstream``).

An IPv6 address with a port is written in brackets (``[2001:db8::1]:9100``): without them
``2001:db8::1:9100`` is itself a valid address, and guessing where the port starts would
pick the wrong one. Unbracketed, a text with more than one colon is an IPv6 address without
a port. Addresses are ASCII (``common.values``: dotted quads, no zone ids); ports are ASCII
digits 1..65535.
Must not: know which variable the text came from (callers wrap ``ValueError``), normalise the
address (callers that must, do: ``common.values.normalize_address``), or resolve names.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from egress_router.common.values import (
    IPAddress,
    is_decimal,
    normalize_address,
    parse_ip,
    parse_port,
    trim,
)

_EXAMPLE = "198.18.0.2:9100 or [2001:db8::2]:9100"


@dataclass(frozen=True)
class Endpoint:
    """An IP address and a port."""

    address: IPAddress
    port: int

    @property
    def host(self) -> str:
        """The address as text, without brackets (what ``bind`` and ``connect`` take)."""
        return str(self.address)

    def __str__(self) -> str:
        if isinstance(self.address, ipaddress.IPv6Address):
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"


def split_host_port(text: str) -> tuple[str, str | None]:
    """The host (brackets removed) and the port text, None when there is no port.

    ``[V6]:PORT`` and ``[V6]``; ``HOST:PORT`` with exactly one colon; otherwise the whole text
    is the host. ``ValueError`` for brackets out of place.
    """
    if text.startswith("["):
        host, close, rest = text[1:].partition("]")
        if not close:
            raise ValueError("a '[' without its ']'")
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError("expected ':PORT' after ']'")
        return host, rest[1:]
    if "[" in text or "]" in text:
        raise ValueError(f"brackets go around an IPv6 address only, e.g. {_EXAMPLE}")
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, port
    return text, None


def parse_endpoint(
    text: str, *, default_port: int | None = None, default_host: str | None = None
) -> Endpoint:
    """``ADDR:PORT`` or ``[V6]:PORT``; ``ValueError`` with the reason.

    ``default_port``: the port when none is written (``ADDR``, ``[V6]`` or a bare IPv6
    address); None: a port is required. ``default_host``: the address of a bare ``PORT``;
    None: an address is required.
    """
    if default_host is not None and is_decimal(text):
        return Endpoint(ipaddress.ip_address(default_host), parse_port(text))
    bracketed = text.startswith("[")
    host, port_text = split_host_port(text)
    if port_text is None and default_port is None:
        hint = " (IPv6 in brackets)" if ":" in host else ""
        raise ValueError(f"expected ADDR:PORT{hint}, e.g. {_EXAMPLE}")
    if not host:
        raise ValueError(f"expected ADDR:PORT, e.g. {_EXAMPLE}")
    if bracketed and ":" not in host:
        raise ValueError("brackets go around an IPv6 address only")
    address: IPAddress = parse_ip(host)
    if port_text is not None:
        return Endpoint(address, parse_port(port_text))
    return Endpoint(address, default_port or 0)  # default_port is set: checked above


HEALTH_VARIABLE = "EGRESS_ROUTER_HEALTH_PORT"


def parse_health(text: str | None) -> tuple[str, int] | None:
    """``EGRESS_ROUTER_HEALTH_PORT``: ``PORT`` (every IPv4 address) or ``ADDR:PORT``; unset,
    empty or ``off``: None. The address is normalised (``[::ffff:127.0.0.1]`` binds
    127.0.0.1). ``ValueError`` with the reason."""
    value = trim(text or "")
    if not value or value.lower() == "off":
        return None
    endpoint = parse_endpoint(value, default_host="0.0.0.0")
    return str(normalize_address(endpoint.address)), endpoint.port
