#!/bin/sh
# Pick the role as the reference images would have been picked by the pod spec:
#   EGRESS_HTTP_PROXY_DESTINATION set  -> the HTTP proxy container
#   EGRESS_DNS_PROXY_DESTINATION set   -> the DNS proxy container
#   otherwise                          -> the router setup (EGRESS_ROUTER_MODE decides the mode)
# Any explicit arguments are passed to egress-router unchanged.
set -e
if [ "$#" -gt 0 ]; then
  exec egress-router "$@"
fi
if [ -n "${EGRESS_HTTP_PROXY_DESTINATION+x}" ]; then
  exec egress-router http-proxy
fi
if [ -n "${EGRESS_DNS_PROXY_DESTINATION+x}" ]; then
  exec egress-router dns-proxy
fi
exec egress-router setup
