"""egress-router diagnose: troubleshoot a router namespace in one command (docs/diagnose.md)."""
