"""One request/response exchange or one tunnel, and its access-log line.

Owns: the per-exchange record the connection core and the adapters share (target, framing,
decision, byte counters, timing) and its one-line structured rendering.
Must not: do I/O or read a clock (times are passed in; the worker writes the lines).
"""

from __future__ import annotations

from egress_router.http_proxy.model.messages import Head, Headers, Target


class Exchange:
    """Mutable on purpose: updated per chunk on the hot path (``__slots__``, no dataclass)."""

    __slots__ = (
        "address",
        "body_chunked",
        "down_bytes",
        "error",
        "head",
        "headers",
        "is_connect",
        "keep_alive",
        "logged",
        "method",
        "pending",
        "request_done",
        "response_started",
        "rule",
        "rule_id",
        "started",
        "status",
        "target",
        "up_bytes",
        "url",
        "version11",
    )

    def __init__(self, started: float) -> None:
        self.url = b""
        self.method = b""
        self.headers: Headers = []
        self.head: Head | None = None
        self.target: Target | None = None
        self.is_connect = False
        self.version11 = True
        self.keep_alive = True
        self.body_chunked = False  # request body re-chunked upstream
        self.request_done = False  # the whole request (head and body) has been received
        self.response_started = False  # bytes of the answer reached the client
        self.pending: list[bytes] = []  # request bytes for the upstream, not yet sent
        self.address = "-"
        self.rule = "-"  # the access log's rule field (text)
        self.rule_id = "none"  # the metric label: a Rule.label or a rules.Fixed id, never text
        self.status = 0
        self.error = ""
        self.up_bytes = 0  # client -> upstream (body or tunnel payload)
        self.down_bytes = 0  # upstream -> client
        self.started = started  # event-loop time of the head's first byte
        self.logged = False

    def log_line(self, client: str, ts: float, now: float) -> str:
        """``key=value`` fields, values without spaces (quoted when they could contain any);
        ``ts`` is the wall-clock time to print, ``now`` the event-loop time (for ``ms``)."""
        target = self.target
        host = target.host if target else "-"
        port = target.port if target else 0
        method = self.method.decode("latin-1") or "-"
        ms = (now - self.started) * 1000.0
        rule = self.rule.replace('"', "'")
        line = (
            f"ts={ts:.3f} client={client} method={method} host={host} port={port} "
            f'address={self.address} rule="{rule}" status={self.status} '
            f"bytes_up={self.up_bytes} bytes_down={self.down_bytes} ms={ms:.2f}"
        )
        if self.error:
            line += f' error="{self.error}"'
        return line + "\n"
