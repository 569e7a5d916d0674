"""The firewall's DNS server: pods resolve through it, so the firewall learns what they learn.

Owns: a UDP listener that forwards each query to the upstream server unchanged and, when the
querying pod's namespace has a policy naming the answered name (or a name of its CNAME chain),
writes the answered addresses into that rule's set, with an expiry from the TTL, BEFORE the
answer is released to the pod. A pod therefore never holds an address its firewall does not.
Must not: cache, rewrite answers, or decide verdicts; nor know the agent: what it needs
(the DNS patterns of a client's namespace, the set lifetime, the learning, the metrics) is
injected as a ``Learner`` (the agent is one), so the import graph has no cycle.

Bounds: at most ``MAX_INFLIGHT`` queries in flight (more are dropped; the client retries),
``UPSTREAM_TIMEOUT_S`` per upstream exchange, ``HOLD_TIMEOUT_S`` for the set update. If the
upstream fails or the set update fails or times out, the pod gets SERVFAIL (fail closed:
an answer the firewall does not know about would be a wrong denial). TCP is served on the same
address and port (clients retry there when a UDP answer is truncated), forwarded over TCP.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, cast

import dns.exception
import dns.message
import dns.rcode

from egress_router.errors import DataplaneError, EgressRouterError
from egress_router.firewall.model.decide import Address
from egress_router.firewall.model.dnsrules import matching
from egress_router.runtime import unexpected
from egress_router.runtime.metrics import FirewallMetrics
from egress_router.runtime.resolver import read_wire

_report_failed = unexpected.task_done("firewall", "a DNS query")
MAX_INFLIGHT = 1024  # bounds memory and tasks under a query flood
UPSTREAM_TIMEOUT_S = 5.0
HOLD_TIMEOUT_S = 2.0  # the longest we delay an answer for the kernel update
TCP_IDLE_S = 10.0  # an idle TCP client is disconnected after this


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


class Learner(Protocol):
    """What the DNS server needs from the firewall agent (``agent.Agent`` implements it)."""

    @property
    def metrics(self) -> FirewallMetrics | None: ...

    def dns_patterns(self, client: str) -> tuple[str, list[str]] | None:
        """The namespace of ``client`` and the dnsName patterns of its policy, or None."""
        ...

    def dns_lifetime(self, ttl: float) -> float:
        """How long (seconds) an address answered with ``ttl`` stays in the sets."""
        ...

    def learn(
        self, namespace: str, patterns: Sequence[str], addrs: Sequence[tuple[Address, float]]
    ) -> int:
        """Put ``addrs`` (address, lifetime s) into the sets of ``patterns`` in ``namespace``."""
        ...


class DnsServer(asyncio.DatagramProtocol):
    def __init__(self, agent: Learner, upstream: tuple[str, int]) -> None:
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
        _report_failed(task)

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
        response = await self.answer(data, addr[0], self._forward)
        if response and self.transport is not None:
            self.transport.sendto(response, addr)

    async def answer(
        self, data: bytes, client: str, forward: Callable[[bytes], Awaitable[bytes]]
    ) -> bytes:
        """The upstream's answer to ``data``, released only once the sets hold its addresses."""
        metrics = self.agent.metrics
        held = None
        try:
            response = await forward(data)
            started = time.monotonic()
            await asyncio.wait_for(self._learn(response, client), HOLD_TIMEOUT_S)
            held = time.monotonic() - started
        except (OSError, TimeoutError, EgressRouterError, dns.exception.DNSException, EOFError):
            response = _servfail(data)
        except Exception as exc:  # a bug: this query gets SERVFAIL (fail closed), others go on
            unexpected.report("firewall", f"a DNS query from {client}", exc)
            response = _servfail(data)
        if metrics is not None:  # once per query
            metrics.query(held is not None, held)
        return response

    async def _forward_tcp(self, data: bytes) -> bytes:
        async def exchange() -> bytes:
            reader, writer = await asyncio.open_connection(*self.upstream)
            try:
                writer.write(len(data).to_bytes(2, "big") + data)
                await writer.drain()
                size = int.from_bytes(await reader.readexactly(2), "big")
                return await reader.readexactly(size)
            finally:
                writer.close()

        return await asyncio.wait_for(exchange(), UPSTREAM_TIMEOUT_S)

    async def serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """DNS over TCP (RFC 7766 framing): clients retry here when a UDP answer is truncated."""
        client = writer.get_extra_info("peername")[0]
        if self.inflight >= MAX_INFLIGHT:
            writer.close()
            return
        self.inflight += 1
        try:
            while True:
                size = int.from_bytes(
                    await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_S), "big"
                )
                query = await asyncio.wait_for(reader.readexactly(size), TCP_IDLE_S)
                response = await self.answer(query, client, self._forward_tcp)
                if not response:
                    break
                writer.write(len(response).to_bytes(2, "big") + response)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, OSError):
            pass
        finally:
            self.inflight -= 1
            writer.close()

    async def _learn(self, response: bytes, client: str) -> None:
        found = self.agent.dns_patterns(client)
        if found is None:
            return
        namespace, patterns = found
        if not patterns:
            return
        answer = read_wire(response)
        if answer is None or not answer.addresses:
            return
        hits = matching(patterns, answer.names)
        if hits:
            addrs = [(a, self.agent.dns_lifetime(ttl)) for a, ttl in answer.addresses]
            await asyncio.to_thread(self.agent.learn, namespace, hits, addrs)


def _servfail(query: bytes) -> bytes:
    try:
        message = dns.message.from_wire(query)
    except dns.exception.DNSException:
        return b""
    reply = dns.message.make_response(message)
    reply.set_rcode(dns.rcode.SERVFAIL)
    return reply.to_wire()


class ServerHandle:
    def __init__(self, transport: asyncio.BaseTransport, server: asyncio.Server) -> None:
        self.transport = transport
        self.server = server

    def close(self) -> None:
        self.transport.close()
        self.server.close()


async def start_server(
    agent: Learner, listen: tuple[str, int], upstream: tuple[str, int]
) -> ServerHandle:
    """Listen on ``listen`` (address, port) and forward to ``upstream``."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
    udp = socket.socket(family, socket.SOCK_DGRAM)
    tcp = socket.socket(family, socket.SOCK_STREAM)
    try:
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        udp.bind(listen)
        tcp.bind(listen)
        tcp.listen(128)
    except OSError as exc:
        udp.close()
        tcp.close()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise DataplaneError(f"--dns-listen {listen[0]}:{listen[1]}: {reason}") from exc
    transport, proxy = await loop.create_datagram_endpoint(
        lambda: DnsServer(agent, upstream), sock=udp
    )
    server = await asyncio.start_server(proxy.serve_tcp, sock=tcp)
    return ServerHandle(transport, server)
