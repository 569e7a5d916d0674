"""How DNS answers feed dnsName rules: the firewall's refresh timing, matching a response's names.

Owns: the firewall's settings of the shared refresh schedule (``common.dns_schedule``: TTL
clamped to a floor and a ceiling; failures retried quickly a few times, then with doubling
delays up to a cap, last good addresses kept meanwhile) and matching the names of a
response's chain to the policies' dnsName patterns.
Must not: send queries or sleep (the agent does, from these decisions); nor hold a second
copy of the schedule's rules.

Defaults (notes/egress-firewall.md §7.3): TTL floor 5 s (zero-TTL records must not flood the
resolver), ceiling 30 min, learned addresses kept 5 s past their TTL (a client that just got
the answer may connect at the last moment), retries every 5 s ten times, then doubling up to
2 min. A name is always retried, also when its first lookup failed.

Reading DNS responses (the CNAME chain of one response) is in ``runtime.resolver``, the one
dnspython adapter.
"""

from __future__ import annotations

from collections.abc import Iterable

from egress_router.common.dns_schedule import RefreshPolicy
from egress_router.firewall.model.decide import name_matches

RETRY_STEADY_COUNT = 10  # failures retried after --retry-first before the delays double


def dns_settings(
    ttl_floor: float = 5.0,
    ttl_ceiling: float = 1800.0,
    grace: float = 5.0,
    retry_first: float = 5.0,
    retry_max: float = 120.0,
) -> RefreshPolicy:
    """The firewall's timing of DNS-named rules (seconds; ``--ttl-floor``, ``--ttl-ceiling``,
    ``--grace``, ``--retry-first``, ``--retry-max``) as the shared schedule's policy: ten steady
    retries, then doubling; a negative answer is a failure (the last good addresses are kept);
    every answered address counts (the set decides nothing but the destination)."""
    return RefreshPolicy(
        ttl_min_s=ttl_floor,
        ttl_max_s=ttl_ceiling,
        retry_base_s=retry_first,
        retry_cap_s=retry_max,
        retry_steady=RETRY_STEADY_COUNT,
        grace_s=grace,
        believe_negative=False,
        peers_only=False,
    )


def matching(patterns: Iterable[str], names: Iterable[str]) -> list[str]:
    """The patterns (dnsName values) that any name of the chain matches."""
    names = list(names)
    return [p for p in dict.fromkeys(patterns) if any(name_matches(p, n) for n in names)]
