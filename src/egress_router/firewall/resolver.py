"""DNS for the egress firewall agent: polling a name (A and AAAA) and reading responses.

Owns: the dnspython calls of the firewall: ``lookup`` (both families, TCP on truncation,
5 s per query, the lowest TTL of the chain) and ``read_answer`` (the CNAME chain and the
addresses one response gives for its question, used by the DNS proxy).
Must not: decide schedules or touch the kernel (``firewall.model.dnsrules`` and ``agent`` do).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver

from egress_router.common.values import unmap_address
from egress_router.errors import ResolveError
from egress_router.firewall.model.decide import Address

QUERY_TIMEOUT_S = 5.0  # per query, as the references use


@dataclass(frozen=True)
class Answer:
    """The names in a response's chain and the addresses with their TTLs (seconds)."""

    names: tuple[str, ...]  # the question name, then every CNAME target, normalised
    addresses: tuple[tuple[Address, int], ...]


def _norm(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


def read_answer(message: dns.message.Message) -> Answer | None:
    """The chain and addresses of a response to an A or AAAA question (None for others)."""
    if not message.question:
        return None
    question = message.question[0]
    if question.rdtype not in (dns.rdatatype.A, dns.rdatatype.AAAA):
        return None
    current = question.name
    names = [_norm(current)]
    ttl = 2**31
    seen = {current}
    addresses: list[tuple[Address, int]] = []
    for _ in range(16):  # bound the chain: a loop of CNAMEs must not spin
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
    return Answer(tuple(names), tuple(addresses))


class Resolver:
    """Looks names up through ``nameservers`` (ADDR or ADDR:PORT) or the system resolv.conf."""

    def __init__(self, nameservers: list[tuple[str, int]] | None = None) -> None:
        if nameservers:
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = [a for a, _ in nameservers]
            self._resolver.port = nameservers[0][1]
        else:
            self._resolver = dns.asyncresolver.Resolver()
        self._resolver.timeout = QUERY_TIMEOUT_S
        self._resolver.lifetime = QUERY_TIMEOUT_S * 2
        self.budget = self._resolver.lifetime  # the longest one lookup can take, seconds
        self._resolver.cache = None

    async def _family(self, name: str, rdtype: str) -> tuple[list[Address], float | None, str]:
        try:
            answer = await self._resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NoAnswer:
            return [], None, ""
        except (dns.exception.DNSException, OSError) as exc:
            return [], None, type(exc).__name__ if not str(exc) else " ".join(str(exc).split())
        ttl = max(answer.expiration - time.time(), 0.0)
        # AAAA ::ffff:a.b.c.d: pods reach a.b.c.d over IPv4, so the IPv4 set must hold it
        return [unmap_address(ipaddress.ip_address(r.address)) for r in answer], ttl, ""

    async def lookup(self, name: str) -> tuple[list[Address], float]:
        """Addresses of ``name`` (A and AAAA) and the lowest TTL; ResolveError if none."""
        results = await asyncio.gather(self._family(name, "A"), self._family(name, "AAAA"))
        addresses = [a for r in results for a in r[0]]
        ttls = [r[1] for r in results if r[1] is not None]
        if not addresses:
            errors = [r[2] for r in results if r[2]]
            raise ResolveError(name, errors[0] if errors else "no A or AAAA records")
        return addresses, min(ttls) if ttls else 0.0
