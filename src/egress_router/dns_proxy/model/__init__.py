"""The dns-proxy model: the destination grammar and settings, the nftables plan.

Pure: no I/O and no adapter imports (an import-linter contract enforces it).
"""
