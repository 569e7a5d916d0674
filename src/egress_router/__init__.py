"""egress-router: a reserved source IP for selected pods, and an egress firewall.

Layout (see docs/architecture.md); layers run one way, cli -> commands -> features -> runtime
-> kernel -> common -> errors, and import-linter enforces them:
  errors.py    the error tree
  common/      pure shared helpers (values, lines, nft builders, nft_text, dns_schedule)
  kernel/      kernel adapters: netlink, nftables, sysctl, ARP, conntrack
  runtime/     shared non-kernel adapters: workers, metrics, resolver
  redirect/    the redirect mode: model/ (env, destinations, plan, rules), apply, report
  cni/         the CNI plugin: model/ (config, skel, egressrouter), plugin
  dns_proxy/   the dns-proxy mode: model/ (destinations, nft), forwarders, service, relay
  firewall/    the egress firewall: model/ (policy, decide, plan, render, dnsrules), agent,
               loop, dns_server, resolver
  http_proxy/  the HTTP proxy: model/ (rules, messages, settings, exchange core), client,
               upstream, dial, splice, worker, server
  lab/         network-namespace topologies for the demo, tests and benchmarks
  commands/    the typer commands;  cli.py  the command line
"""

__version__ = "0.1.0"
