"""Shared adapters that are not the kernel: the non-blocking log sink."""
