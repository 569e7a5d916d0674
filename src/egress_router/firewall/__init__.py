"""The egress firewall agent: applies compiled policies, keeps DNS-named rules current."""
