"""The HTTP forward proxy's asyncio adapters (``proxy.http``), until they move into ``http_proxy``.

The byte relay is the hot path: asyncio Protocols with flow control, no per-chunk objects.
Decisions (allowed? where to?) are pure functions from ``egress_router.http_proxy.model``.
"""
