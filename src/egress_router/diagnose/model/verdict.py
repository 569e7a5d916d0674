"""From observations to findings and one verdict: the troubleshooting steps as a pure function.

Owns: the checks the reference blog does by hand (interface up with the reserved address,
routes through the gateway, the gateway answering ARP, the ruleset in place and hit, the
destinations answering from the reserved address), each turned into ``Finding`` values, and
the verdict: the cause of the first failing check, in the order a packet needs them.
Must not: observe anything or print anything (``diagnose.gather`` and ``diagnose.report``).

The order is the dependency order of the data path, so the verdict names the most basic
thing that is broken (a down macvlan also loses its routes; it is reported as down):

    macvlan present, up, carrier     -> MACVLAN_DOWN
    EGRESS_SOURCE on the macvlan     -> ADDRESS_MISSING
    gateway inside the source subnet -> WRONG_GATEWAY
    default route via the gateway    -> MISSING_ROUTE, or WRONG_GATEWAY (another one is live)
    gateway answers ARP              -> MAC_FILTERED (answers another MAC only), GATEWAY_NO_ARP
    our table present and current    -> RULESET_MISSING
    named destinations resolve       -> NAME_UNRESOLVED
    test connections                 -> WRONG_GATEWAY (ARP answered, no destination reachable),
                                        MISSING_ROUTE, DESTINATION_REFUSING, DESTINATION_UNREACHABLE
    clients refused, no rule hit     -> RULE_NEVER_HIT
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from egress_router.diagnose.model.observations import Expected, Observed, Outcome, RouteView


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"  # worth knowing, not a failure (exit status stays 0)
    FAIL = "fail"


class Cause(StrEnum):
    """The verdict: the likely cause of a broken router (``OK`` when nothing failed)."""

    OK = "ok"
    MACVLAN_DOWN = "macvlan down"
    ADDRESS_MISSING = "address missing"
    WRONG_GATEWAY = "wrong gateway"
    MISSING_ROUTE = "missing route"
    GATEWAY_NO_ARP = "gateway not answering ARP"
    MAC_FILTERED = "MAC filtered"
    RULESET_MISSING = "ruleset missing or stale"
    NAME_UNRESOLVED = "name not resolving"
    DESTINATION_REFUSING = "destination refusing"
    DESTINATION_UNREACHABLE = "destination unreachable"
    RULE_NEVER_HIT = "rule never hit"


@dataclass(frozen=True)
class Finding:
    """One check's result; ``cause`` is set on failures (and on warnings that hint at one)."""

    check: str  # interface, address, gateway, route, arp, ruleset, dns, connect, counters
    status: Status
    message: str
    cause: Cause | None = None


@dataclass(frozen=True)
class Diagnosis:
    findings: tuple[Finding, ...]
    cause: Cause
    summary: str

    @property
    def healthy(self) -> bool:
        return self.cause is Cause.OK


def _ok(check: str, message: str) -> Finding:
    return Finding(check, Status.OK, message)


def _fail(check: str, cause: Cause, message: str) -> Finding:
    return Finding(check, Status.FAIL, message, cause)


def _interface(exp: Expected, obs: Observed) -> list[Finding]:
    link = obs.macvlan
    if not link.exists:
        return [_fail("interface", Cause.MACVLAN_DOWN, f"{exp.macvlan} does not exist")]
    if not link.admin_up:
        return [_fail("interface", Cause.MACVLAN_DOWN, f"{exp.macvlan} is down (set down)")]
    if not link.carrier:
        return [
            _fail(
                "interface",
                Cause.MACVLAN_DOWN,
                f"{exp.macvlan} is up but has no carrier (its parent on the node is down)",
            )
        ]
    found = [_ok("interface", f"{exp.macvlan} up, MAC {link.mac}")]
    if exp.source not in link.addresses:
        have = ", ".join(map(str, link.addresses)) or "none"
        found.append(
            _fail(
                "address",
                Cause.ADDRESS_MISSING,
                f"EGRESS_SOURCE {exp.source} is not on {exp.macvlan} (has: {have})",
            )
        )
    else:
        found.append(_ok("address", f"{exp.source} on {exp.macvlan}"))
    return found


def _gateway_in_subnet(exp: Expected) -> list[Finding]:
    net = exp.source.network
    if net.prefixlen < 32 and exp.gateway not in net:
        return [
            _fail(
                "gateway",
                Cause.WRONG_GATEWAY,
                f"EGRESS_GATEWAY {exp.gateway} is outside the source subnet {net}",
            )
        ]
    return []


def _routes(exp: Expected, obs: Observed) -> list[Finding]:
    defaults = [r for r in obs.routes if r.dst is None or r.dst.prefixlen == 0]
    ours = RouteView(None, exp.gateway, exp.macvlan)
    if ours in defaults:
        found = [_ok("route", f"default via {exp.gateway} dev {exp.macvlan}")]
    elif any(r.device == exp.macvlan and r.gateway not in (None, exp.gateway) for r in defaults):
        live = next(r for r in defaults if r.device == exp.macvlan)
        return [
            _fail(
                "route",
                Cause.WRONG_GATEWAY,
                f"the live default route is '{live}', EGRESS_GATEWAY says {exp.gateway}",
            )
        ]
    elif defaults:
        live_text = "; ".join(map(str, defaults))
        return [
            _fail(
                "route",
                Cause.MISSING_ROUTE,
                f"no default route via {exp.gateway} dev {exp.macvlan} (live: {live_text})",
            )
        ]
    else:
        return [_fail("route", Cause.MISSING_ROUTE, "no default route")]
    via = obs.gateway_route
    if via is not None and via.device != exp.macvlan:
        found.append(
            _fail(
                "route",
                Cause.MISSING_ROUTE,
                f"the gateway {exp.gateway} is reached by {via.device}, not {exp.macvlan}",
            )
        )
    cluster = [str(r) for r in obs.routes if r.device == exp.cluster]
    if cluster:
        found.append(_ok("route", f"cluster side: {'; '.join(cluster)}"))
    return found


def _arp(exp: Expected, obs: Observed) -> list[Finding]:
    probe = obs.arp
    if probe is None:
        return []
    if probe.answered:
        return [
            _ok(
                "arp",
                f"{exp.gateway} is at {probe.mac} ({probe.elapsed_ms:.1f} ms from {exp.source_ip})",
            )
        ]
    anon = obs.anonymous_arp
    if anon is not None and anon.answered:
        return [
            _fail(
                "arp",
                Cause.MAC_FILTERED,
                f"{exp.gateway} answers ARP from another MAC ({anon.mac}) but not from "
                f"{exp.macvlan}'s MAC {obs.macvlan.mac}: frames of that MAC are dropped on "
                "the way (port security, hypervisor without promiscuous mode, a MAC filter)",
            )
        ]
    why = f" ({probe.error})" if probe.error else ""
    return [
        _fail(
            "arp",
            Cause.GATEWAY_NO_ARP,
            f"no ARP answer from {exp.gateway} in {probe.elapsed_ms:.0f} ms{why}",
        )
    ]


def _ruleset(exp: Expected, obs: Observed) -> list[Finding]:
    rs = obs.ruleset
    if exp.table is None or rs is None:
        return []
    if not rs.present:
        return [_fail("ruleset", Cause.RULESET_MISSING, f"table ip {rs.table} is missing")]
    if not rs.current:
        return [
            _fail(
                "ruleset",
                Cause.RULESET_MISSING,
                f"table ip {rs.table} differs from what the EGRESS_* variables describe "
                "(stale: setup not run with this configuration)",
            )
        ]
    return [_ok("ruleset", f"table ip {rs.table} matches the configuration")]


def _dns(obs: Observed) -> list[Finding]:
    found = []
    for r in obs.resolutions:
        if r.error or not r.addresses:
            why = r.error or "no IPv4 address"
            found.append(_fail("dns", Cause.NAME_UNRESOLVED, f"{r.name}: {why}"))
        else:
            found.append(_ok("dns", f"{r.name} -> {', '.join(map(str, r.addresses))}"))
    return found


def _connections(obs: Observed) -> list[Finding]:
    tested = [c for c in obs.connections if c.outcome is not Outcome.NOT_TESTED]
    found: list[Finding] = []
    arp_ok = obs.arp is not None and obs.arp.answered
    lost = (Outcome.TIMEOUT, Outcome.UNREACHABLE)
    if tested and arp_ok and all(c.outcome in lost for c in tested):
        found.append(
            _fail(
                "connect",
                Cause.WRONG_GATEWAY,
                "the gateway answers ARP but no destination is reachable through it: "
                "it does not forward (not the router of this network?)",
            )
        )
    causes = {
        Outcome.REFUSED: Cause.DESTINATION_REFUSING,
        Outcome.TIMEOUT: Cause.DESTINATION_UNREACHABLE,
        Outcome.UNREACHABLE: Cause.DESTINATION_UNREACHABLE,
        Outcome.NO_ROUTE: Cause.MISSING_ROUTE,
        Outcome.ERROR: Cause.DESTINATION_UNREACHABLE,
    }
    for c in obs.connections:
        text = c.target.label
        if c.target.is_name or c.target.port is None:  # say which address and port were tried
            text += f" ({c.address or 'unresolved'}" + (f":{c.port})" if c.port else ")")
        text += f": {c.outcome.value}"
        text += f" ({c.detail})" if c.detail else ""
        if c.outcome is Outcome.CONNECTED:
            found.append(_ok("connect", f"{text} in {c.elapsed_ms:.1f} ms"))
        elif c.outcome is Outcome.NOT_TESTED:
            found.append(Finding("connect", Status.WARN, text))
        else:
            found.append(_fail("connect", causes[c.outcome], text))
    return found


def _conntrack(obs: Observed) -> list[Finding]:
    if not obs.conntrack:
        return []
    text = ", ".join(f"{dst} {n}" for dst, n in obs.conntrack.items())
    return [_ok("conntrack", f"tracked connections per destination: {text}")]


def _counters(obs: Observed) -> list[Finding]:
    rs = obs.ruleset
    if rs is None or not rs.present or rs.refused_packets is None:
        return []
    hit, refused = rs.redirected_packets or 0, rs.refused_packets
    text = f"{hit} connection(s) redirected, {refused} refused (port in no destination line)"
    if refused and not hit:
        return [
            _fail(
                "counters",
                Cause.RULE_NEVER_HIT,
                f"no redirect rule was ever hit but {refused} client connection(s) were "
                "refused: clients use a port that no EGRESS_DESTINATION line maps",
            )
        ]
    if refused:
        return [Finding("counters", Status.WARN, text, Cause.RULE_NEVER_HIT)]
    return [_ok("counters", text)]


def diagnose(expected: Expected, observed: Observed) -> Diagnosis:
    """All findings, and the verdict: the cause of the first failure in data-path order."""
    findings = [
        *_interface(expected, observed),
        *_gateway_in_subnet(expected),
        *_routes(expected, observed),
        *_arp(expected, observed),
        *_ruleset(expected, observed),
        *_dns(observed),
        *_connections(observed),
        *_conntrack(observed),
        *_counters(observed),
    ]
    findings += [Finding("observe", Status.WARN, e) for e in observed.errors]
    failed = next((f for f in findings if f.status is Status.FAIL), None)
    if failed is None or failed.cause is None:
        return Diagnosis(tuple(findings), Cause.OK, "OK: the router is healthy")
    return Diagnosis(tuple(findings), failed.cause, f"{failed.cause.value}: {failed.message}")
