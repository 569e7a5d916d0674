"""The HTTP proxy's destination list (``EGRESS_HTTP_PROXY_DESTINATION``) and its decisions.

Owns: parsing the variable into an ordered, frozen rule table; deciding whether a host name
and the addresses it resolves to may be reached; rendering the table for ``unit-test`` mode.
Must not: resolve names, open sockets or read the environment (the proxy does that and calls
these pure functions).

Grammar (one destination per line; blank lines and ``#`` comments ignored; CRLF accepted):
  * ``192.168.1.1`` / ``192.168.1.0/24`` / ``2001:db8::1`` / ``fe80::/10``: an address rule;
  * ``www.example.com``: an exact host name (case-insensitive, trailing dot ignored);
  * ``*.example.com``: the domain ``example.com`` and every name below it;
  * a leading ``!`` denies instead of allowing (exactly one ``!``, never on ``*``);
  * ``*`` alone, only as the last rule: allow everything that no earlier rule denied.
Without a final ``*`` everything not allowed is denied.

Decision (the same ordered list, read at two levels; see docs/http-proxy.md):
  1. A request for a *name* is matched against the name rules in order; the first match
     decides the name. A deny ends the request.
  2. Every address the name resolves to is matched against the address rules in order; the
     first match decides that address. An address no address rule matches is allowed when the
     name was allowed by a name rule, otherwise the default applies (``*`` allows, none denies).
     Every address must be allowed: a name cannot lead to a denied network (DNS rebinding).
  3. A request for an *IP literal* is decided by step 2 alone (name rules never match it).
  Loopback and unspecified addresses are refused by the default (they are reachable only through
  an explicit address rule), so ``*`` does not open the pod's own services.
  IPv6 spellings of an IPv4 host (``::ffff:a.b.c.d``, ``::a.b.c.d``, ``::ffff:0:a.b.c.d``,
  ``64:ff9b::a.b.c.d``; ``common.values.ipv4_alias``) are decided as that IPv4 host, in rules
  and in requests alike; a rule matching the form as written can only add a denial.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from egress_router.common.lines import meaningful_lines
from egress_router.common.networks import ALL_ALIASES, HostBits, parse_cidr
from egress_router.common.values import (
    AliasKind,
    IPAddress,
    IPNetwork,
    ipv4_alias,
    is_dns_name,
    normalize_address,
    normalize_name,
    trim,
)
from egress_router.errors import VariableError

VARIABLE = "EGRESS_HTTP_PROXY_DESTINATION"
EXPECTED = "an IP address, a CIDR, a host name, *.domain, ! before one of those, or a final *"


class Action(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class Fixed(enum.StrEnum):
    """The metric label of a decision no table rule made (docs/metrics.md). Labels come from
    these ids and from rule numbers, never from message text: rewording a 403 changes no
    metric."""

    NONE = "none"  # nothing was decided (the request failed before the policy)
    DEFAULT = "default"  # no rule matched and the list does not end in *
    LOOPBACK = "loopback"  # loopback and unspecified addresses need an explicit rule
    CONNECT_PORT = "connect-port"  # CONNECT to a port not in EGRESS_HTTP_PROXY_CONNECT_PORTS
    SELF = "self"  # a request that would reach the proxy itself
    OTHER = "other"  # any other answer of ours (and labels past the cap)


class Kind(enum.StrEnum):
    NETWORK = "network"  # an address or CIDR
    HOST = "host"  # one exact host name
    DOMAIN = "domain"  # a domain and all its subdomains
    ANY = "any"  # the final *


@dataclass(frozen=True)
class Rule:
    """One destination line: its rule number (1-based), source line and what it matches."""

    number: int
    line: int
    text: str
    action: Action
    kind: Kind
    name: str | None = None  # normalized host or domain (HOST, DOMAIN)
    network: IPNetwork | None = None  # NETWORK
    fixed: Fixed | None = None  # the defaults' label (they are no line of the table)

    @property
    def label(self) -> str:
        """The metric label: ``rule N: text`` for a table rule, the fixed id of a default."""
        return self.fixed.value if self.fixed is not None else self.describe()

    def describe(self) -> str:
        """``rule 2: !*.example.com``: how logs and 403 bodies name this rule."""
        return f"rule {self.number}: {self.text}"

    def matches_name(self, name: str) -> bool:
        """``name`` must already be normalized (lower case, no trailing dot)."""
        if self.kind is Kind.HOST:
            return name == self.name
        if self.kind is Kind.DOMAIN:
            assert self.name is not None
            return name == self.name or name.endswith("." + self.name)
        return False

    def matches_address(self, address: IPAddress) -> bool:
        return self.network is not None and address in self.network


# The default "rule" when nothing matched: not a line of the list, but it decides like one.
DEFAULT_DENY = Rule(0, 0, "no rule matched and the list does not end in *",
                    Action.DENY, Kind.ANY, fixed=Fixed.DEFAULT)  # fmt: skip
PROTECTED = Rule(0, 0, "loopback and unspecified addresses need an explicit address rule",
                 Action.DENY, Kind.ANY, fixed=Fixed.LOOPBACK)  # fmt: skip


@dataclass(frozen=True)
class Decision:
    """Allowed or not, and the rule that decided (``DEFAULT_DENY``/``PROTECTED`` for defaults)."""

    allowed: bool
    rule: Rule

    def reason(self) -> str:
        verb = "allowed" if self.allowed else "denied"
        if self.rule.number == 0:
            return f"{verb}: {self.rule.text}"
        return f"{verb} by {self.rule.describe()}"


@dataclass(frozen=True)
class RuleTable:
    """The parsed list: ``rules`` in order (the final ``*`` included, as ``wildcard``)."""

    rules: tuple[Rule, ...]

    @property
    def wildcard(self) -> Rule | None:
        last = self.rules[-1] if self.rules else None
        return last if last is not None and last.kind is Kind.ANY else None

    @property
    def name_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.kind in (Kind.HOST, Kind.DOMAIN))

    @property
    def address_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.kind is Kind.NETWORK)

    def decide_name(self, host: str) -> Decision | None:
        """Step 1: the first name rule matching ``host``, or None when no name rule matches."""
        name = normalize_name(host)
        for rule in self.name_rules:
            if rule.matches_name(name):
                return Decision(rule.action is Action.ALLOW, rule)
        return None

    def decide_address(self, address: IPAddress, name_decision: Decision | None = None) -> Decision:
        """Step 2 for one address; ``name_decision`` is step 1's result for a name request.

        An alias form (``::ffff:203.0.113.26``) is decided as the IPv4 host it reaches; a deny
        rule matching the form as written (``!::/0``) denies it as well.
        """
        canonical = normalize_address(address)
        if canonical != address:
            written = self._first_address_rule(address)
            if written is not None and written.action is Action.DENY:
                return Decision(False, written)
            address = canonical
        rule = self._first_address_rule(address)
        if rule is not None:
            return Decision(rule.action is Action.ALLOW, rule)
        if address.is_loopback or address.is_unspecified:
            return Decision(False, PROTECTED)
        if name_decision is not None and name_decision.allowed:
            return name_decision
        if self.wildcard is not None:
            return Decision(True, self.wildcard)
        return Decision(False, DEFAULT_DENY)

    def _first_address_rule(self, address: IPAddress) -> Rule | None:
        for rule in self.address_rules:
            if rule.matches_address(address):
                return rule
        return None

    def decide(self, host: str, addresses: Iterable[IPAddress]) -> Decision:
        """The whole policy for a name and ALL its addresses (first denial wins)."""
        by_name = self.decide_name(host)
        if by_name is not None and not by_name.allowed:
            return by_name
        result: Decision | None = None
        for address in addresses:
            decision = self.decide_address(address, by_name)
            if not decision.allowed:
                return decision
            result = result or decision
        return by_name or result or Decision(False, DEFAULT_DENY)

    def text(self) -> str:
        """The variable's value that parses back to this table (each rule on its line)."""
        out: list[str] = []
        for rule in self.rules:
            out += [""] * (rule.line - 1 - len(out))
            out.append(rule.text)
        return "\n".join(out) + "\n"

    def render(self) -> str:
        """The table printed by ``EGRESS_HTTP_PROXY_MODE=unit-test``."""
        out = [f"{'rule':>4}  {'line':>4}  {'action':<6}  {'kind':<7}  destination"]
        for r in self.rules:
            what = {
                Kind.NETWORK: str(r.network),
                Kind.HOST: str(r.name),
                Kind.DOMAIN: f"{r.name} and its subdomains",
                Kind.ANY: "everything else",
            }[r.kind]
            out.append(
                f"{r.number:>4}  {r.line:>4}  {r.action.value:<6}  {r.kind.value:<7}  {what}"
            )
        default = "allow (final *)" if self.wildcard else "deny (no final *)"
        out.append(f"default: {default}")
        return "\n".join(out) + "\n"


def _network(text: str) -> IPNetwork:
    """An address or CIDR, IPv4 or IPv6, with the prefix range checked and host bits refused
    (a typo must not widen an allow rule); alias forms are the IPv4 network they stand for."""
    return parse_cidr(text, host_bits=HostBits.REJECT, unalias=ALL_ALIASES).network


def _looks_numeric(text: str) -> bool:
    """IPv4-ish (digits and dots only), IPv6-ish (has a colon) or a CIDR: an address rule."""
    return ":" in text or "/" in text or all(c in "0123456789." for c in text)


def parse_rule(text: str, number: int, line: int) -> Rule:
    """One destination (already trimmed, one field); raises ``ValueError`` with the reason."""
    body = text
    action = Action.ALLOW
    if body.startswith("!"):
        action, body = Action.DENY, body[1:]
        if not body:
            raise ValueError("'!' must be followed by a destination")
        if body.startswith("!"):
            raise ValueError("only one '!' is allowed")
        if body == "*":
            raise ValueError("'!*' is not allowed (without a final '*' everything else is denied)")
    if body == "*":
        return Rule(number, line, text, action, Kind.ANY)
    if body.startswith("*."):
        domain = body[2:]
        if not is_dns_name(domain):
            raise ValueError("'*.' must be followed by a domain name")
        return Rule(number, line, text, action, Kind.DOMAIN, name=normalize_name(domain))
    if "*" in body:
        raise ValueError("'*' is only allowed alone or as '*.domain'")
    if _looks_numeric(body):
        return Rule(number, line, text, action, Kind.NETWORK, network=_network(body))
    if is_dns_name(body):
        return Rule(number, line, text, action, Kind.HOST, name=normalize_name(body))
    raise ValueError("not an IP address, CIDR or host name")


def parse_destinations(value: str | None, variable: str = VARIABLE) -> RuleTable:
    """Parse the whole variable; raises ``VariableError`` naming the line and its text."""
    if value is None or not trim(value):
        raise VariableError(variable, "is not set or empty", expected=EXPECTED)
    lines = list(meaningful_lines(value, variable))
    if not lines:
        raise VariableError(variable, "has no destinations (only blank or comment lines)")
    rules: list[Rule] = []
    for index, line in enumerate(lines):
        if len(line.fields) != 1:
            raise VariableError(
                variable, "one destination per line", line=line.number, text=line.text
            )
        try:
            rule = parse_rule(line.text, len(rules) + 1, line.number)
        except ValueError as exc:
            raise VariableError(
                variable, str(exc), line=line.number, text=line.text, expected=EXPECTED
            ) from None
        if rule.kind is Kind.ANY and index != len(lines) - 1:
            raise VariableError(
                variable, "the wildcard '*' must be the last rule", line=line.number, text="*"
            )
        rules.append(rule)
    return RuleTable(tuple(rules))


def connect_address(address: IPAddress) -> IPAddress:
    """The address the proxy dials for a decided one: what the decision was made on.

    ``::ffff:a.b.c.d`` and ``::a.b.c.d`` are dialled as ``a.b.c.d`` (the same host for a mapped
    address; for a compatible one, the host that was decided rather than an IPv6 address the
    routes might send elsewhere). Translator forms (NAT64, SIIT) are dialled as written: only
    the translator knows the way to their IPv4 host.
    """
    alias = ipv4_alias(address)
    if alias is not None and alias.kind in (AliasKind.MAPPED, AliasKind.COMPATIBLE):
        return alias.ipv4
    return address


def loops_to_self(
    addresses: Iterable[IPAddress], port: int, listen: Iterable[IPAddress], listen_port: int
) -> bool:
    """Whether a connection to one of ``addresses``:``port`` would reach the proxy itself."""
    if port != listen_port:
        return False
    own = {normalize_address(a) for a in listen}
    return any(normalize_address(a) in own for a in addresses)
