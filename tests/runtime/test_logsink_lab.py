"""A log reader that stalls must cost log lines, never service (issue 8, item 3), for real.

Each long-running command runs in the lab with its log stream a pipe that nobody reads (or one
already full, as a reader that stopped long ago leaves it). The proxies get thousands of
requests or connections, far more than the pipe and the sink's queue hold: every one must be
served, SIGTERM must end the process within a few seconds while the pipe is still unread, and
when the reader comes back the note with the number of dropped lines must appear.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from egress_router.lab import procs
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import ADDR, Lab
from tests.conftest import EGRESS_ROUTER, setup_router

pytestmark = pytest.mark.lab

ROUTER = str(ADDR.router_pod_ip)
WEB = "203.0.113.25"
REQUESTS = 4000  # ~800 KB of access log: 12x the pipe, 3x the sink's queue
EXIT_WITHIN_S = 5.0
STOP_NOTE = re.compile(r"egress-router: log: stdout is being read again; (\d+) lines? dropped")
START_NOTE = "egress-router: log: stdout is not being read fast enough; dropping lines"

# One request per connection (each is one access-log line, or one relay debug line), from a
# few threads; a thread stops at its first failure, so a stalled proxy ends the run quickly.
LOAD = r"""
import socket, sys, threading
host, port, total, target = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
vhost = target.split("/")[2] if "//" in target else host
request = f"GET {target} HTTP/1.1\r\nHost: {vhost}\r\nConnection: close\r\n\r\n".encode()
served = [0]
lock = threading.Lock()
left = [total]
def one():
    s = socket.create_connection((host, port), timeout=5)
    try:
        s.sendall(request)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out.startswith(b"HTTP/1.1 200")
    finally:
        s.close()
def run():
    while True:
        with lock:
            if not left[0]:
                return
            left[0] -= 1
        try:
            ok = one()
        except OSError:
            ok = False
        if not ok:
            return
        with lock:
            served[0] += 1
threads = [threading.Thread(target=run) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(served[0])
"""


def load(lab: Lab, port: int, target: str, total: int = REQUESTS) -> int:
    """How many of ``total`` requests were answered 200, from the client pod."""
    argv = [sys.executable, "-c", LOAD, ROUTER, str(port), str(total), target]
    result = lab.exec("client", argv, timeout=240)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


def fill(fd: int) -> None:
    """Fill a pipe until a write would block (the description is left blocking)."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    try:
        while True:
            os.write(fd, b"#" * 4095 + b"\n")
    except BlockingIOError:
        pass
    finally:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)


@dataclass
class Stalled:
    """A command whose stdout (and optionally stderr) is a pipe we read only when told to."""

    popen: subprocess.Popen[bytes]
    read_end: int
    errors: Path
    out: bytearray = field(default_factory=bytearray)
    reader: threading.Thread | None = None

    def read_until(self, text: str, count: int = 1, timeout: float = 20.0) -> bool:
        """Read (then stop reading) until ``text`` was seen ``count`` times."""
        deadline = time.monotonic() + timeout
        while self.out.count(text.encode()) < count and time.monotonic() < deadline:
            ready, _, _ = select.select([self.read_end], [], [], 0.1)
            if ready:
                chunk = os.read(self.read_end, 65536)
                if not chunk:
                    break
                self.out += chunk
        return self.out.count(text.encode()) >= count

    def resume_reading(self) -> None:
        def drain() -> None:
            with contextlib.suppress(OSError):
                while chunk := os.read(self.read_end, 65536):
                    self.out += chunk

        self.reader = threading.Thread(target=drain, daemon=True)
        self.reader.start()

    def text(self) -> str:
        return bytes(self.out).decode(errors="replace")

    def stop_within(self, seconds: float) -> float:
        """SIGTERM; how long the process took to exit (fails the test after ``seconds``)."""
        started = time.monotonic()
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {seconds} s after SIGTERM with its log stalled")
        took = time.monotonic() - started
        print(f"exited {took:.2f} s after SIGTERM")  # shown with -s: the figure in the docs
        return took

    def kill(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)


@contextlib.contextmanager
def stalled(
    lab: Lab,
    role: str,
    argv: list[str],
    env: dict[str, str],
    *,
    both: bool = False,
    full: bool = False,
) -> Iterator[Stalled]:
    """Start ``argv`` in ``role``'s namespace with stdout (and stderr if ``both``) a pipe,
    already ``full`` if asked (a reader that went away long ago)."""
    r, w = os.pipe()
    if full:
        fill(w)
    errors = lab.work / f"stalled-{time.monotonic_ns()}.err"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("EGRESS_")}
    full_env.update(env)
    with open(errors, "wb") as err:
        popen = subprocess.Popen(
            procs.netns_argv(lab.ns(role), argv),
            stdout=w,
            stderr=w if both else err,
            stdin=subprocess.DEVNULL,
            env=full_env,
            start_new_session=True,
        )
    os.close(w)
    run = Stalled(popen, r, errors)
    try:
        yield run
    finally:
        run.kill()
        os.close(r)


@pytest.fixture(scope="module")
def net() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    with Lab() as lab:
        Nginx(lab, "web", [f"{WEB}:80"]).start()
        yield lab


# -- the HTTP proxy's access log ----------------------------------------------------------------

HTTP_ENV = {
    "EGRESS_HTTP_PROXY_DESTINATION": "*",
    "EGRESS_HTTP_PROXY_WORKERS": "2",  # forked workers sharing one stdout
}


@pytest.fixture(scope="module")
def http_net(net: Lab) -> Lab:
    setup_router(net, mode="http-proxy")
    return net


def start_http(
    lab: Lab, port: int, extra: dict[str, str] | None = None
) -> contextlib.AbstractContextManager[Stalled]:
    env = {**HTTP_ENV, "EGRESS_HTTP_PROXY_LISTEN_PORT": str(port), **(extra or {})}
    return stalled(lab, "router", [EGRESS_ROUTER, "http-proxy"], env)


def wait_listening(run: Stalled) -> None:
    assert procs.wait_for(
        lambda: "listening on" in run.errors.read_text() or run.popen.poll() is not None, 20
    ), run.errors.read_text()
    assert run.popen.poll() is None, run.errors.read_text()


def test_http_proxy_serves_on_and_stops_promptly_with_stdout_unread(http_net: Lab) -> None:
    with start_http(http_net, 8181) as run:
        wait_listening(run)
        served = load(http_net, 8181, f"http://{WEB}/")
        assert served == REQUESTS, f"{served} of {REQUESTS} served with stdout unread"
        took = run.stop_within(EXIT_WITHIN_S)
        assert run.popen.returncode == 0, run.errors.read_text()
        assert took < EXIT_WITHIN_S


def dropped_metric(lab: Lab, listen: str) -> float:
    """egress_router_log_dropped_lines_total{stream="stdout"} as /metrics serves it."""
    page = lab.exec("router", ["curl", "-sS", "--max-time", "5", f"http://{listen}/metrics"])
    assert page.returncode == 0, page.stderr
    found = re.search(r'^egress_router_log_dropped_lines_total\{stream="stdout"\} (\S+)$',
                      page.stdout, re.M)  # fmt: skip
    assert found is not None, page.stdout
    return float(found.group(1))


def test_http_proxy_notes_the_dropped_lines_when_the_reader_returns(http_net: Lab) -> None:
    listen = f"{ROUTER}:9191"
    with start_http(http_net, 8182, {"EGRESS_HTTP_PROXY_METRICS": listen}) as run:
        wait_listening(run)
        assert load(http_net, 8182, f"http://{WEB}/") == REQUESTS
        run.resume_reading()
        assert procs.wait_for(lambda: len(STOP_NOTE.findall(run.text())) >= 1, 15), run.text()[
            -2000:
        ]
        text = run.text()
        assert START_NOTE in text
        dropped = sum(int(n) for n in STOP_NOTE.findall(text))
        # every request is either in the access log or counted in a note (workers count apart)
        assert procs.wait_for(
            lambda: len(re.findall(r" status=200 ", run.text())) + dropped >= REQUESTS, 10
        )
        logged = len(re.findall(r" status=200 ", run.text()))
        assert dropped > 0 and logged + dropped == REQUESTS, (logged, dropped)
        assert dropped_metric(http_net, listen) == dropped  # summed over both workers
        assert load(http_net, 8182, f"http://{WEB}/", 200) == 200  # and lines flow again
        assert procs.wait_for(lambda: len(re.findall(r" status=200 ", run.text())) == logged + 200)
        run.stop_within(EXIT_WITHIN_S)


# -- the DNS proxy relay's debug log -------------------------------------------------------------

DNS_ENV = {
    "EGRESS_DNS_PROXY_DESTINATION": f"80 {WEB}\n",
    "EGRESS_DNS_PROXY_FORWARDING": "relay",
    "EGRESS_DNS_PROXY_DEBUG": "1",
    "EGRESS_DNS_PROXY_RELAY_WORKERS": "2",
}


@pytest.fixture(scope="module")
def dns_net(net: Lab) -> Lab:
    setup_router(net, mode="dns-proxy")
    return net


def test_dns_proxy_relay_notes_the_dropped_lines_when_the_reader_returns(dns_net: Lab) -> None:
    env = {**DNS_ENV, "EGRESS_DNS_PROXY_RELAY_WORKERS": "1"}
    total = 6000  # ~80-byte lines: 480 KB, more than the pipe and one worker's queue
    with stalled(dns_net, "router", [EGRESS_ROUTER, "dns-proxy"], env) as run:
        # the reader stops here: from now on nobody reads stdout
        assert run.read_until("ready:"), run.text() + run.errors.read_text()
        served = load(dns_net, 80, "/", total)
        assert served == total, f"{served} of {total} relayed with stdout unread"
        run.resume_reading()
        assert procs.wait_for(lambda: STOP_NOTE.search(run.text()) is not None, 15), run.text()[
            -2000:
        ]
        assert START_NOTE in run.text()
        dropped = int(STOP_NOTE.findall(run.text())[0])
        assert dropped > 0
        assert len(re.findall(r": connection ", run.text())) + dropped == total
        run.stop_within(EXIT_WITHIN_S)


def test_dns_proxy_relay_serves_on_and_stops_promptly_with_stdout_unread(dns_net: Lab) -> None:
    with stalled(dns_net, "router", [EGRESS_ROUTER, "dns-proxy"], DNS_ENV) as run:
        # both workers ready; the reader stops here: from now on nobody reads stdout
        assert run.read_until("ready:", 2), run.text() + run.errors.read_text()
        served = load(dns_net, 80, "/")
        assert served == REQUESTS, f"{served} of {REQUESTS} relayed with stdout unread"
        took = run.stop_within(EXIT_WITHIN_S)
        assert took < EXIT_WITHIN_S


# -- the low-volume long-running modes: a pipe already full from the start -----------------------


def test_firewall_run_serves_dns_and_reloads_and_stops_promptly_with_its_log_full(
    lab: Lab, tmp_path: Path
) -> None:
    from egress_router.lab.dns import DnsServer
    from tests.firewall.helpers import CLIENT, allow_name, deny, policy

    DnsServer(lab, {"app.example.test": [WEB]}, ttl=30).start().use_from("node")
    path = policy(tmp_path / "p.json", [allow_name("app.example.test"), deny("0.0.0.0/0")])
    argv = [
        EGRESS_ROUTER, "firewall", "run", f"--pods=myproj={CLIENT}",
        "--dns-listen=198.18.0.1:5353", "--dns-upstream=198.18.0.1:53", str(path),
    ]  # fmt: skip
    dig = ["dig", "+short", "+tries=1", "+time=2", "@198.18.0.1", "-p", "5353"]

    def answers() -> bool:
        return bool(lab.exec("client", [*dig, "app.example.test"]).stdout.strip() == WEB)

    with stalled(lab, "node", argv, {}, both=True, full=True) as run:
        # The agent logs before it serves ("applied: ..."): a blocking write would stop here.
        assert procs.wait_for(lambda: answers() or run.popen.poll() is not None, 20)
        assert run.popen.poll() is None
        for _ in range(3):  # each reload writes a line from a worker thread
            os.killpg(run.popen.pid, signal.SIGHUP)
            time.sleep(0.3)
            assert answers()
        assert run.stop_within(EXIT_WITHIN_S) < EXIT_WITHIN_S
        assert run.popen.returncode == 0


def test_setup_legacy_configures_and_stops_promptly_with_its_debug_log_full(lab: Lab) -> None:
    env = {
        "EGRESS_SOURCE": "198.19.123.99/24",
        "EGRESS_GATEWAY": "198.19.123.1",
        "EGRESS_ROUTER_MODE": "legacy",
        "EGRESS_DESTINATION": "203.0.113.25",
        "EGRESS_ROUTER_DEBUG": "1",  # a line before and after every step, on stderr
    }

    def configured() -> bool:
        return "egress_router" in lab.exec("router", ["nft", "list", "tables"]).stdout

    with stalled(lab, "router", [EGRESS_ROUTER, "setup"], env, both=True, full=True) as run:
        assert procs.wait_for(lambda: configured() or run.popen.poll() is not None, 20)
        assert run.popen.poll() is None
        time.sleep(2.5)  # past the second gratuitous ARP, which logs too
        assert run.stop_within(EXIT_WITHIN_S) < EXIT_WITHIN_S
        assert run.popen.returncode == 0
