"""Thin kernel adapters: netlink (pyroute2), nftables (nft JSON), sysctl, raw ARP, conntrack.

Each module is the only one that talks to its outside system, and wraps every failure of it
into ``DataplaneError``. Decisions are made in the features' ``model`` packages; these
modules only act.
"""
