"""IPv6 spellings of IPv4 hosts against a real denied server, a pod-local service and the proxy.

The proxy under test denies ``203.0.113.26`` and allows everything else (``*``); a server on
that address answers with a marker that must never come back. Every alias form is tried as a
literal in the URL, as a CONNECT target and as the only (AAAA) record of a name served by the
lab's dnsmasq. Also: a CONNECT answered 403/502 closes the connection it said it would close.
"""

from __future__ import annotations

import sys

import pytest

from egress_router.lab import procs
from tests.http_proxy.conftest import RECORDS, ROUTER_IP, ProxyLab

pytestmark = pytest.mark.lab

PORT = 8090
DENIED = "203.0.113.26"
MARKER = "denied-server-reached"
LOCAL_PORT = 9099  # a service bound to the router pod's loopback
LOCAL_MARKER = "pod-local-service-reached"

# Every way found to write 203.0.113.26 as an IPv6 literal.
DENIED_FORMS = [
    "::ffff:203.0.113.26",  # IPv4-mapped, dotted
    "::ffff:cb00:711a",  # IPv4-mapped, hex
    "::FFFF:CB00:711A",  # upper case
    "0:0:0:0:0:ffff:cb00:711a",  # uncompressed
    "0000:0000:0000:0000:0000:ffff:cb00:711a",  # leading zeros
    "::203.0.113.26",  # IPv4-compatible (deprecated)
    "::cb00:711a",
    "::ffff:0:203.0.113.26",  # SIIT IPv4-translated
    "64:ff9b::203.0.113.26",  # NAT64 well-known prefix
    "64:ff9b::cb00:711a",
]
LOOPBACK_FORMS = ["::ffff:127.0.0.1", "::ffff:7f00:1", "::127.0.0.1", "::ffff:127.1.2.3"]
DNS_RECORDS = {
    "mapped.test": ["::ffff:203.0.113.26"],
    "compat.test": ["::203.0.113.26"],
    "nat64.test": ["64:ff9b::cb00:711a"],
    "mappedloop.test": ["::ffff:127.0.0.1"],
    "mappedself.test": [f"::ffff:{ROUTER_IP}"],
}

SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = sys.argv[3].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
HTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
"""

# Sends one request and reads until the proxy closes; prints CLOSED or OPEN, then the bytes.
CLIENT = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
s.sendall(bytes.fromhex(sys.argv[4]))
out, state = b"", "CLOSED"
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
except socket.timeout:
    state = "OPEN"
except ConnectionResetError:
    pass
sys.stdout.write(state + "\\n" + out.decode("latin-1"))
"""


@pytest.fixture(scope="module")
def alab(plab: ProxyLab) -> ProxyLab:
    lab = plab.lab
    lab.spawn("web", [sys.executable, "-c", SERVER, DENIED, "80", MARKER], name="denied-server")
    lab.spawn(
        "router",
        [sys.executable, "-c", SERVER, "127.0.0.1", str(LOCAL_PORT), LOCAL_MARKER],
        name="pod-local",
    )
    plab.dns.set_records({**RECORDS, **DNS_RECORDS})
    for role, url in (
        ("router", f"http://{DENIED}/"),
        ("router", f"http://127.0.0.1:{LOCAL_PORT}/"),
    ):
        up = procs.wait_for(
            lambda: lab.exec(role, ["curl", "-s", "--max-time", "1", url]).returncode == 0,  # noqa: B023
            10,
        )
        assert up, f"{url} did not come up"
    plab.start_proxy(PORT, f"!{DENIED}\n*\n")
    return plab


def exchange(plab: ProxyLab, request: bytes, timeout: float = 8.0) -> tuple[str, str]:
    """(CLOSED or OPEN, the answer) for one request sent to the proxy."""
    argv = [sys.executable, "-c", CLIENT, ROUTER_IP, str(PORT), str(timeout), request.hex()]
    result = plab.lab.exec("client", argv, timeout=timeout + 30)
    assert result.returncode == 0, result.stderr
    state, _, answer = result.stdout.partition("\n")
    return state, answer


def get(plab: ProxyLab, authority: str) -> tuple[str, str]:
    request = f"GET http://{authority}/ HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    return exchange(plab, request.encode())


def connect(plab: ProxyLab, authority: str) -> tuple[str, str]:
    """CONNECT, then a request inside the tunnel: a leak would show the server's answer."""
    inner = f"GET / HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    return exchange(
        plab, f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n{inner}".encode()
    )


def test_the_denied_server_is_there_and_denied_by_its_ipv4_address(alab: ProxyLab) -> None:
    # The server answers the router pod directly (so a leak would be seen) ...
    direct = alab.lab.exec("router", ["curl", "-sS", "--max-time", "5", f"http://{DENIED}/"])
    assert direct.stdout == MARKER, direct.stderr
    # ... and the plain address is denied.
    _, answer = get(alab, DENIED)
    assert answer.startswith("HTTP/1.1 403") and f"denied by rule 1: !{DENIED}" in answer
    _, answer = get(alab, "203.0.113.25")  # the control: allowed by *
    assert answer.startswith("HTTP/1.1 200")


@pytest.mark.parametrize("form", DENIED_FORMS)
def test_alias_literal_in_the_url_is_denied(alab: ProxyLab, form: str) -> None:
    _, answer = get(alab, f"[{form}]")
    assert MARKER not in answer
    assert answer.startswith("HTTP/1.1 403"), answer
    assert f"denied by rule 1: !{DENIED}" in answer and f"is {DENIED})" in answer


@pytest.mark.parametrize("form", DENIED_FORMS)
def test_alias_literal_as_connect_target_is_denied_and_closed(alab: ProxyLab, form: str) -> None:
    state, answer = connect(alab, f"[{form}]:80")
    assert MARKER not in answer
    assert answer.startswith("HTTP/1.1 403"), answer
    assert "Connection: close" in answer and state == "CLOSED"


@pytest.mark.parametrize("name", ["mapped.test", "compat.test", "nat64.test"])
def test_name_whose_only_record_is_an_alias_aaaa_is_denied(alab: ProxyLab, name: str) -> None:
    _, answer = get(alab, name)
    assert MARKER not in answer
    assert answer.startswith("HTTP/1.1 403"), answer
    assert f"({name} is " in answer and f"that is {DENIED})" in answer
    state, answer = connect(alab, f"{name}:80")
    assert MARKER not in answer and answer.startswith("HTTP/1.1 403"), answer
    assert state == "CLOSED"


@pytest.mark.parametrize("form", LOOPBACK_FORMS)
def test_alias_of_loopback_does_not_reach_the_pods_own_services(alab: ProxyLab, form: str) -> None:
    direct = alab.lab.exec("router", ["curl", "-sS", "--max-time", "5",
                                      f"http://127.0.0.1:{LOCAL_PORT}/"])  # fmt: skip
    assert direct.stdout == LOCAL_MARKER
    for state, answer in (
        get(alab, f"[{form}]:{LOCAL_PORT}"),
        connect(alab, f"[{form}]:{LOCAL_PORT}"),
    ):
        assert LOCAL_MARKER not in answer
        assert answer.startswith("HTTP/1.1 403"), answer
        assert "loopback and unspecified addresses" in answer
        assert state == "CLOSED"
    _, answer = get(alab, f"mappedloop.test:{LOCAL_PORT}")
    assert LOCAL_MARKER not in answer and "loopback and unspecified addresses" in answer


@pytest.mark.parametrize(
    "authority",
    [f"[::ffff:{ROUTER_IP}]:{PORT}", f"[::ffff:c612:2]:{PORT}", f"mappedself.test:{PORT}"],
)
def test_alias_of_the_proxys_own_address_is_a_loop(alab: ProxyLab, authority: str) -> None:
    _, answer = get(alab, authority)
    assert answer.startswith("HTTP/1.1 403"), answer
    assert "refusing to forward to the proxy itself" in answer


def test_refused_connect_closes_the_connection(alab: ProxyLab) -> None:
    """Item 10: a CONNECT answered 403 (policy) or 502 (unknown name) says close and closes."""
    for authority, status in ((f"{DENIED}:80", "403"), ("nowhere.test:80", "502")):
        state, answer = exchange(alab, f"CONNECT {authority} HTTP/1.1\r\n\r\n".encode())
        assert answer.startswith(f"HTTP/1.1 {status}"), answer
        assert "Connection: close" in answer
        assert state == "CLOSED", f"CONNECT {authority}: {status} said close, connection open"


# Other spellings of 203.0.113.26 a resolver accepts (inet_aton forms, a trailing dot): they are
# not literals to the proxy, so they are resolved, and the address decides.
NUMERIC_FORMS = [
    "3405803802",
    "203.0.28954",
    "203.28954",
    "0xcb.0.113.26",
    "0313.0.113.26",
    "0xcb00711a",
    "203.0.113.26.",
]


@pytest.mark.parametrize("form", NUMERIC_FORMS)
def test_numeric_ipv4_spellings_are_decided_by_address(alab: ProxyLab, form: str) -> None:
    for state, answer in (get(alab, form), connect(alab, f"{form}:80")):
        assert MARKER not in answer
        assert answer.startswith("HTTP/1.1 403"), answer
        assert state == "CLOSED"
    assert f"denied by rule 1: !{DENIED} ({form.rstrip('.')} is {DENIED})" in get(alab, form)[1]
