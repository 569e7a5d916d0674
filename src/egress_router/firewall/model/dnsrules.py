"""How DNS answers feed dnsName rules: TTL clamps, retry back-off, reading a response.

Owns: the refresh schedule of a polled name (TTL clamped to a floor and a ceiling; failures
retried quickly a few times, then with doubling delays up to a cap, last good addresses kept
meanwhile) and matching the names of a response's chain to the policies' dnsName patterns.
Must not: send queries or sleep (the agent does, from these decisions).

Defaults (notes/egress-firewall.md §7.3): TTL floor 5 s (zero-TTL records must not flood the
resolver), ceiling 30 min, learned addresses kept 5 s past their TTL (a client that just got
the answer may connect at the last moment), retries every 5 s ten times, then doubling up to
2 min. A name is always retried, also when its first lookup failed.

Reading DNS responses (the CNAME chain of one response) is in ``runtime.resolver``, the one
dnspython adapter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from egress_router.firewall.model.decide import name_matches


@dataclass(frozen=True)
class DnsSettings:
    """Timing of DNS-named rules (seconds)."""

    ttl_floor: float = 5.0
    ttl_ceiling: float = 1800.0
    grace: float = 5.0
    retry_first: float = 5.0
    retry_steady_count: int = 10
    retry_max: float = 120.0

    def refresh_after(self, ttl: float) -> float:
        """Seconds until a name answered with ``ttl`` is looked up again."""
        return min(max(float(ttl), self.ttl_floor), self.ttl_ceiling)

    def lifetime(self, ttl: float) -> float:
        """How long an address learned with ``ttl`` stays in the set."""
        return self.refresh_after(ttl) + self.grace

    def retry_after(self, failures: int) -> float:
        """Delay before the next try after ``failures`` consecutive failures (>= 1)."""
        extra = max(failures - self.retry_steady_count, 0)
        return min(self.retry_first * (2.0 ** min(extra, 30)), self.retry_max)


def matching(patterns: Iterable[str], names: Iterable[str]) -> list[str]:
    """The patterns (dnsName values) that any name of the chain matches."""
    names = list(names)
    return [p for p in dict.fromkeys(patterns) if any(name_matches(p, n) for n in names)]
