"""Per-namespace sysctls (``/proc/sys/net/...``): the only module that writes them.

Owns: reading and writing network sysctls of the caller's network namespace.
Must not: touch non-network sysctls (those are not namespaced and would change the host).
"""

from __future__ import annotations

from pathlib import Path

from egress_router.errors import DataplaneError

_ROOT = Path("/proc/sys")


_PER_INTERFACE = ("net.ipv4.conf.", "net.ipv6.conf.", "net.ipv4.neigh.", "net.ipv6.neigh.")


def _path(key: str) -> Path:
    if not key.startswith("net."):
        raise DataplaneError(f"refusing to touch non-network sysctl {key}")
    for prefix in _PER_INTERFACE:
        if key.startswith(prefix):  # an interface name may hold dots (``eth0.100``): kept
            interface, _, leaf = key[len(prefix) :].rpartition(".")
            if interface and leaf and "/" not in interface:
                return _ROOT / prefix.replace(".", "/") / interface / leaf
    return _ROOT / key.replace(".", "/")


def read(key: str) -> str:
    try:
        return _path(key).read_text().strip()
    except OSError as exc:
        raise DataplaneError(f"cannot read sysctl {key}: {exc}") from exc


def write(key: str, value: str) -> bool:
    """Set ``key`` to ``value``; returns True when it changed."""
    if read(key) == value:
        return False
    try:
        _path(key).write_text(value)
    except OSError as exc:
        raise DataplaneError(f"cannot set sysctl {key}={value}: {exc}") from exc
    return True
