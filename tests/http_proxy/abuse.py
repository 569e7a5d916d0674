"""Abusive HTTP proxy clients for the limit tests (run as a script in the lab's client namespace).

    abuse.py PROXY_HOST PROXY_PORT PROXY_PID MODE SECONDS ORIGIN WEB

Modes (each one client connection, bounded by SECONDS):
  flood     a request the upstream never answers, then tiny pipelined requests as fast as the
            proxy takes them;
  line      a request the upstream never answers, then a pipelined head whose field line never
            ends;
  idle-line a head whose field line never ends, nothing in flight;
  trickle   a request the upstream never answers, then a pipelined head one byte every 0.1 s;
  fields    one head of 20,000 ``a:b`` fields (100 KB on the wire).
Prints one JSON object: bytes the proxy accepted, its RSS growth (KiB) and CPU time (s) over the
abuse (read from /proc: the same pid namespace), the answer's first line and when it came.
"""

from __future__ import annotations

import json
import os
import select
import socket
import sys
import time


def proxy_usage(pid: int) -> tuple[int, float]:
    """(RSS in KiB, user+system CPU seconds) of the proxy process."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    host, port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    mode, seconds, origin, web = sys.argv[4], float(sys.argv[5]), sys.argv[6], sys.argv[7]
    hang = f"GET http://{origin}/hang HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    rss0, cpu0 = proxy_usage(pid)
    started = time.monotonic()
    sock = socket.create_connection((host, port))
    sock.setblocking(False)
    if mode == "flood":
        first, block = hang, f"GET http://{web}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode() * 2000
    elif mode == "line":
        first = hang + f"GET http://{web}/ HTTP/1.1\r\nX-Long: ".encode()
        block = b"a" * 65536
    elif mode == "idle-line":
        first, block = f"GET http://{web}/ HTTP/1.1\r\nX-Long: ".encode(), b"a" * 65536
    elif mode == "trickle":
        first, block = hang + f"GET http://{web}/ HTTP/1.1\r\n".encode(), b"X"
    elif mode == "fields":
        first = f"GET http://{web}/ HTTP/1.1\r\nHost: x\r\n".encode() + b"a:b\r\n" * 20_000
        first, block = first + b"\r\n", b""
    else:
        raise SystemExit(f"unknown mode {mode}")
    sent = 0
    answer = b""
    answered_at = -1.0
    closed = False
    pending = first
    deadline = started + seconds
    while time.monotonic() < deadline and not closed:
        if not pending and block:
            pending = block
        # Wait for the socket (never spin: the abuser's own CPU must not slow the others).
        readable, writable, _ = select.select([sock], [sock] if pending else [], [], 0.05)
        if writable:
            try:
                n = sock.send(pending)
                sent += n
                pending = pending[n:]
            except BlockingIOError:
                pass
            except OSError:
                closed = True
        if readable:
            try:
                data = sock.recv(65536)
                if not data:
                    closed = True
                elif not answer:
                    answered_at = time.monotonic() - started
                answer += data
            except BlockingIOError:
                pass
            except OSError:
                closed = True
        if mode == "trickle":
            time.sleep(0.1)
    rss1, cpu1 = proxy_usage(pid)
    sock.close()
    print(
        json.dumps(
            {
                "sent": sent,
                "rss_growth_kib": rss1 - rss0,
                "cpu_s": round(cpu1 - cpu0, 3),
                "answer": answer.split(b"\r\n", 1)[0].decode("latin-1"),
                "answers": answer.count(b"HTTP/1.1 "),
                "answered_at": round(answered_at, 3),
                "closed": closed,
                "seconds": round(time.monotonic() - started, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
