"""The egress-router CNI plugin executable."""
