"""A small origin server for the HTTP proxy tests (run as a script in the lab's web namespace).

Paths: /chunked (chunked answer), /close (close-delimited answer), /slow and /slower (answer
after 2 s and 5 s), /hang (answers only after 60 s: an upstream that never answers, as far as
a test can tell), /badcl (two Content-Lengths: a smuggling-shaped answer),
/headers (echoes the request head it received), /echo (echoes the request body, any framing).
"""

from __future__ import annotations

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def _send(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/chunked":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/close":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
            self.close_connection = True
        elif self.path == "/badcl":
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
            )
            self.close_connection = True
        elif self.path == "/hang":
            time.sleep(60.0)
            self._send(b"too late\n")
        elif self.path in ("/slow", "/slower"):
            time.sleep(2.0 if self.path == "/slow" else 5.0)
            self._send(b"slow but here\n")
        elif self.path == "/headers":
            self._send(str(self.headers).encode())
        else:
            self._send(b"origin\n")

    def do_POST(self) -> None:
        self._send(self._body())


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer((host, port), Handler).serve_forever()
