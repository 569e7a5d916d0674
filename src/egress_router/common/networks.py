"""The one CIDR parser: ``ADDRESS[/PREFIX]``, IPv4 or IPv6, host bits as the caller decides.

Owns: reading an address with an optional (or required) prefix length in ASCII digits, the
three host-bit policies, and which IPv6 alias forms are read as the IPv4 network they stand for
(``::ffff:203.0.113.0/120`` is ``203.0.113.0/24``; ``common.values.normalize_network``):

    HostBits.REJECT   1.2.3.4/24 is an error ("did you mean 1.2.3.0/24?")
                      EGRESS_HTTP_PROXY_DESTINATION: a typo must not widen an allow rule
    HostBits.CLEAR    1.2.3.4/24 is 1.2.3.0/24
                      EgressNetworkPolicy / EgressFirewall cidrSelector, firewall --pods and
                      exempt networks, as the references' parsers read them
    HostBits.KEEP     1.2.3.4/24 is the address 1.2.3.4 with the prefix 24
                      CNI ip.destinations, where a mask is tolerated and dropped

The result is an ``ipaddress`` interface: ``.network`` is the network (host bits cleared,
``REJECT``/``CLEAR`` never return others), ``.ip`` the address as written (``KEEP``).
Must not: know which variable or field the text came from. Errors are ``CidrError``, a
``ValueError`` that also says which part was wrong, so a caller can word its own message.
"""

from __future__ import annotations

import enum
import ipaddress

from egress_router.common.values import (
    AliasKind,
    IPAddress,
    IPNetwork,
    normalize_network,
    parse_ipv4,
    parse_ipv6,
    parse_prefixlen,
)

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
ALL_ALIASES = frozenset(AliasKind)
NO_ALIASES: frozenset[AliasKind] = frozenset()
_LOW32 = 0xFFFF_FFFF


class HostBits(enum.StrEnum):
    """What an address with bits set beyond its prefix length means (see the module text)."""

    REJECT = "reject"
    CLEAR = "clear"
    KEEP = "keep"


class CidrPart(enum.StrEnum):
    """Which part of the text a ``CidrError`` is about."""

    ADDRESS = "address"
    FAMILY = "family"  # an IPv6 address where only IPv4 is allowed
    PREFIX = "prefix"  # missing where required, or not 0..32 / 0..128
    HOST_BITS = "host bits"


class CidrError(ValueError):
    """A text that is not a CIDR; ``part`` says which part, ``str()`` what was expected."""

    def __init__(self, part: CidrPart, message: str) -> None:
        super().__init__(message)
        self.part = part


def _address(text: str, ipv6: bool) -> IPAddress:
    if ":" not in text:
        try:
            return parse_ipv4(text)
        except ValueError as exc:
            raise CidrError(CidrPart.ADDRESS, str(exc)) from None
    if not ipv6:
        raise CidrError(CidrPart.FAMILY, "IPv6 is not allowed here")
    if "[" in text or "]" in text:
        raise CidrError(CidrPart.ADDRESS, "write IPv6 addresses without brackets")
    try:
        return parse_ipv6(text)  # refuses a zone id (%eth0) with its own message
    except ValueError as exc:
        reason = str(exc) if "%" in text else f"{exc} (ports and URLs are not allowed)"
        raise CidrError(CidrPart.ADDRESS, reason) from None


def parse_cidr(
    text: str,
    *,
    host_bits: HostBits,
    prefix_required: bool = False,
    ipv6: bool = True,
    unalias: frozenset[AliasKind] = NO_ALIASES,
) -> IPInterface:
    """``ADDRESS`` (a host: /32 or /128) or ``ADDRESS/PREFIX``; ``CidrError`` otherwise.

    ``prefix_required``: a bare address is an error. ``ipv6``: False refuses IPv6 (part
    ``FAMILY``). ``unalias``: the IPv6 alias forms read as the IPv4 network they stand for.
    """
    address_text, slash, prefix_text = text.partition("/")
    for part, part_text in ((CidrPart.ADDRESS, address_text), (CidrPart.PREFIX, prefix_text)):
        if not part_text.isascii():  # ١٩٨ or ² would pass a bare isdigit()
            raise CidrError(part, "addresses are written in ASCII digits")
    if prefix_required and not slash:
        raise CidrError(CidrPart.PREFIX, "must be a CIDR with a prefix length, e.g. 1.2.3.0/24")
    address = _address(address_text, ipv6)
    prefix: int = address.max_prefixlen
    if slash:
        try:
            prefix = parse_prefixlen(prefix_text, address.max_prefixlen)
        except ValueError as exc:
            raise CidrError(CidrPart.PREFIX, str(exc)) from None
    # Built from integers, by family: given an address object, ``ipaddress`` formats it as
    # text and parses that again (five formats and four parses per CIDR), which made an
    # 8,000-rule policy take seconds to read.
    v4 = address.version == 4
    network_type = ipaddress.IPv4Network if v4 else ipaddress.IPv6Network
    network: IPNetwork = network_type((int(address), prefix), strict=False)
    if host_bits is HostBits.REJECT and network.network_address != address:
        raise CidrError(CidrPart.HOST_BITS, f"host bits set (did you mean {network}?)")
    unaliased = normalize_network(network, unalias)
    if unaliased is not network:  # the IPv4 network an alias /96 stands for
        address, network = ipaddress.IPv4Address(int(address) & _LOW32), unaliased
    kept = address if host_bits is HostBits.KEEP else network.network_address
    interface_type = ipaddress.IPv4Interface if kept.version == 4 else ipaddress.IPv6Interface
    return interface_type((int(kept), network.prefixlen))
