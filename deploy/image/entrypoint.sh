#!/bin/sh
# Pick the role as the reference images would have been picked by the pod spec:
#   EGRESS_HTTP_PROXY_DESTINATION set  -> the HTTP proxy container
#   EGRESS_DNS_PROXY_DESTINATION set   -> the DNS proxy container
#   otherwise                          -> the router setup (EGRESS_ROUTER_MODE decides the mode)
# Any explicit arguments are passed to egress-router unchanged (as root: the firewall agent and
# the CNI plugin program the node).
#
# Privileges. The router setup runs as root: it needs NET_ADMIN and NET_RAW (the documents'
# pods give it `privileged: true`). The proxies drop to the unprivileged user egress-router
# (uid 10001) and keep, as ambient capabilities, only what their path needs and the container
# was given: the HTTP proxy none (NET_BIND_SERVICE only for a listen port below 1024), the
# DNS proxy NET_BIND_SERVICE (its ports may be below 1024) and, for its kernel path, NET_ADMIN
# (nftables DNAT and conntrack). A DNS proxy container without NET_ADMIN (the
# documents' pod gives it none) forwards with the user-space relay instead, unless
# EGRESS_DNS_PROXY_FORWARDING says otherwise. Started as a non-root user, or as root without
# CAP_SETUID/CAP_SETGID (capabilities all dropped), the proxy runs as it was started.
set -e

PROXY_UID=10001

# has_cap BIT: is capability number BIT in this process's effective set?
has_cap() {
  mask=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)
  [ $(((0x$mask >> $1) & 1)) -eq 1 ]
}

# as_proxy_user CAPS COMMAND...: run COMMAND as uid 10001 keeping those of CAPS (a comma list
# of name:bit) that the container has.
as_proxy_user() {
  wanted=$1
  shift
  # Already unprivileged (runAsUser), or root without SETUID/SETGID (all capabilities
  # dropped): run as we are, with the capabilities we were given.
  if [ "$(id -u)" -ne 0 ] || ! has_cap 6 || ! has_cap 7; then
    exec "$@"
  fi
  keep=""
  for cap in $(echo "$wanted" | tr ',' ' '); do
    if has_cap "${cap#*:}"; then
      keep="$keep,+${cap%:*}"
    fi
  done
  exec setpriv --reuid="$PROXY_UID" --regid="$PROXY_UID" --clear-groups --no-new-privs \
    --inh-caps="-all$keep" --ambient-caps="-all$keep" -- "$@"
}

if [ "$#" -gt 0 ]; then
  exec egress-router "$@"
fi
if [ -n "${EGRESS_HTTP_PROXY_DESTINATION+x}" ]; then
  port=${EGRESS_HTTP_PROXY_LISTEN_PORT:-8080}
  case $port in
    *[!0-9]* | "") caps="" ;; # egress-router reports the bad value
    *) if [ "$port" -lt 1024 ]; then caps=net_bind_service:10; else caps=""; fi ;;
  esac
  as_proxy_user "$caps" egress-router http-proxy
fi
if [ -n "${EGRESS_DNS_PROXY_DESTINATION+x}" ]; then
  if [ -z "${EGRESS_DNS_PROXY_FORWARDING:-}" ] && ! has_cap 12; then
    export EGRESS_DNS_PROXY_FORWARDING=relay
  fi
  as_proxy_user net_bind_service:10,net_admin:12 egress-router dns-proxy
fi
exec egress-router setup
