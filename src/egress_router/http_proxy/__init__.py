"""The HTTP forward proxy (its asyncio adapters still live in ``egress_router.proxy.http``)."""
