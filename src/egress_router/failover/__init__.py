"""Active/standby failover of the legacy redirect router (docs/failover.md)."""
