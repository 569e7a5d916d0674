"""DNS through dnspython: the one adapter for lookups and for reading the addresses of answers.

Owns: the resolver configuration (the pod's ``/etc/resolv.conf`` with its nameservers, search
list and ndots, or servers given explicitly), asking for A (and, when asked to, AAAA) records
without any cache of our own, reading a response's CNAME chain with its addresses and TTLs
(``read_answer``: the same reader serves lookups and the firewall's DNS server), and turning
dnspython's outcomes into ``Answer`` (addresses + TTL; empty = the name has none: NXDOMAIN or
NODATA) or ``ResolveError`` (nobody gave a usable answer).
Must not: decide when to look up again (``common.dns_schedule``) or what to do with the answer.

The resolver configuration is read again after a failure, so a pod whose DNS configuration was
broken at start recovers without a restart. The only other module that imports dnspython is the
firewall's DNS server, for parsing and answering the messages it forwards.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver

from egress_router.common.values import unmap_address
from egress_router.errors import ResolveError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

RESOLV_CONF = "/etc/resolv.conf"
LOOKUP_TIMEOUT_S = 5.0  # whole lookup, all servers and search domains; then back-off applies
NEGATIVE_TTL_S = 0  # the schedule retries negative answers with back-off, not by their TTL
MAX_CHAIN = 16  # CNAMEs followed within one response: a loop of CNAMEs must not spin
NO_TTL = 2**31  # above any TTL a record can carry (RFC 2181: 31 bits)


@dataclass(frozen=True)
class Answer:
    """The addresses of a name and the TTL (seconds) to trust them for.

    ``addresses`` empty: the name has none of the types asked for, and ``note`` says why.
    """

    addresses: tuple[IPAddress, ...]
    ttl: int
    note: str = ""

    @property
    def ipv4(self) -> tuple[ipaddress.IPv4Address, ...]:
        """The IPv4 addresses only (what an A-record lookup returns)."""
        return tuple(a for a in self.addresses if isinstance(a, ipaddress.IPv4Address))

    def require(self, name: str) -> Answer:
        """This answer, or ``ResolveError`` when it holds no address."""
        if not self.addresses:
            raise ResolveError(name, self.note or "no address")
        return self


@dataclass(frozen=True)
class Chain:
    """What one response says about its question: its chain of names and addresses."""

    names: tuple[str, ...]  # the question name, then every CNAME target, normalised
    addresses: tuple[tuple[IPAddress, int], ...]  # each with the lowest TTL on its chain


def _norm(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


def read_answer(message: dns.message.Message) -> Chain | None:
    """The chain and addresses of a response to an A or AAAA question (None for others).

    An AAAA ``::ffff:a.b.c.d`` is read as ``a.b.c.d``: that is the address packets carry.
    """
    if not message.question:
        return None
    question = message.question[0]
    if question.rdtype not in (dns.rdatatype.A, dns.rdatatype.AAAA):
        return None
    current = question.name
    names = [_norm(current)]
    ttl = NO_TTL
    seen = {current}
    addresses: list[tuple[IPAddress, int]] = []
    for _ in range(MAX_CHAIN):
        for rrset in message.answer:
            if rrset.name == current and rrset.rdtype == question.rdtype:
                for rdata in rrset:
                    address = unmap_address(ipaddress.ip_address(rdata.address))
                    addresses.append((address, min(ttl, rrset.ttl)))
        cname = next(
            (r for r in message.answer if r.name == current and r.rdtype == dns.rdatatype.CNAME),
            None,
        )
        if cname is None or addresses:
            break
        ttl = min(ttl, cname.ttl)
        current = cname[0].target
        if current in seen:
            break
        seen.add(current)
        names.append(_norm(current))
    return Chain(tuple(names), tuple(addresses))


def read_wire(data: bytes) -> Chain | None:
    """``read_answer`` of a response in wire format; ``ResolveError`` if it does not parse."""
    try:
        message = dns.message.from_wire(data)
    except (dns.exception.DNSException, ValueError, EOFError) as exc:
        raise ResolveError("*", f"unreadable response ({_short(exc)})") from exc
    return read_answer(message)


_TYPES = {4: dns.rdatatype.A, 6: dns.rdatatype.AAAA}


class Resolver:
    """Looks names up through ``nameservers`` ((address, port) pairs) or ``resolv_conf``.

    ``families``: 4 asks A records, 6 AAAA, both in parallel when both are given.
    ``search``: whether the search list of the configuration applies.
    ``timeout``: the whole lookup (every server, every search domain), seconds.
    ``query_timeout``: one query to one server (None: dnspython's default).
    """

    def __init__(
        self,
        resolv_conf: str = RESOLV_CONF,
        timeout: float = LOOKUP_TIMEOUT_S,
        *,
        nameservers: Sequence[tuple[str, int]] | None = None,
        families: Sequence[int] = (4,),
        search: bool = True,
        query_timeout: float | None = None,
    ) -> None:
        self.resolv_conf = resolv_conf
        self.timeout = timeout
        self.nameservers = list(nameservers or [])
        self.families = tuple(families)
        self.search = search
        self.query_timeout = query_timeout
        self._resolver: dns.asyncresolver.Resolver | None = None

    @property
    def budget(self) -> float:
        """The longest one lookup can take, seconds."""
        return self.timeout

    def _get(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            try:
                if self.nameservers:
                    resolver = dns.asyncresolver.Resolver(configure=False)
                    resolver.nameservers = [address for address, _ in self.nameservers]
                    resolver.port = self.nameservers[0][1]
                else:
                    resolver = dns.asyncresolver.Resolver(filename=self.resolv_conf)
            except (OSError, ValueError, dns.exception.DNSException) as exc:
                raise ResolveError("*", f"no usable {self.resolv_conf}: {_short(exc)}") from exc
            resolver.lifetime = self.timeout
            if self.query_timeout is not None:
                resolver.timeout = self.query_timeout
            resolver.cache = None  # TTLs are honoured by the caller's schedule, not a cache
            self._resolver = resolver
        return self._resolver

    async def _ask(self, name: str, family: int) -> Answer:
        resolver = self._get()
        try:
            answer = await resolver.resolve(
                name, _TYPES[family], search=self.search, raise_on_no_answer=False
            )
        except (dns.resolver.NXDOMAIN, dns.resolver.YXDOMAIN):
            return Answer((), NEGATIVE_TTL_S, "no such name (NXDOMAIN)")
        except dns.resolver.NoNameservers as exc:
            self._resolver = None
            raise ResolveError(name, f"no server answered ({_short(exc)})") from exc
        except dns.exception.Timeout as exc:
            self._resolver = None
            raise ResolveError(name, f"timed out after {self.timeout:g}s") from exc
        except (dns.exception.DNSException, OSError) as exc:
            self._resolver = None
            raise ResolveError(name, _short(exc)) from exc
        chain = read_answer(answer.response)
        found = chain.addresses if chain is not None else ()
        if not found:
            return Answer((), NEGATIVE_TTL_S, f"no {_TYPES[family].name} record")
        return Answer(tuple(a for a, _ in found), min(ttl for _, ttl in found))

    async def lookup(self, name: str) -> Answer:
        """Resolve ``name`` in every family; raise ``ResolveError`` when nobody answered.

        Families are asked in parallel; the addresses of all of them count, with the lowest TTL.
        A family that failed while another gave addresses is retried with the next lookup.
        """
        if len(self.families) == 1:
            return await self._ask(name, self.families[0])
        results = await asyncio.gather(
            *(self._ask(name, f) for f in self.families), return_exceptions=True
        )
        answers = [r for r in results if isinstance(r, Answer)]
        found = [a for a in answers if a.addresses]
        if found:
            addresses = tuple(address for a in found for address in a.addresses)
            return Answer(addresses, min(a.ttl for a in found))
        for result in results:
            if isinstance(result, BaseException):
                raise result
        if all(a.note == answers[0].note for a in answers):
            return Answer((), NEGATIVE_TTL_S, answers[0].note)
        kinds = " or ".join(_TYPES[f].name for f in self.families)
        return Answer((), NEGATIVE_TTL_S, f"no {kinds} records")


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
