"""egress-router: a reserved source IP for selected pods, and an egress firewall.

Layout (see docs/architecture.md):
  core/       pure parsing, policy and planning; no I/O
  dataplane/  the kernel: netlink (pyroute2), nftables (nft -j), sysctl, raw ARP
  proxy/      the user-space relays (HTTP forward proxy, TCP relay)
  firewall/   the egress firewall agent (policy watch, DNS, reload)
  lab/        network-namespace topologies for the demo, tests and benchmarks
  cli.py      the command line
"""

__version__ = "0.1.0"
