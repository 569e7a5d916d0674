"""The DNS proxy at run time: following names and driving a forwarding path (kernel or relay)."""
