"""Thin adapters for the kernel: netlink (pyroute2), nftables (nft JSON), sysctl, raw ARP.

Each module is the only one that talks to its outside system, and wraps every failure of it
into ``DataplaneError``. Decisions are made in ``egress_router.core``; these modules only act.
"""
