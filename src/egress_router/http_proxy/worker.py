"""One proxy worker process: its event loop, listeners, timers, access log and shutdown.

Owns: the state every connection of this process shares (settings, policy cache, connection
set, coarse clock, log buffer), the once-a-second sweep that enforces the timeouts, the
graceful drain on SIGTERM, and rule reloads (SIGHUP or a changed destination file: the new
table is parsed, then swapped in for new requests; tunnels and requests in flight keep the
decision they got; a bad table is refused with one line and the old one stays).
Must not: parse HTTP (``client``/``upstream`` do) or decide (``model.connection``, ``model.rules``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import socket
import time
from collections.abc import Coroutine
from typing import Any

from egress_router.errors import EgressRouterError
from egress_router.http_proxy.client import ClientProtocol
from egress_router.http_proxy.model.connection import TUNNEL
from egress_router.http_proxy.model.exchange import Exchange
from egress_router.http_proxy.model.rules import Decision, RuleTable
from egress_router.http_proxy.model.settings import ProxySettings
from egress_router.runtime import logsink, unexpected
from egress_router.runtime.metrics import HttpProxyMetrics
from egress_router.runtime.reload import Source

NAME_CACHE_SIZE = 10_000  # decisions per host name kept (pure function of the name)
COMPONENT = "http-proxy"  # the label of its unexpected errors (runtime.unexpected)


class Worker:
    """Shared per-process state; the protocols hold a reference to it."""

    def __init__(
        self,
        settings: ProxySettings,
        loop: asyncio.AbstractEventLoop,
        reload: Source[RuleTable] | None = None,
        report: bool = True,
    ) -> None:
        self.settings = settings
        self.reload_source = reload
        self.report = report  # this worker logs and counts reloads (one of them does)
        self.rules = settings.rules
        self.loop = loop
        self.connections: set[ClientProtocol] = set()
        self.now = loop.time()
        self.draining = False
        self._log = logsink.stdout()  # never blocks: a stalled reader costs lines, not service
        self._names: dict[str, Decision | None] = {}
        self.via = settings.via.encode()
        self.tasks: set[asyncio.Task[None]] = set()
        self.metrics: HttpProxyMetrics | None = None
        if settings.metrics is not None:
            self.metrics = HttpProxyMetrics()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task we keep a reference to until it ends."""
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(self._task_failed)

    _task_failed = staticmethod(unexpected.task_done(COMPONENT, "a proxy task"))

    # -- policy -------------------------------------------------------------------------------

    def decide_name(self, host: str) -> Decision | None:
        try:
            return self._names[host]
        except KeyError:
            pass
        if len(self._names) >= NAME_CACHE_SIZE:
            self._names.clear()
        decision = self._names[host] = self.rules.decide_name(host)
        return decision

    def decide_address(self, address: str, by_name: Decision | None) -> Decision:
        return self.rules.decide_address(ipaddress.ip_address(address), by_name)

    def reload(self, forced: bool) -> None:
        """Parse the rule table again and use it for new requests; keep the old on error."""
        assert self.reload_source is not None
        try:
            rules = self.reload_source.reparse()
        except EgressRouterError as exc:
            if self.report:
                logsink.stderr().line(
                    "egress-router http-proxy: reload refused, keeping the previous rules: "
                    + exc.one_line()
                )
                if self.metrics is not None:
                    self.metrics.reload(False)
            return
        if not forced and rules.render() == self.rules.render():
            return
        self.rules = rules
        self._names = {}  # decisions by name came from the old table
        if self.report:
            logsink.stderr().line(f"egress-router http-proxy: reloaded: {len(rules.rules)} rule(s)")
            if self.metrics is not None:
                self.metrics.reload(True)

    async def watch(self, hup: asyncio.Event) -> None:
        """Reload on SIGHUP (forced) or when the watched file changes."""
        source = self.reload_source
        assert source is not None
        watch = source.watch()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hup.wait(), source.interval_s)
            if hup.is_set():
                hup.clear()
                self.reload(forced=True)
            elif watch is not None and watch.changed():
                self.reload(forced=False)

    # -- connections --------------------------------------------------------------------------

    def opened(self, conn: ClientProtocol) -> bool:
        """A client connected: False (answer 503) past the limit or while draining."""
        if len(self.connections) >= self.settings.max_connections or self.draining:
            return False
        self.connections.add(conn)
        return True

    def closed(self, conn: ClientProtocol) -> None:
        self.connections.discard(conn)

    def finished(self, ex: Exchange, peer: str) -> None:
        """An exchange or tunnel is over: its access-log line and metrics."""
        now = time.monotonic()
        self.log(ex.log_line(peer, time.time(), now))
        metrics = self.metrics
        if metrics is not None:  # once per request or tunnel, from the log record
            metrics.exchange(
                ex.method.decode("latin-1"),
                ex.status,
                ex.rule_id,  # structured: rewording a message changes no label
                ex.up_bytes,
                ex.down_bytes,
                now - ex.started,
                ex.is_connect,
            )

    # -- access log ---------------------------------------------------------------------------

    def log(self, line: str) -> None:
        if self.settings.access_log:
            self._log.line(line, lazy=True)  # batched: written within a second

    def flush_log(self) -> None:
        self._log.flush()

    # -- timers -------------------------------------------------------------------------------

    async def sweep(self) -> None:
        """Once a second: advance the coarse clock, enforce timeouts, flush the log."""
        while True:
            await asyncio.sleep(1.0)
            self.now = self.loop.time()
            for conn in list(self.connections):
                try:
                    conn.tick(self.now)
                except Exception as exc:  # a bug ends that connection, never the sweep
                    conn.failed(exc)
            self.flush_log()
            if self.metrics is not None:
                self.sample_metrics()

    def sample_metrics(self) -> None:
        assert self.metrics is not None
        tunnels = sum(1 for conn in self.connections if conn.core.phase is TUNNEL)
        self.metrics.sample(len(self.connections), tunnels)

    # -- lifecycle ----------------------------------------------------------------------------

    async def serve(self, sockets: list[socket.socket]) -> None:
        # A Protocol callback that raises: uvloop closes that connection and reports it here.
        unexpected.install(self.loop, COMPONENT)
        servers = [
            await self.loop.create_server(
                lambda: ClientProtocol(self), sock=sock, backlog=4096, start_serving=True
            )
            for sock in sockets
        ]
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, stop.set)
        sweeper = asyncio.ensure_future(self.sweep())
        watcher = None
        if self.reload_source is not None:
            hup = asyncio.Event()
            self.loop.add_signal_handler(signal.SIGHUP, hup.set)
            watcher = asyncio.ensure_future(self.watch(hup))
        try:
            await stop.wait()
            # Graceful shutdown: no new clients, idle ones closed now, busy ones when done.
            self.draining = True
            for server in servers:
                server.close()
            for conn in list(self.connections):
                conn.drain()
            deadline = self.loop.time() + self.settings.shutdown_timeout
            while self.connections and self.loop.time() < deadline:
                await asyncio.sleep(0.05)
            for conn in list(self.connections):
                conn.abort("shutdown")
        finally:
            sweeper.cancel()
            if watcher is not None:
                watcher.cancel()
            self.flush_log()
            if self.metrics is not None:
                self.sample_metrics()


def run_worker(
    settings: ProxySettings,
    sockets: list[socket.socket],
    reload: Source[RuleTable] | None = None,
    report: bool = True,
) -> None:
    """Run one worker to completion in this process (uvloop when available)."""
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency, but stay usable without
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(Worker(settings, loop, reload, report).serve(sockets))
    finally:
        loop.close()
