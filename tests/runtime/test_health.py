"""The health endpoints: liveness always, readiness only when ready (standby is not)."""

from __future__ import annotations

import http.client
import socket

import pytest

from egress_router.common.endpoints import parse_health
from egress_router.runtime.health import Health, State, serve_health
from egress_router.runtime.reload import ReloadCounts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_states_on_the_wire() -> None:
    health = Health(ReloadCounts())
    port = free_port()
    server = serve_health("127.0.0.1", port, health)
    try:
        assert get(port, "/healthz") == (200, "ok\n")
        assert get(port, "/readyz") == (503, "starting\nreloads ok 0 failed 0\n")
        health.set_state(State.READY)
        assert get(port, "/readyz") == (200, "ready\nreloads ok 0 failed 0\n")
        health.set_state(State.STANDBY)  # the failover hook
        assert get(port, "/readyz")[0] == 503 and get(port, "/healthz")[0] == 200
        assert get(port, "/other")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("", None),
        ("off", None),
        ("8081", ("0.0.0.0", 8081)),
        ("127.0.0.1:9", ("127.0.0.1", 9)),
        ("[::1]:9", ("::1", 9)),
        ("[::ffff:127.0.0.1]:9", ("127.0.0.1", 9)),
    ],
)
def test_parse_health(text: str | None, expected: tuple[str, int] | None) -> None:
    assert parse_health(text) == expected


@pytest.mark.parametrize("text", ["0", "65536", "x", "1.2.3.4:", "nothost:80", "８０"])
def test_parse_health_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_health(text)
