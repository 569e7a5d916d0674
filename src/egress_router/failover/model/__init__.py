"""Pure parts of failover: settings and the role state machine (no I/O)."""
