"""The agent's DNS proxy: pods resolve through it, so the firewall learns what they learn.

Owns: a UDP listener that forwards each query to the upstream server unchanged and, when the
querying pod's namespace has a policy naming the answered name (or a name of its CNAME chain),
writes the answered addresses into that rule's set, with an expiry from the TTL, BEFORE the
answer is released to the pod. A pod therefore never holds an address its firewall does not.
Must not: cache, rewrite answers, or decide verdicts.

Bounds: at most ``MAX_INFLIGHT`` queries in flight (more are dropped; the client retries),
``UPSTREAM_TIMEOUT_S`` per upstream exchange, ``HOLD_TIMEOUT_S`` for the set update. If the
upstream fails or the set update fails or times out, the pod gets SERVFAIL (fail closed:
an answer the firewall does not know about would be a wrong denial). UDP only: a truncated
answer is relayed as is and the client's TCP retry is not served.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import TYPE_CHECKING, Any, cast

import dns.exception
import dns.message
import dns.rcode

from egress_router.core.firewall.dnsrules import matching
from egress_router.errors import EgressRouterError
from egress_router.firewall.resolver import read_answer

if TYPE_CHECKING:
    from egress_router.firewall.agent import Agent

MAX_INFLIGHT = 1024  # bounds memory and tasks under a query flood
UPSTREAM_TIMEOUT_S = 5.0
HOLD_TIMEOUT_S = 2.0  # the longest we delay an answer for the kernel update


class _Reply(asyncio.DatagramProtocol):
    def __init__(self, query_id: bytes) -> None:
        self.query_id = query_id
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if data[:2] == self.query_id and not self.done.done():
            self.done.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


class DnsProxy(asyncio.DatagramProtocol):
    def __init__(self, agent: Agent, upstream: tuple[str, int]) -> None:
        self.agent = agent
        self.upstream = upstream
        self.transport: asyncio.DatagramTransport | None = None
        self.inflight = 0
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.inflight >= MAX_INFLIGHT or len(data) < 12:
            return
        self.inflight += 1
        task = asyncio.create_task(self._handle(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.inflight -= 1

    async def _forward(self, data: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            lambda: _Reply(data[:2]), remote_addr=self.upstream
        )
        try:
            transport.sendto(data)
            return await asyncio.wait_for(proto.done, UPSTREAM_TIMEOUT_S)
        finally:
            transport.close()

    async def _handle(self, data: bytes, addr: Any) -> None:
        try:
            response = await self._forward(data)
            await asyncio.wait_for(self._learn(response, addr[0]), HOLD_TIMEOUT_S)
        except (OSError, TimeoutError, EgressRouterError, dns.exception.DNSException):
            response = _servfail(data)
        if response and self.transport is not None:
            self.transport.sendto(response, addr)

    async def _learn(self, response: bytes, client: str) -> None:
        namespace = self.agent.config.node.namespace_of(ipaddress.ip_address(client))
        policy = self.agent.policies.get(namespace or "")
        if namespace is None or policy is None:
            return
        patterns = [r.dns_name for r in policy.rules if r.dns_name]
        if not patterns:
            return
        answer = read_answer(dns.message.from_wire(response))
        if answer is None or not answer.addresses:
            return
        hits = matching(patterns, answer.names)
        if hits:
            settings = self.agent.config.dns
            addrs = [(a, settings.lifetime(ttl)) for a, ttl in answer.addresses]
            await asyncio.to_thread(self.agent.learn, namespace, hits, addrs)


def _servfail(query: bytes) -> bytes:
    try:
        message = dns.message.from_wire(query)
    except dns.exception.DNSException:
        return b""
    reply = dns.message.make_response(message)
    reply.set_rcode(dns.rcode.SERVFAIL)
    return reply.to_wire()


class ProxyHandle:
    def __init__(self, transport: asyncio.DatagramTransport) -> None:
        self.transport = transport

    def close(self) -> None:
        self.transport.close()


async def start_proxy(
    agent: Agent, listen: tuple[str, int], upstream: tuple[str, int]
) -> ProxyHandle:
    """Listen on ``listen`` (address, port) and forward to ``upstream``."""
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: DnsProxy(agent, upstream), local_addr=listen
        )
    except OSError as exc:
        from egress_router.errors import DataplaneError

        raise DataplaneError(f"--dns-listen {listen[0]}:{listen[1]}: {exc.strerror}") from exc
    return ProxyHandle(transport)
