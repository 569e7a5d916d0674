"""The kernel dead man's switch: nftables tables that silence the reserved address on their own.

Owns: the text of the two ``egress_router_fence`` tables (family ``arp``: the kernel's ARP
replies and announcements; family ``ip``: packets leaving with the reserved source, after SNAT)
and of the commands that keep them open. Each table drops what carries the reserved address
unless its ``alive`` set holds that address; the element is added with a kernel timeout that
ends at the instance's renew deadline, and refreshed after every successful lease write.
Must not: run nft (``kernel.nftables.run_text`` does) or decide when to refresh (``loop``).

Why: a whole pod frozen (cgroup freezer, a stalled node) leaves no process to withdraw the
address, and the namespace's kernel keeps answering ARP for it. The element expires in the
kernel at the renew deadline without any process running, and the standby cannot take the
lease before ``renew deadline + withdraw budget + margin`` (``settings``), so the frozen
instance's address is silent on the wire before the new holder announces it.
"""

from __future__ import annotations

import ipaddress
import math

TABLE = "egress_router_fence"
SET = "alive"
FAMILIES = ("arp", "ip")
MAX_TIMEOUT_MS = 60_000  # the longest renew deadline settings allow


def tables(address: ipaddress.IPv4Address) -> str:
    """Both tables, replaced atomically (one transaction), with an empty ``alive`` set."""
    out: list[str] = []
    for family in FAMILIES:
        out += [f"add table {family} {TABLE}", f"delete table {family} {TABLE}"]
    out.append(
        f"table arp {TABLE} {{\n"
        f"  set {SET} {{ type ipv4_addr; flags timeout; }}\n"
        "  chain out {\n"
        "    type filter hook output priority 0; policy accept;\n"
        f"    arp saddr ip {address} arp saddr ip != @{SET} counter drop\n"
        "  }\n"
        "}"
    )
    out.append(
        f"table ip {TABLE} {{\n"
        f"  set {SET} {{ type ipv4_addr; flags timeout; }}\n"
        "  chain post {\n"
        # after source NAT (priority 100): the packets the router forwards carry the reserved
        # source by now, as do the ones it sends itself
        "    type filter hook postrouting priority 200; policy accept;\n"
        f"    ip saddr {address} ip saddr != @{SET} counter drop\n"
        "  }\n"
        "}"
    )
    return "\n".join(out) + "\n"


def open_until(address: ipaddress.IPv4Address, remaining_s: float) -> str | None:
    """Keep the address audible for ``remaining_s`` more seconds (rounded down to whole
    milliseconds, so the kernel never lets it speak past the deadline); ``None`` when nothing
    remains (the caller must withdraw instead)."""
    ms = min(MAX_TIMEOUT_MS, math.floor(remaining_s * 1000))
    if ms < 1:
        return None
    commands = []
    for family in FAMILIES:
        commands.append(f"flush set {family} {TABLE} {SET}")
        commands.append(f"add element {family} {TABLE} {SET} {{ {address} timeout {ms}ms }}")
    return "\n".join(commands) + "\n"


def silence() -> str:
    """Close the switch now (before a withdrawal)."""
    return "".join(f"flush set {family} {TABLE} {SET}\n" for family in FAMILIES)


def remove() -> str:
    """Both tables gone (a clean stop)."""
    out = []
    for family in FAMILIES:
        out += [f"add table {family} {TABLE}", f"delete table {family} {TABLE}"]
    return "\n".join(out) + "\n"
