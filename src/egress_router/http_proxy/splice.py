"""CONNECT tunnels relayed by the kernel: splice(2) through a pipe, no byte enters Python.

Owns: the two one-way pumps of a tunnel (socket -> pipe -> socket, non-blocking, driven by the
event loop's readiness callbacks), half-close propagation (EOF becomes shutdown(SHUT_WR)),
flow control (a full destination stops reading the source) and closing both sockets.
Must not: parse anything, decide policy or write the access log (``client`` does).

Per chunk (up to ``PIPE_BYTES``) Python only counts the bytes; the data itself stays in kernel
pages (zero copy). Falls back to the Protocol relay where os.splice is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket

from egress_router.http_proxy.contracts import ClientSide
from egress_router.http_proxy.model.exchange import Exchange

AVAILABLE = hasattr(os, "splice") and hasattr(fcntl, "F_SETPIPE_SZ")
# Bytes in flight per direction: large enough that one call moves a lot, small enough that
# 10,000 tunnels stay bounded (pipe pages are only allocated while data sits in them).
PIPE_BYTES = 512 * 1024
FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)


class Pump:
    """One direction: ``src`` -> pipe -> ``dst``; ``upward`` counts as client -> upstream."""

    def __init__(self, tunnel: SpliceTunnel, src: socket.socket, dst: socket.socket, upward: bool):
        self.tunnel = tunnel
        self.loop = tunnel.loop
        self.src, self.dst = src.fileno(), dst.fileno()
        self.dst_sock = dst
        self.upward = upward
        self.pr, self.pw = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        with contextlib.suppress(OSError):
            fcntl.fcntl(self.pw, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self.queued = 0
        self.prefix = b""
        self.reading = self.writing = self.eof = self.done = False

    def start(self, prefix: bytes = b"") -> None:
        self.prefix = prefix
        if prefix:
            self.want_write()
        else:
            self.want_read()

    def want_read(self) -> None:
        if self.writing:
            self.loop.remove_writer(self.dst)
            self.writing = False
        if not self.reading and not self.eof:
            self.loop.add_reader(self.src, self.readable)
            self.reading = True

    def want_write(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.src)
            self.reading = False
        if not self.writing:
            self.loop.add_writer(self.dst, self.writable)
            self.writing = True

    def readable(self) -> None:
        self.tunnel.client.core.activity = True
        try:
            n = os.splice(self.src, self.pw, PIPE_BYTES, flags=FLAGS)
        except BlockingIOError:
            return
        except OSError as exc:
            self.tunnel.close(f"tunnel read failed: {exc.strerror}")
            return
        if n == 0:
            self.eof = True
            self.loop.remove_reader(self.src)
            self.reading = False
        else:
            self.queued += n
            ex = self.tunnel.exchange
            if self.upward:
                ex.up_bytes += n
            else:
                ex.down_bytes += n
        self.drain()

    def writable(self) -> None:
        self.tunnel.client.core.activity = True
        if self.prefix:
            try:
                sent = os.write(self.dst, self.prefix)
            except BlockingIOError:
                return
            except OSError as exc:
                self.tunnel.close(f"tunnel write failed: {exc.strerror}")
                return
            self.prefix = self.prefix[sent:]
            if self.prefix:
                return
        self.drain()

    def drain(self) -> None:
        while self.queued:
            try:
                self.queued -= os.splice(self.pr, self.dst, self.queued, flags=FLAGS)
            except BlockingIOError:
                self.want_write()  # the destination is full: stop reading the source
                return
            except OSError as exc:
                self.tunnel.close(f"tunnel write failed: {exc.strerror}")
                return
        if self.eof:
            self.finish()
        else:
            self.want_read()

    def finish(self) -> None:
        """The source said EOF and everything was delivered: pass the half-close on."""
        if self.writing:
            self.loop.remove_writer(self.dst)
            self.writing = False
        with contextlib.suppress(OSError):
            self.dst_sock.shutdown(socket.SHUT_WR)
        self.done = True
        self.tunnel.pump_done()

    def stop(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.src)
        if self.writing:
            self.loop.remove_writer(self.dst)
        self.reading = self.writing = False
        for fd in (self.pr, self.pw):
            with contextlib.suppress(OSError):
                os.close(fd)


class SpliceTunnel:
    """Both directions of one CONNECT tunnel; ``close`` is idempotent."""

    def __init__(
        self, client: ClientSide, ex: Exchange, upstream: socket.socket, early: bytes
    ) -> None:
        self.client = client
        self.exchange = ex
        self.loop: asyncio.AbstractEventLoop = client.worker.loop
        raw = client.client_socket()
        # Our own descriptor for the client socket: the transport keeps its own (paused).
        self.client_sock = socket.socket(fileno=os.dup(raw.fileno()))
        self.upstream = upstream
        self.closed = False
        self.up = Pump(self, self.client_sock, upstream, upward=True)
        self.down = Pump(self, upstream, self.client_sock, upward=False)
        self.up.start(early)
        self.down.start()

    def pump_done(self) -> None:
        if self.up.done and self.down.done:
            self.close("")

    def close(self, error: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.up.stop()
        self.down.stop()
        self.upstream.close()
        self.client_sock.close()
        self.client.tunnel_closed(error)
