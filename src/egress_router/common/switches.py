"""On/off variables and worker-process counts: one reading for every variable of each kind.

Owns: what an on/off value means (``EGRESS_ROUTER_DEBUG``, ``EGRESS_DNS_PROXY_DEBUG``,
``EGRESS_HTTP_PROXY_ACCESS_LOG``, ``EGRESS_HTTP_PROXY_SPLICE``) and what a worker count may
be (``EGRESS_HTTP_PROXY_WORKERS``, ``EGRESS_DNS_PROXY_RELAY_WORKERS``).

On/off: surrounding spaces, tabs, CR and LF are trimmed, case does not matter; ``1``, ``true``,
``yes``, ``on`` turn it on; ``0``, ``false``, ``no``, ``off`` turn it off; unset or empty means
the variable's default (off for the debug variables). Anything else is an error: the reference
images turned debug on for *any* non-empty value, so ``EGRESS_ROUTER_DEBUG=false`` meant on;
refusing the unknown spelling says so instead of guessing either way.

Worker counts: ASCII digits, 1 to ``MAX_WORKERS``; where the variable documents it, ``0``
means one per CPU. Counting the CPUs is the runtime's (``runtime.workers.count``).
Must not: read the environment or count CPUs; callers wrap ``ValueError`` into their own
error naming the variable.
"""

from __future__ import annotations

from egress_router.common.values import is_decimal, trim

ON = frozenset({"1", "true", "yes", "on"})
OFF = frozenset({"0", "false", "no", "off"})
#: The "expected ..." text of an on/off variable.
SWITCH_EXPECTED = "on or off (also 1/0, true/false, yes/no)"

# Processes sharing one port. Each costs its memory and descriptors, and a DNS-proxy relay
# worker follows every name itself (queries grow with the count): a typo such as 400 must not
# fork 400 processes.
MAX_WORKERS = 16
PER_CPU = 0  # the count that means "one per CPU", where a variable allows it


def parse_switch(text: str | None, default: bool = False) -> bool:
    """An on/off value; ``default`` when unset or blank; ``ValueError`` for anything else."""
    value = trim(text or "").lower()
    if not value:
        return default
    if value in ON:
        return True
    if value in OFF:
        return False
    raise ValueError("expected on or off")


def parse_workers(text: str, *, per_cpu: bool) -> int:
    """A worker count 1..``MAX_WORKERS`` (and ``0`` = one per CPU when ``per_cpu``).

    ``ValueError`` says what was wrong; ``+4``, ``4.0``, ``١`` and ``1_0`` are not counts.
    """
    value = trim(text)
    if not is_decimal(value):
        raise ValueError("not a whole number of processes")
    count = int(value) if len(value) <= 6 else MAX_WORKERS + 1  # never int() a huge text
    low = PER_CPU if per_cpu else 1
    if not low <= count <= MAX_WORKERS:
        what = f"{PER_CPU} (one per CPU)" if per_cpu else "1"
        raise ValueError(f"must be {what} to {MAX_WORKERS}")
    return count
