"""Reaching an upstream: resolving, checking EVERY address, connecting within a bound.

Owns: resolving a name through the pod's resolver (getaddrinfo: /etc/resolv.conf, /etc/hosts),
applying the address level of the policy to every address before any connection (only checked
addresses are dialled, so a name cannot lead into a denied network), the resolve+connect
timeout (504) and failures (502), and handing a connected transport (or, for CONNECT, a raw
socket for the kernel splice) to the client.
Must not: parse HTTP or decide policy itself (``http_proxy.model.rules`` via the worker does).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from egress_router.common.values import normalize_address
from egress_router.http_proxy import splice
from egress_router.http_proxy.contracts import ClientSide
from egress_router.http_proxy.model.exchange import Exchange
from egress_router.http_proxy.model.rules import (
    Decision,
    Fixed,
    connect_address,
    loops_to_self,
)
from egress_router.http_proxy.upstream import UpstreamProtocol
from egress_router.runtime import unexpected


async def resolve(loop: asyncio.AbstractEventLoop, host: str, port: int) -> list[str]:
    """Every address of ``host`` (IPv4 first, as the reference preferred), deduplicated."""
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    seen: dict[str, int] = {}
    for family, _, _, _, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), 0 if family == socket.AF_INET else 1)
    return sorted(seen, key=lambda a: seen[a])


def _name(decision: Decision) -> str:
    return decision.rule.describe() if decision.rule.number else decision.rule.text


async def open_upstream(client: ClientSide, ex: Exchange, by_name: Decision | None) -> None:
    """Resolve, check, connect; hands the connected protocol to ``client.adopt`` (a socket to
    ``client.adopt_tunnel`` for a spliced CONNECT), failures to ``client.reject``."""
    worker = client.worker
    target = ex.target
    assert target is not None
    loop = worker.loop
    try:
        async with asyncio.timeout(worker.settings.connect_timeout):
            if target.is_address:
                addresses = [target.host]
            else:
                try:
                    addresses = await resolve(loop, target.host, target.port)
                except (socket.gaierror, UnicodeError) as exc:
                    client.reject(ex, 502, f"cannot resolve {target.host}: {exc}")
                    return
            if not addresses:
                client.reject(ex, 502, f"cannot resolve {target.host}: no address")
                return
            settings = worker.settings
            ips = [ipaddress.ip_address(a) for a in addresses]
            own = [ipaddress.ip_address(a) for a in settings.listen]
            if loops_to_self(ips, target.port, own, settings.port):
                ex.address, ex.rule_id = target.host, Fixed.SELF
                client.reject(ex, 403, "refusing to forward to the proxy itself (a loop)")
                return
            allowed: Decision | None = None
            for address, ip in zip(addresses, ips, strict=True):
                decision = worker.decide_address(address, by_name)
                if not decision.allowed:
                    ex.address, ex.rule = address, _name(decision)
                    ex.rule_id = decision.rule.label
                    canonical = normalize_address(ip)
                    shown = address if canonical == ip else f"{address}, that is {canonical}"
                    where = f" ({target.host} is {shown})" if not target.is_address else ""
                    if target.is_address and canonical != ip:
                        where = f" ({address} is {canonical})"
                    client.reject(ex, 403, decision.reason() + where)
                    return
                allowed = allowed or decision
            assert allowed is not None
            # Dial what was decided (``::ffff:a.b.c.d`` as ``a.b.c.d``), each address once.
            addresses = list(dict.fromkeys(str(connect_address(ip)) for ip in ips))
            deciding = by_name if by_name is not None else allowed
            rule, ex.rule_id = _name(deciding), deciding.rule.label
            error: OSError | None = None
            if ex.is_connect and splice.AVAILABLE and worker.settings.splice:
                for address in addresses:
                    ex.address, ex.rule = address, rule
                    try:
                        sock = await _dial(loop, address, target.port)
                    except OSError as exc:
                        error = exc
                        continue
                    client.adopt_tunnel(sock, ex, address, rule)
                    return
                addresses = []
            for address in addresses:
                ex.address, ex.rule = address, rule
                try:
                    _, protocol = await loop.create_connection(
                        lambda: UpstreamProtocol(client),
                        address,
                        target.port,
                    )
                except OSError as exc:
                    error = exc
                    continue
                client.adopt(protocol, ex, address, rule)
                return
            client.reject(ex, 502, f"cannot connect to {target.host} port {target.port}: {error}")
    except TimeoutError:
        client.reject(ex, 504, f"no connection to {target.host} port {target.port} in time")
    except Exception as exc:  # a bug must cost one answer, never a silent hang
        unexpected.report("http-proxy", f"the dial to {target.host} port {target.port}", exc)
        client.reject(ex, 502, f"internal error: {exc!r}")


async def _dial(loop: asyncio.AbstractEventLoop, address: str, port: int) -> socket.socket:
    """A connected non-blocking TCP socket (for spliced tunnels: no transport owns it)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.sock_connect(sock, (address, port))
    except BaseException:
        sock.close()
        raise
    return sock
