"""The dns-proxy mode: TCP forwarding to named destinations (kernel DNAT or user-space relay)."""
