"""Strict parsers for the scalar values that appear in every grammar: addresses, prefixes, ports.

Owns: what an IPv4 address, an IPv4 interface (address/prefix), a port and a DNS name are.
Must not: know which variable a value came from; callers wrap ``ValueError`` into our
``VariableError``/``PolicyError`` with the variable, line and text.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_DOTTED_QUAD = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
# RFC 1123 labels: letters, digits, hyphens; not starting/ending with a hyphen; <= 63 chars.
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
MAX_NAME_LENGTH = 253  # RFC 1035 limit on a presentation-format name without the root dot


def parse_ipv4(text: str) -> ipaddress.IPv4Address:
    """A dotted-quad IPv4 address with every octet in 0..255 (no CIDR, no names)."""
    if not _DOTTED_QUAD.match(text):
        raise ValueError("expected an IPv4 address such as 203.0.113.25")
    octets = [int(part) for part in text.split(".")]
    if any(o > 255 for o in octets):
        raise ValueError("IPv4 octets must be 0-255")
    return ipaddress.IPv4Address(".".join(str(o) for o in octets))


@dataclass(frozen=True)
class IPv4Source:
    """``EGRESS_SOURCE``: the reserved address, and the prefix given with it (None = bare IP)."""

    address: ipaddress.IPv4Address
    prefixlen: int | None

    @property
    def interface(self) -> ipaddress.IPv4Interface:
        """The address to put on the interface: with its prefix, or /32 when none was given."""
        return ipaddress.IPv4Interface(f"{self.address}/{self.prefixlen or 32}")

    def __str__(self) -> str:
        return str(self.address) if self.prefixlen is None else f"{self.address}/{self.prefixlen}"


def parse_ipv4_source(text: str) -> IPv4Source:
    """``A.B.C.D`` or ``A.B.C.D/N`` with N in 0..32."""
    address_text, slash, prefix_text = text.partition("/")
    address = parse_ipv4(address_text)
    if not slash:
        return IPv4Source(address, None)
    if not prefix_text.isdigit() or int(prefix_text) > 32:
        raise ValueError("the prefix length must be 0-32")
    return IPv4Source(address, int(prefix_text))


def parse_port(text: str) -> int:
    """A decimal port number 1..65535 (leading zeros are read as decimal, never octal)."""
    if not text.isdigit() or not text.isascii():
        raise ValueError("a port must be a number from 1 to 65535")
    port = int(text, 10)
    if not 1 <= port <= 65535:
        raise ValueError("a port must be in the range 1 to 65535")
    return port


def normalize_name(text: str) -> str:
    """Lower-case a DNS name and drop one trailing dot (names compare case-insensitively)."""
    return text.lower().removesuffix(".")


def is_dns_name(text: str, *, min_labels: int = 1) -> bool:
    """True when ``text`` is a syntactically valid host name (RFC 1123), trailing dot allowed."""
    name = text.removesuffix(".")
    if not name or len(name) > MAX_NAME_LENGTH:
        return False
    labels = name.split(".")
    if len(labels) < min_labels:
        return False
    if not all(_LABEL.match(label) for label in labels):
        return False
    # An all-numeric last label would make it look like an address (1.2.3.4.5 is not a name).
    return not labels[-1].isdigit()


_NOT_A_PEER = tuple(
    ipaddress.IPv4Network(n) for n in ("0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4")
)


def is_peer(address: ipaddress.IPv4Address) -> bool:
    """Whether ``address`` can be forwarded to (also applied to every DNS answer)."""
    return not any(address in net for net in _NOT_A_PEER)
