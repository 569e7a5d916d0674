"""New-connection events from the kernel's connection tracking (``conntrack -E``).

Owns: running ``conntrack -E -e NEW -p tcp`` (events) or ``conntrack -L`` (a listing) in the
caller's network namespace and turning its lines into ``Flow`` values (client, the port it
dialled, where NAT sent it).
Must not: decide what to log or filter by configuration (the caller does).

Used by the DNS proxy's kernel path for ``EGRESS_DNS_PROXY_DEBUG``: the kernel forwards the
bytes, and this is how user space still learns about each connection.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from egress_router.errors import DataplaneError

_TUPLE = re.compile(r"src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)")


@dataclass(frozen=True)
class Flow:
    """The original tuple of a new connection and the reply's source (the real destination)."""

    client: str
    client_port: int
    local: str
    local_port: int
    destination: str
    destination_port: int


def parse_event(line: str) -> Flow | None:
    """One ``conntrack -E`` line -> Flow, or None for lines that are not a TCP NEW event."""
    if "[NEW]" not in line:
        return None
    tuples = _TUPLE.findall(line)
    if len(tuples) < 2:
        return None
    (src, dst, sport, dport), (rsrc, _rdst, rsport, _rdport) = tuples[0], tuples[1]
    return Flow(src, int(sport), dst, int(dport), rsrc, int(rsport))


NETLINK_NETFILTER = 12  # the netlink protocol conntrack events come on
SUBSCRIBE_TIMEOUT_S = 10.0  # conntrack starts in milliseconds; slack for a loaded machine


def subscribed(pid: int) -> bool:
    """Whether process ``pid`` holds a netfilter netlink socket joined to an event group.

    Read from ``/proc/PID/net/netlink`` (its namespace's sockets: Eth, Groups and Inode
    columns) and its descriptors: the moment ``conntrack -E`` can no longer miss an event."""
    try:
        held = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        with open(f"/proc/{pid}/net/netlink", encoding="ascii") as table:
            rows = [line.split() for line in table.readlines()[1:]]
    except OSError:
        return False
    return any(
        len(row) >= 10
        and row[1] == str(NETLINK_NETFILTER)
        and int(row[3], 16) != 0
        and f"socket:[{row[9]}]" in held
        for row in rows
    )


def parse_entry(line: str) -> Flow | None:
    """One ``conntrack -L`` line -> Flow (original tuple, reply source), or None."""
    tuples = _TUPLE.findall(line)
    if len(tuples) < 2:
        return None
    (src, dst, sport, dport), (rsrc, _rdst, rsport, _rdport) = tuples[0], tuples[1]
    return Flow(src, int(sport), dst, int(dport), rsrc, int(rsport))


LIST_TIMEOUT_S = 10.0  # a table of a million entries lists in a few seconds
MAX_LISTED = 100_000  # entries read at most (bounds memory on a busy router)


def entries(protocol: str = "tcp") -> list[Flow]:
    """The connections tracked in this namespace now (``conntrack -L``); read-only."""
    binary = shutil.which("conntrack")
    if binary is None:
        raise DataplaneError("conntrack not found: install the conntrack package")
    try:
        proc = subprocess.run(
            [binary, "-L", "-p", protocol],
            capture_output=True,
            text=True,
            timeout=LIST_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataplaneError(f"conntrack -L failed: {exc}") from exc
    if proc.returncode != 0:
        raise DataplaneError(f"conntrack -L failed: {' '.join(proc.stderr.split())[:300]}")
    flows = (parse_entry(line) for line in proc.stdout.splitlines()[:MAX_LISTED])
    return [f for f in flows if f is not None]


async def new_flows(ready: asyncio.Event | None = None) -> AsyncIterator[Flow]:
    """Yield every new TCP connection tracked in this namespace until cancelled.

    ``ready`` is set once ``conntrack -E`` is subscribed (every connection from then on is
    seen), or after ``SUBSCRIBE_TIMEOUT_S`` if that cannot be told."""
    binary = shutil.which("conntrack")
    if binary is None:
        raise DataplaneError("conntrack not found: install the conntrack package")
    argv = [binary, "-E", "-e", "NEW", "-p", "tcp"]
    stdbuf = shutil.which("stdbuf")
    if stdbuf is not None:  # line-buffer its stdout so events arrive as they happen
        argv = [stdbuf, "-oL", *argv]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
    except OSError as exc:
        raise DataplaneError(f"cannot run conntrack: {exc}") from exc
    assert proc.stdout is not None
    try:
        if ready is not None:
            deadline = time.monotonic() + SUBSCRIBE_TIMEOUT_S
            while not subscribed(proc.pid) and time.monotonic() < deadline:
                if proc.returncode is not None:
                    break
                await asyncio.sleep(0.02)
            ready.set()
        while True:
            raw = await proc.stdout.readline()
            if not raw:
                raise DataplaneError(f"conntrack -E exited with status {await proc.wait()}")
            flow = parse_event(raw.decode(errors="replace"))
            if flow is not None:
                yield flow
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5.0)
            except TimeoutError:
                proc.kill()
                await proc.wait()
