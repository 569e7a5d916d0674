"""DNS lookups through the pod's own resolver configuration: the only module using dnspython's
resolver.

Owns: reading ``/etc/resolv.conf`` (nameservers, search list, ndots, as the pod sees it),
asking for A records without any cache of our own, and turning dnspython's outcomes into
``Answer`` (addresses + TTL; empty = the name has no IPv4 address) or ``ResolveError``.
Must not: decide when to look up again (``common.dns_schedule``) or what to do with the answer.

The resolv.conf is re-read after a failure, so a pod whose DNS configuration was broken at
start recovers without a restart.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from egress_router.errors import ResolveError

RESOLV_CONF = "/etc/resolv.conf"
LOOKUP_TIMEOUT_S = 5.0  # whole lookup, all servers and search domains; then back-off applies
NEGATIVE_TTL_S = 0  # the schedule retries negative answers with back-off, not by their TTL


@dataclass(frozen=True)
class Answer:
    """The IPv4 addresses of a name and the TTL (seconds) to trust them for."""

    addresses: tuple[ipaddress.IPv4Address, ...]
    ttl: int


class Resolver:
    """An A-record resolver over the system configuration (``resolv_conf``)."""

    def __init__(self, resolv_conf: str = RESOLV_CONF, timeout: float = LOOKUP_TIMEOUT_S) -> None:
        self.resolv_conf = resolv_conf
        self.timeout = timeout
        self._resolver: dns.asyncresolver.Resolver | None = None

    def _get(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            try:
                resolver = dns.asyncresolver.Resolver(filename=self.resolv_conf)
            except (OSError, dns.exception.DNSException) as exc:
                raise ResolveError("*", f"no usable {self.resolv_conf}: {exc}") from exc
            resolver.lifetime = self.timeout
            resolver.cache = None  # TTLs are honoured by the caller's schedule, not a cache
            self._resolver = resolver
        return self._resolver

    async def lookup(self, name: str) -> Answer:
        """Resolve ``name`` (search list applies); raise ``ResolveError`` when nobody answered."""
        resolver = self._get()
        try:
            answer = await resolver.resolve(
                name, dns.rdatatype.A, search=True, raise_on_no_answer=False
            )
        except (dns.resolver.NXDOMAIN, dns.resolver.YXDOMAIN):
            return Answer((), NEGATIVE_TTL_S)
        except dns.resolver.NoNameservers as exc:
            self._resolver = None
            raise ResolveError(name, f"no server answered ({_short(exc)})") from exc
        except dns.exception.Timeout as exc:
            self._resolver = None
            raise ResolveError(name, f"timed out after {self.timeout:g}s") from exc
        except dns.exception.DNSException as exc:
            self._resolver = None
            raise ResolveError(name, _short(exc)) from exc
        if answer.rrset is None:
            return Answer((), NEGATIVE_TTL_S)
        addresses = tuple(
            ipaddress.IPv4Address(rdata.address)
            for rdata in answer.rrset
            if rdata.rdtype == dns.rdatatype.A
        )
        ttl = answer.rrset.ttl
        chaining = getattr(answer, "chaining_result", None)
        if chaining is not None:  # through CNAMEs: the shortest TTL on the chain counts
            ttl = min(ttl, int(chaining.minimum_ttl))
        return Answer(addresses, int(ttl))


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
