"""The egress firewall's pure core: policies, decisions and the nftables plan (no I/O)."""
