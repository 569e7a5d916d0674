"""What a router namespace should look like, from the same variables ``setup`` reads.

Owns: turning the ``EGRESS_*`` mapping (``EGRESS_DESTINATION`` already read from its file by
the command) into ``Expected``: the reserved address, the gateway, the interfaces, our table
in this mode and the destinations to test (redirect lines, or the DNS proxy's lines in
dns-proxy mode). Bad input raises the same one-line ``VariableError`` as ``setup``.
Must not: do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from egress_router.diagnose.model.observations import Expected, Target
from egress_router.dns_proxy.model.destinations import DESTINATION_VAR, parse_destinations
from egress_router.redirect.model import rules as redirect_rules
from egress_router.redirect.model.destinations import Destination
from egress_router.redirect.model.env import Mode, parse_router_env

DNS_PROXY_TABLE = "egress_dns_proxy"


def redirect_targets(destination: Destination) -> tuple[Target, ...]:
    """One target per port line (remote address and port), and the fallback (any port)."""
    targets = [
        Target(
            label=f"line {r.line}: {r.protocol.value} {r.port} -> {r.address}:{r.remote_port}",
            host=str(r.address),
            port=r.remote_port,
            protocol=r.protocol.value,
            local_port=r.port,
        )
        for r in destination.rules
    ]
    if destination.fallback is not None:
        targets.append(
            Target(
                label=f"fallback -> {destination.fallback}",
                host=str(destination.fallback),
                port=None,
            )
        )
    return tuple(targets)


def expected_from_env(
    env: Mapping[str, str], *, macvlan: str | None = None, cluster: str | None = None
) -> Expected:
    """The expectation for ``env`` (unit-test mode is diagnosed as init: same state)."""
    mode_text = (env.get("EGRESS_ROUTER_MODE") or "").strip()
    if mode_text == Mode.UNIT_TEST.value:
        env = {**env, "EGRESS_ROUTER_MODE": Mode.INIT.value}
    router = parse_router_env(env, macvlan=macvlan, cluster=cluster)
    targets: tuple[Target, ...] = ()
    table: str | None = None
    if router.destination is not None:
        targets = redirect_targets(router.destination)
        table = redirect_rules.TABLE
    elif router.mode is Mode.DNS_PROXY and (env.get(DESTINATION_VAR) or "").strip():
        targets = tuple(
            Target(
                label=f"line {d.line}: {d.local_port} -> {d.host}:{d.remote_port}",
                host=d.host,
                port=d.remote_port,
                local_port=d.local_port,
            )
            for d in parse_destinations(env.get(DESTINATION_VAR))
        )
    return Expected(
        source=router.source.interface,
        gateway=router.gateway,
        macvlan=router.interfaces.macvlan,
        cluster=router.interfaces.cluster,
        mode=router.mode.value,
        table=table,
        targets=targets,
    )
