"""A bounded HTTP load client run inside a lab namespace while a router reloads.

Two threads for ``seconds``: one keeps ONE connection open and sends requests on it
(keep-alive: proves established connections survive), one opens a new connection per request
(proves no new connection fails during the swap). Prints one JSON line with the counts, the
failures and the bodies each thread saw. Bounded: at most ``MAX_REQUESTS`` per thread.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

SCRIPT = r"""
import http.client, json, sys, threading, time
host, port, path, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
MAX_REQUESTS = 400  # below nginx's keepalive_requests (1000): the server never closes first
PAUSE = seconds / MAX_REQUESTS
out = {}

def run(name, keep):
    ok, failed, bodies, errors = 0, 0, {}, []
    end = time.monotonic() + seconds
    conn = http.client.HTTPConnection(host, port, timeout=5)
    n = 0
    while time.monotonic() < end and n < MAX_REQUESTS:
        n += 1
        try:
            if not keep:
                conn = http.client.HTTPConnection(host, port, timeout=5)
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read().decode().strip()
            if resp.status == 200:
                ok += 1
                bodies[body] = bodies.get(body, 0) + 1
            else:
                failed += 1
                errors.append(f"status {resp.status}")
            if not keep:
                conn.close()
        except Exception as exc:
            failed += 1
            errors.append(repr(exc))
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=5)
        time.sleep(PAUSE)
    out[name] = {"ok": ok, "failed": failed, "bodies": bodies, "errors": errors[:5]}

threads = [threading.Thread(target=run, args=(n, k)) for n, k in (("kept", True), ("fresh", False))]
for t in threads: t.start()
print("started", flush=True)
for t in threads: t.join()
print(json.dumps(out), flush=True)
"""


class Load:
    """The client running in ``namespace``; ``result()`` waits for its JSON line."""

    def __init__(self, namespace: str, host: str, port: int, path: str, seconds: float) -> None:
        argv = ["ip", "netns", "exec", namespace, sys.executable, "-c", SCRIPT]
        argv += [host, str(port), path, str(seconds)]
        self.seconds = seconds
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=os.environ)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "started"

    def result(self) -> dict[str, dict[str, object]]:
        try:
            out, _ = self.proc.communicate(timeout=self.seconds + 60)
        finally:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()
        data: dict[str, dict[str, object]] = json.loads(out.strip().splitlines()[-1])
        return data
