"""The reference documents' examples, verbatim, in one place for every test that uses them.

Sources: ocp3-egress-firewall-and-router.ja.txt (redirect, ConfigMap, HTTP proxy, DNS proxy and
EgressNetworkPolicy examples) and blog-egress-router.en.txt (single destination).
"""

from __future__ import annotations

# Redirect mode: a single destination IP (OCP 3 docs, 8.6.1.1).
REDIRECT_SINGLE = "203.0.113.25"

# Redirect mode: several destinations with a fallback (OCP 3 docs, 8.6.1.2).
REDIRECT_MULTI = (
    "80 tcp 203.0.113.25\n8080 tcp 203.0.113.26 80\n8443 tcp 203.0.113.26 443\n203.0.113.27\n"
)

# Redirect mode: the ConfigMap file with comments and blank lines (OCP 3 docs, 8.6.1.3).
REDIRECT_CONFIGMAP = (
    '# Egress routes for Project "Test", version 3\n'
    "\n"
    "80   tcp 203.0.113.25\n"
    "\n"
    "8080 tcp 203.0.113.26 80\n"
    "8443 tcp 203.0.113.26 443\n"
    "\n"
    "# Fallback\n"
    "203.0.113.27\n"
)

# HTTP proxy mode (OCP 3 docs, 8.6.1.4).
HTTP_PROXY = "!*.example.com\n!192.168.1.0/24\n*\n"

# DNS proxy mode (OCP 3 docs, 8.6.1.5).
DNS_PROXY = """\
# Egress routes for Project "Foo", version 5
80 203.0.113.25
100 example.com
8080 203.0.113.26 80
8443 foobar.com 443
"""

# Egress firewall (OCP 3 docs, 8.6), exactly as printed.
EGRESS_NETWORK_POLICY = (
    '{ "kind": "EgressNetworkPolicy", "apiVersion": "v1", "metadata": { "name": "default" }, '
    '"spec": { "egress": [ { "type": "Allow", "to": { "cidrSelector": "1.2.3.0/24" } }, '
    '{ "type": "Allow", "to": { "dnsName": "www.foo.com" } }, '
    '{ "type": "Deny", "to": { "cidrSelector": "0.0.0.0/0" } } ] } }'
)
