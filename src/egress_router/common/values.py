"""Strict parsers for the scalar values that appear in every grammar: addresses, prefixes, ports.

Owns: what an IPv4 address, an IPv6 address, an IPv4 interface (address/prefix), a prefix
length, a port and a DNS name are. Numbers are ASCII digits only (``str.isdigit`` and ``int``
also take ``١٩٨`` or ``²``), an IPv6 address never carries a zone (``fe80::1%eth0``), and a
single-line value is trimmed of spaces, tabs, CR and LF only (``str.strip`` also eats NBSP,
FS/GS/RS/US and NEL, which would then be accepted as part of a valid value). Also which IPv6
addresses are only another spelling of an IPv4 host (``ipv4_alias``), so every decision is
made on the one address a connection would really reach.
Must not: know which variable a value came from; callers wrap ``ValueError`` into our
``VariableError``/``PolicyError`` with the variable, line and text.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass

_DOTTED_QUAD = re.compile(r"\A[0-9]{1,3}(\.[0-9]{1,3}){3}\Z")
_HEX_IPV6 = re.compile(r"\A[0-9A-Fa-f:.]+\Z")
# RFC 1123 labels: letters, digits, hyphens; not starting/ending with a hyphen; <= 63 chars.
_LABEL = re.compile(r"\A(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
MAX_NAME_LENGTH = 253  # RFC 1035 limit on a presentation-format name without the root dot

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AliasKind(enum.StrEnum):
    """How an IPv6 address embeds an IPv4 one (the low 32 bits, in every form below)."""

    MAPPED = "mapped"  # ::ffff:a.b.c.d (RFC 4291 2.5.5.2): a dual-stack socket sends IPv4
    COMPATIBLE = "compatible"  # ::a.b.c.d (RFC 4291 2.5.5.1, deprecated; not :: or ::1)
    TRANSLATED = "translated"  # ::ffff:0:a.b.c.d (RFC 2765 SIIT): a translator reaches IPv4
    NAT64 = "nat64"  # 64:ff9b::a.b.c.d (RFC 6052 well-known prefix): a NAT64 reaches IPv4


# Each alias form is a /96 whose low 32 bits are the IPv4 address.
_ALIAS_PREFIXES = (
    (ipaddress.IPv6Network("::ffff:0:0/96"), AliasKind.MAPPED),
    (ipaddress.IPv6Network("::/96"), AliasKind.COMPATIBLE),
    (ipaddress.IPv6Network("::ffff:0:0:0/96"), AliasKind.TRANSLATED),
    (ipaddress.IPv6Network("64:ff9b::/96"), AliasKind.NAT64),
)
_LOW32 = 0xFFFF_FFFF
# The same prefixes by their upper 96 bits: one dict lookup per address (policies parse
# thousands of addresses; four ``in`` tests each cost ten times as much).
_ALIAS_BY_TOP96 = {int(net.network_address) >> 32: kind for net, kind in _ALIAS_PREFIXES}


@dataclass(frozen=True)
class Alias:
    """An IPv6 spelling of an IPv4 host: the IPv4 address and the form it was written in."""

    ipv4: ipaddress.IPv4Address
    kind: AliasKind


def ipv4_alias(address: IPAddress) -> Alias | None:
    """The IPv4 host an IPv6 address stands for, or None for a plain address.

    ``::`` and ``::1`` are the IPv6 unspecified and loopback addresses, not compatible forms.
    Network-specific NAT64 prefixes (RFC 6052 2.2) are configured per network and cannot be
    known here; only the well-known prefix is recognised.
    """
    if not isinstance(address, ipaddress.IPv6Address):  # a zone (%eth0) changes nothing
        return None
    value = int(address)
    kind = _ALIAS_BY_TOP96.get(value >> 32)
    if kind is None or (kind is AliasKind.COMPATIBLE and value <= 1):
        return None
    return Alias(ipaddress.IPv4Address(value & _LOW32), kind)


def normalize_address(address: IPAddress) -> IPAddress:
    """The address every decision is made on: the IPv4 host for an alias form, else itself."""
    alias = ipv4_alias(address)
    return address if alias is None else alias.ipv4


def unmap_address(address: IPAddress) -> IPAddress:
    """The address a packet really carries: ``::ffff:a.b.c.d`` is sent as IPv4 ``a.b.c.d``.

    For the kernel-level firewall: the other alias forms travel as IPv6 and are matched so.
    """
    alias = ipv4_alias(address)
    return alias.ipv4 if alias is not None and alias.kind is AliasKind.MAPPED else address


def normalize_network(network: IPNetwork, kinds: frozenset[AliasKind] | None = None) -> IPNetwork:
    """An IPv6 network lying wholly inside one alias /96 as the IPv4 network it stands for.

    ``::ffff:203.0.113.0/120`` is ``203.0.113.0/24``. Networks that only overlap an alias
    range (``::/0``, ``64:ff9b::/32``) stay IPv6. ``kinds`` limits the forms converted.
    """
    if not isinstance(network, ipaddress.IPv6Network) or network.prefixlen < 96:
        return network
    alias = ipv4_alias(network.network_address)
    if alias is None or (kinds is not None and alias.kind not in kinds):
        return network
    # (``::/96`` itself starts at ``::``, which is no alias: it contains ``::1`` and stays.)
    return ipaddress.IPv4Network(f"{alias.ipv4}/{network.prefixlen - 96}")


def trim(text: str) -> str:
    """A single-line value without surrounding spaces, tabs, CR or LF (and nothing else)."""
    return text.strip(" \t\r\n")


def is_decimal(text: str) -> bool:
    """True when ``text`` is one or more ASCII digits (``isdigit`` alone accepts ``²``, ``٢``)."""
    return text.isascii() and text.isdigit()


def parse_prefixlen(text: str, maximum: int) -> int:
    """A prefix length 0..``maximum`` in ASCII digits; ``ValueError`` says the range."""
    if not is_decimal(text) or len(text) > 3 or int(text) > maximum:
        raise ValueError(f"the prefix length must be 0-{maximum}")
    return int(text)


def parse_ipv6(text: str) -> ipaddress.IPv6Address:
    """An IPv6 address in ASCII, without brackets, zone (``%eth0``) or prefix."""
    if "%" in text:
        raise ValueError("zone ids such as %eth0 are not allowed in an address")
    if not _HEX_IPV6.match(text):
        raise ValueError("not a valid IPv6 address")
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        raise ValueError("not a valid IPv6 address") from None


def parse_ipv4(text: str) -> ipaddress.IPv4Address:
    """A dotted-quad IPv4 address with every octet in 0..255 (no CIDR, no names)."""
    if not _DOTTED_QUAD.match(text):
        raise ValueError("expected an IPv4 address such as 203.0.113.25")
    a, b, c, d = (int(part) for part in text.split("."))  # ASCII digits: the pattern said so
    if a > 255 or b > 255 or c > 255 or d > 255:
        raise ValueError("IPv4 octets must be 0-255")
    return ipaddress.IPv4Address((a << 24) | (b << 16) | (c << 8) | d)  # leading zeros: decimal


def special_kind(address: IPAddress) -> str | None:
    """What keeps ``address`` from being one host's unicast address (``loopback``,
    ``multicast``, ``unspecified``, ``broadcast``, ``link-local``), or None."""
    if address.is_loopback:
        return "loopback"
    if address.is_multicast:
        return "multicast"
    if address.is_unspecified:
        return "unspecified"
    if address == _BROADCAST:
        return "broadcast"
    if address.is_link_local:
        return "link-local"
    return None


_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def parse_ip(text: str) -> IPAddress:
    """An IPv6 address when the text has a colon (``parse_ipv6``), else an IPv4 one."""
    return parse_ipv6(text) if ":" in text else parse_ipv4(text)


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
    return IPv4Source(address, parse_prefixlen(prefix_text, 32))


def parse_port(text: str) -> int:
    """A decimal port number 1..65535 (leading zeros are read as decimal, never octal)."""
    if not is_decimal(text):
        raise ValueError("a port must be a number from 1 to 65535")
    port = int(text, 10) if len(text) <= 10 else 0  # int() of 5,000 digits raises its own text
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
    return not is_decimal(labels[-1])


_NOT_A_PEER = tuple(
    ipaddress.IPv4Network(n) for n in ("0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4")
)


def is_peer(address: ipaddress.IPv4Address) -> bool:
    """Whether ``address`` can be forwarded to (also applied to every DNS answer)."""
    return not any(address in net for net in _NOT_A_PEER)
