"""Liveness and readiness over HTTP for every long-running mode (EGRESS_ROUTER_HEALTH_PORT).

Owns: the process's readiness state and a tiny HTTP listener in a daemon thread:
``GET /healthz`` answers 200 ``ok`` while the process runs (liveness); ``GET /readyz`` answers
200 ``ready`` only once the data plane is configured, otherwise 503 with the state
(``starting``, ``standby``, ``failed``). ``set_state`` is the hook other parts use: the failover
feature marks a standby instance ``standby`` (not ready: no Service traffic to it) and the
active one ``ready``. Reload counts, if a mode records them, follow on ``/readyz``'s next lines.
Must not: block the data path (its own thread; requests are tiny and bounded) or expose
anything but the state (no configuration, no addresses).
"""

from __future__ import annotations

import socket
import threading
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from egress_router.errors import DataplaneError
from egress_router.runtime.reload import ReloadCounts

REQUEST_TIMEOUT_S = 5.0  # a probe that stalls must not hold a thread for long


class State(StrEnum):
    STARTING = "starting"  # alive, data plane not configured yet
    READY = "ready"  # data plane configured: take traffic
    STANDBY = "standby"  # failover: alive and configured to take over, not holding the address
    FAILED = "failed"  # the data plane could not be configured


class Health:
    """The state behind the endpoints; set from any thread (one attribute write)."""

    def __init__(self, counts: ReloadCounts | None = None) -> None:
        self.state = State.STARTING
        self.counts = counts

    def set_state(self, state: State) -> None:
        self.state = state

    def ready(self) -> None:
        self.state = State.READY

    def readiness(self) -> tuple[int, str]:
        body = f"{self.state.value}\n"
        if self.counts is not None:
            body += f"reloads ok {self.counts.ok} failed {self.counts.failed}\n"
        return (200 if self.state is State.READY else 503), body


def _handler(health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = REQUEST_TIMEOUT_S

        def do_GET(self) -> None:
            if self.path == "/healthz":
                status, body = 200, "ok\n"
            elif self.path == "/readyz":
                status, body = health.readiness()
            else:
                status, body = 404, "not found\n"
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return None  # probes every few seconds: not worth a log line

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def serve_health(address: str, port: int, health: Health) -> ThreadingHTTPServer:
    """Start answering probes on ``address:port`` from a daemon thread."""
    kind = _Server6 if ":" in address else _Server
    try:
        server = kind((address, port), _handler(health))
    except OSError as exc:
        raise DataplaneError(
            f"cannot serve health on {address} port {port}: {exc.strerror or exc}"
        ) from None
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
