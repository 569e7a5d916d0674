"""Network-namespace labs: the blog topology, real servers (nginx, dnsmasq) and processes."""
