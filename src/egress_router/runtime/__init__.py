"""Shared non-kernel adapters: the worker supervisor, Prometheus metrics, the dnspython resolver,
the non-blocking log sink."""
