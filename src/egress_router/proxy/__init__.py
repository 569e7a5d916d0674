"""User-space relays: the HTTP forward proxy (``proxy.http``) and the TCP relay (``proxy.tcp``).

The byte relay is the hot path: asyncio Protocols with flow control, no per-chunk objects.
Decisions (allowed? where to?) are pure functions from ``egress_router.core``.
"""
