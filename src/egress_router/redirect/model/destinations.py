"""The ``EGRESS_DESTINATION`` grammar of the redirect router, parsed into frozen values.

Owns: what a destination line means (port rule, port rule with remote port, fallback), the
order rules (fallback last), port/protocol/address validation and local-port uniqueness.
Must not: know about interfaces, nftables or netlink (``redirect.model.rules`` turns the parsed
value into a ruleset), or do any I/O.

Grammar, one rule per meaningful line (``common.lines``: blank lines and ``#`` comments ignored,
CRLF accepted, fields separated by spaces or tabs):

    <port> <tcp|udp> <ip>                  local port -> same port on <ip>
    <port> <tcp|udp> <ip> <remote_port>    local port -> <remote_port> on <ip>
    <ip>                                   fallback: everything else goes to <ip> (last line only)

Differences from the reference script, all on the side of rejecting less valid input or
catching more invalid input: octets are range-checked (0-255), ports are decimal (``080`` is
80, never octal), the protocol is case-insensitive, and the same local port may be used once
for TCP and once for UDP (the kernel keeps the two apart; the reference compared the port text
only). Loopback, multicast, unspecified and broadcast addresses are refused as destinations.

IPv6 destinations are read only where the caller allows them (``families``: the CNI grammar;
``EGRESS_DESTINATION`` stays IPv4 as in the reference image). They are redirected by their own
``ip6`` table, so a local port may be used once per protocol *and family*. Refused besides the
above: link-local addresses (a DNAT target has no zone) and every IPv6 spelling of an IPv4 host
(``::ffff:203.0.113.5``; ``common.values.ipv4_alias``), which must be written as IPv4.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from egress_router.common.lines import Line, meaningful_lines
from egress_router.common.values import (
    IPAddress,
    ipv4_alias,
    is_decimal,
    parse_ipv4,
    parse_ipv6,
    parse_port,
    special_kind,
    trim,
)
from egress_router.errors import VariableError

VARIABLE = "EGRESS_DESTINATION"
LINE_FORMS = "'<port> tcp|udp <ip> [<remote_port>]' or a fallback '<ip>' as the last line"
PORT_RANGE = "Invalid port: {port}, must be in the range 1 to 65535"


class Protocol(StrEnum):
    """Transport protocols a port rule may name."""

    TCP = "tcp"
    UDP = "udp"


class ExtraProtocol(StrEnum):
    """Protocols only some grammars allow (the OCP 4 CNI grammar adds SCTP); see ``protocols``."""

    SCTP = "sctp"


AnyProtocol = Protocol | ExtraProtocol

#: The protocols of the OCP 3 ``EGRESS_DESTINATION`` grammar (the default of the parser).
OCP3_PROTOCOLS: frozenset[AnyProtocol] = frozenset({Protocol.TCP, Protocol.UDP})
#: The protocols of the OCP 4 egress-router CNI grammar.
CNI_PROTOCOLS: frozenset[AnyProtocol] = frozenset({*OCP3_PROTOCOLS, ExtraProtocol.SCTP})
_ORDER: tuple[AnyProtocol, ...] = (Protocol.TCP, Protocol.UDP, ExtraProtocol.SCTP)


@dataclass(frozen=True)
class PortRule:
    """``port``/``protocol`` arriving on the cluster side goes to ``address``:``remote_port``."""

    line: int
    port: int
    protocol: AnyProtocol
    address: IPAddress
    remote_port: int


@dataclass(frozen=True)
class Destination:
    """A parsed ``EGRESS_DESTINATION``: port rules in input order and an optional fallback."""

    rules: tuple[PortRule, ...]
    fallback: IPAddress | None = None

    def by_protocol(self, protocol: AnyProtocol) -> tuple[PortRule, ...]:
        return tuple(rule for rule in self.rules if rule.protocol is protocol)

    def of_version(self, version: int) -> Destination:
        """The rules (and fallback) of one address family: what its table redirects."""
        fallback = self.fallback if self.fallback and self.fallback.version == version else None
        rules = tuple(rule for rule in self.rules if rule.address.version == version)
        return Destination(rules=rules, fallback=fallback)

    @property
    def versions(self) -> frozenset[int]:
        """The address families the rules and the fallback send to."""
        found = {rule.address.version for rule in self.rules}
        return frozenset(found | ({self.fallback.version} if self.fallback else set()))


def _invalid(line: Line, reason: str, variable: str) -> VariableError:
    return VariableError(
        variable,
        f"value '{line.text}' is invalid: {reason}",
        line=line.number,
        expected=LINE_FORMS,
    )


def unfit_destination(address: IPAddress) -> str | None:
    """Why ``address`` cannot be a DNAT target (its ``common.values.special_kind``), or None.
    An IPv4 link-local address is routable and allowed; an IPv6 one is not (no zone)."""
    kind = special_kind(address)
    return None if kind == "link-local" and address.version == 4 else kind


IPV4_ONLY = frozenset({4})
BOTH_FAMILIES = frozenset({4, 6})


def _address(
    text: str, line: Line, variable: str, families: frozenset[int] = IPV4_ONLY
) -> IPAddress:
    address: IPAddress
    if ":" in text and 6 in families:
        try:
            address = parse_ipv6(text)
        except ValueError as exc:
            raise _invalid(line, f"'{text}' is not an IP address ({exc})", variable) from None
        alias = ipv4_alias(address)
        if alias is not None:
            reason = f"{text} is the IPv4 address {alias.ipv4} ({alias.kind.value}): write it so"
            raise _invalid(line, reason, variable)
    else:
        try:
            address = parse_ipv4(text)
        except ValueError as exc:
            what = "an IP address" if 6 in families else "an IPv4 address"
            raise _invalid(line, f"'{text}' is not {what} ({exc})", variable) from None
    kind = unfit_destination(address)
    if kind == "link-local":
        raise _invalid(line, f"{address} cannot be a destination (link-local)", variable)
    if kind is not None:
        reason = f"{address} cannot be a destination (loopback, multicast or broadcast)"
        raise _invalid(line, reason, variable)
    return address


def _port(text: str, line: Line, variable: str, what: str) -> int:
    try:
        return parse_port(text)
    except ValueError:
        if is_decimal(text):
            raise VariableError(
                variable,
                PORT_RANGE.format(port=text) + f" ({what} in '{line.text}')",
                line=line.number,
            ) from None
        raise _invalid(line, f"{what} '{text}' is not a number", variable) from None


def _protocol(
    text: str, line: Line, variable: str, protocols: frozenset[AnyProtocol] = OCP3_PROTOCOLS
) -> AnyProtocol:
    allowed = [p for p in _ORDER if p in protocols]
    for protocol in allowed:
        if text.lower() == protocol.value:
            return protocol
    names = ", ".join(p.value for p in allowed[:-1]) + f" or {allowed[-1].value}"
    raise _invalid(line, f"protocol '{text}' must be {names}", variable)


def _port_rule(
    line: Line,
    variable: str,
    protocols: frozenset[AnyProtocol] = OCP3_PROTOCOLS,
    families: frozenset[int] = IPV4_ONLY,
) -> PortRule:
    port_text, proto_text, ip_text, *rest = line.fields
    remote_text = rest[0] if rest else None
    protocol = _protocol(proto_text, line, variable, protocols)
    address = _address(ip_text, line, variable, families)
    if remote_text is not None:
        remote = _port(remote_text, line, variable, "remote port")
    port = _port(port_text, line, variable, "local port")
    return PortRule(
        line=line.number,
        port=port,
        protocol=protocol,
        address=address,
        remote_port=port if remote_text is None else remote,
    )


def parse_destination(
    value: str | None,
    *,
    variable: str = VARIABLE,
    protocols: frozenset[AnyProtocol] = OCP3_PROTOCOLS,
    families: frozenset[int] = IPV4_ONLY,
) -> Destination:
    """Parse the whole value, or raise ``VariableError`` for the first bad line.

    ``protocols`` widens the accepted protocols (the CNI grammar adds ``sctp``); ``families``
    the address families (the CNI grammar adds IPv6).
    """
    if value is None or not trim(value):
        raise VariableError(variable, "unspecified", expected=LINE_FORMS)
    rules: list[PortRule] = []
    seen: dict[tuple[int, AnyProtocol, int], int] = {}
    fallback: IPAddress | None = None
    fallback_line = 0
    for line in meaningful_lines(value, variable):
        if fallback is not None:
            raise VariableError(
                variable,
                f"fallback IP must be the last line (fallback on line {fallback_line}, "
                f"then '{line.text}')",
                line=line.number,
            )
        if len(line.fields) == 1:
            fallback = _address(line.fields[0], line, variable, families)
            fallback_line = line.number
            continue
        if len(line.fields) not in (3, 4):
            raise _invalid(line, f"{len(line.fields)} fields", variable)
        rule = _port_rule(line, variable, protocols, families)
        key = (rule.port, rule.protocol, rule.address.version)
        if key in seen:
            raise VariableError(
                variable,
                f"localport {rule.port} is already used, must be unique for each destination "
                f"({rule.protocol} {rule.port} first used on line {seen[key]})",
                line=line.number,
            )
        seen[key] = line.number
        rules.append(rule)
    return Destination(rules=tuple(rules), fallback=fallback)


def render_destination(destination: Destination) -> str:
    """The value that parses back to ``destination``: each rule on its own line number (blank
    lines in between, so line numbers in errors and plans stay the same), then the fallback."""
    out: list[str] = []
    for rule in destination.rules:
        out += [""] * (rule.line - 1 - len(out))
        text = f"{rule.port} {rule.protocol.value} {rule.address}"
        out.append(text if rule.remote_port == rule.port else f"{text} {rule.remote_port}")
    if destination.fallback is not None:
        out.append(str(destination.fallback))
    if not out:
        return "# no rules\n"  # a value of comments only parses to no rules; empty does not
    return "\n".join(out) + "\n"
