"""User-space relays: the TCP relay (``proxy.tcp``, the dns-proxy mode) and the worker supervisor.

The byte relay is the hot path: asyncio Protocols with flow control, no per-chunk objects.
Decisions (allowed? where to?) are pure functions from ``egress_router.core``.
"""
