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

# The EgressRouter of the OpenShift 4 docs and the network operator's docs (notes
# egress-router-cni.md §5.3), with its optional fallbackIP filled in.
EGRESS_ROUTER = """\
apiVersion: network.operator.openshift.io/v1
kind: EgressRouter
metadata:
  name: egress-router-redirect
spec:
  networkInterface:
    macvlan:
      mode: Bridge
  addresses: [
    {
      ip: "192.168.12.99/24",
      gateway: "192.168.12.1"
    }
  ]
  mode: Redirect
  redirect: {
    redirectRules: [
      {
        destinationIP: "10.0.0.99",
        port: 80,
        protocol: UDP
      },
      {
        destinationIP: "203.0.113.26",
        port: 8080,
        targetPort: 80,
        protocol: TCP
      },
      {
        destinationIP: "203.0.113.27",
        port: 8443,
        targetPort: 443,
        protocol: TCP
      }
    ],
    fallbackIP: "203.0.113.28"
  }
"""

# The origin e2e fixtures egress-router-cni-v4-cr.yaml and -v6-cr.yaml (notes §10).
EGRESS_ROUTER_E2E_V4 = """\
apiVersion: network.operator.openshift.io/v1
kind: EgressRouter
metadata:
  name: egress-router-cni-v4
spec:
  addresses:
  - ip: 192.168.3.10/24
    gateway: 192.168.3.1
  mode: Redirect
  redirect:
    redirectRules:
    - {destinationIP: 10.100.3.0, port: 80, protocol: UDP}
    - {destinationIP: 203.0.113.26, port: 8080, targetPort: 80, protocol: SCTP}
    - {destinationIP: 203.0.113.27, port: 8443, targetPort: 443, protocol: TCP}
"""

EGRESS_ROUTER_E2E_V6 = """\
apiVersion: network.operator.openshift.io/v1
kind: EgressRouter
metadata:
  name: egress-router-cni-v6
spec:
  addresses:
  - ip: 192:168:3::10/64
    gateway: 192:168:3::1
  mode: Redirect
  redirect:
    redirectRules:
    - {destinationIP: "10:100:3::0", port: 80, protocol: UDP}
    - {destinationIP: "203:0:113::26", port: 8080, targetPort: 80, protocol: SCTP}
    - {destinationIP: "203:0:113::27", port: 8443, targetPort: 443, protocol: TCP}
"""

# An EgressFirewall as the OVN-Kubernetes and OpenShift 4 docs write one (notes egress-firewall.md
# §4.1): CIDR, DNS name, a one-label wildcard, ports, a node selector, and a final Deny.
EGRESS_FIREWALL = """\
apiVersion: k8s.ovn.org/v1
kind: EgressFirewall
metadata:
  name: default
spec:
  egress:
  - type: Allow
    to:
      cidrSelector: 1.2.3.0/24
  - type: Allow
    to:
      dnsName: www.example.com
  - type: Allow
    to:
      dnsName: "*.example.org"
    ports:
    - protocol: TCP
      port: 443
  - type: Allow
    to:
      nodeSelector:
        matchLabels:
          region: east
  - type: Allow
    to:
      cidrSelector: 2001:db8::/32
    ports:
    - protocol: UDP
      port: 53
    - protocol: SCTP
  - type: Deny
    to:
      cidrSelector: 0.0.0.0/0
"""
