"""The ``EgressRouter`` custom resource (network.operator.openshift.io/v1) and what it renders.

Owns: validating a CR (already decoded from YAML/JSON) into a frozen ``EgressRouter`` per the
CRD schema, and rendering the objects the cluster network operator would create for it: the
NetworkAttachmentDefinition ``egress-router-cni-nad`` (the CNI config as ``spec.config``) and
the Deployment ``egress-router-cni-deployment`` (pods labelled ``app: egress-router-cni``).
Must not: read files or talk to a cluster (``commands.cni`` reads the file and prints YAML).

Fixes over the reference renderer (documented in docs/cni.md): ``fallbackIP`` reaches the
plugin (which honours it as the last, catch-all destination), a non-default macvlan mode
or an explicit master is rendered as ``interfaceArgs`` instead of being dropped, and every
``spec.addresses`` entry reaches the plugin (``ip.addresses``, with each entry's gateway in the
extension ``ip.gateways``) instead of only the first. The router pod has one default route per
family, so the addresses of one family must share one gateway: a different one is an error
naming its field. IPv6 addresses, destinations and fallbacks work as IPv4 ones do (a router
may hold both families); a destination needs an address of its family to be sent from, and an
IPv6 spelling of an IPv4 address (``::ffff:203.0.113.5``) is refused: write it as IPv4.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from egress_router.cni.model.config import DEFAULT_LOG_FILE
from egress_router.common.names import is_interface_name
from egress_router.common.networks import CidrError, CidrPart, HostBits, parse_cidr
from egress_router.common.values import IPAddress, ipv4_alias, parse_ip, special_kind
from egress_router.errors import PolicyError, brief
from egress_router.redirect.model.destinations import unfit_destination

API_VERSION = "network.operator.openshift.io/v1"
KIND = "EgressRouter"
NAD_NAME = "egress-router-cni-nad"
DEPLOYMENT_NAME = "egress-router-cni-deployment"
APP_LABEL = {"app": "egress-router-cni"}
DEFAULT_IMAGE = "quay.io/openshift/origin-egress-router-cni:latest"
PROTOCOLS = ("TCP", "UDP", "SCTP")
MACVLAN_MODES = ("Bridge", "Private", "VEPA", "Passthru")
# Names and namespaces: the API server enforces DNS-1123; we only keep out what could not be
# rendered back safely (blanks, control characters, more than 253 characters). The reference
# templates use ``<ns>`` as a placeholder, which this accepts.
_NAME = re.compile(r"\A[!-~]{1,253}\Z")
_UID = re.compile(r"\A[A-Za-z0-9-]{1,64}\Z")


@dataclass(frozen=True)
class RedirectRule:
    destination_ip: str
    port: int
    protocol: str
    target_port: int | None = None

    def as_destination(self) -> str:
        text = f"{self.port} {self.protocol} {self.destination_ip}"
        return text if self.target_port is None else f"{text} {self.target_port}"


@dataclass(frozen=True)
class RouterAddress:
    """One ``spec.addresses`` entry: the reserved address (CIDR, as written) and its gateway."""

    ip: str
    gateway: str


@dataclass(frozen=True)
class EgressRouter:
    name: str
    namespace: str
    uid: str | None
    addresses: tuple[RouterAddress, ...]  # at least one; all with the same gateway
    rules: tuple[RedirectRule, ...]
    fallback_ip: str | None
    mode: str  # macvlan mode as in the CR (Bridge, ...)
    master: str | None

    @property
    def address(self) -> str:
        """``addresses[0].ip`` (CIDR)."""
        return self.addresses[0].ip

    @property
    def gateway(self) -> str:
        """The gateway of the first address's family (the same for its whole family)."""
        return self.addresses[0].gateway

    @property
    def gateways(self) -> tuple[str, ...]:
        """One gateway per family present, in the order the families first appear."""
        out: dict[int, str] = {}
        for address in self.addresses:
            out.setdefault(ipaddress.ip_address(address.gateway).version, address.gateway)
        return tuple(out.values())


def _fail(path: str, message: str, source: str | None) -> PolicyError:
    return PolicyError(message, source=source, field=path)


def _map(value: Any, path: str, source: str | None, known: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, f"must be an object, got {brief(value, as_json=True)}", source)
    for key in value:
        if key not in known:
            raise _fail(f"{path}.{key}", "unknown field", source)
    return value


# What the CNI plugin refuses where (``cni.model.config``), refused here first so a bad router
# is reported on its own field instead of failing in the pod (zones such as ``%eth0`` are
# refused by the strict parsers): for a destination no IPv6 link-local (a DNAT target has no
# zone); for a gateway only the kinds that are never a next hop (an IPv6 gateway is often
# link-local).
_NOUN = {"destination": "a destination", "gateway": "a gateway", "address": "an egress address"}
_REFUSED = {
    "destination": frozenset({"loopback", "multicast", "unspecified", "broadcast", "link-local"}),
    "gateway": frozenset({"loopback", "multicast", "unspecified"}),
    "address": frozenset({"loopback", "multicast", "unspecified", "broadcast", "link-local"}),
}


def _check_kind(address: IPAddress, role: str, path: str, source: str | None) -> None:
    kind = unfit_destination(address) if role == "destination" else special_kind(address)
    if kind in _REFUSED[role]:
        raise _fail(path, f"{address} cannot be {_NOUN[role]} ({kind})", source)


def _ip(value: Any, path: str, source: str | None, role: str = "destination") -> str:
    """An IP address, checked, and kept as written: the plugin logs its destinations verbatim
    (``IP Destinations: [80 UDP 10:100:3::0 ...]``, as the reference's e2e test reads them)."""
    text = value if isinstance(value, str) else ""
    try:
        address: IPAddress = parse_ip(text)
    except ValueError:
        raise _fail(
            path, f"must be an IP address, got {brief(value, as_json=True)}", source
        ) from None
    alias = ipv4_alias(address)
    if alias is not None:
        raise _fail(path, f"{value} is an IPv6 spelling of {alias.ipv4}: write it as IPv4", source)
    _check_kind(address, role, path, source)
    return text


def _port(value: Any, path: str, source: str | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise _fail(path, f"must be an integer 1-65535, got {brief(value, as_json=True)}", source)
    return value


def _rule(value: Any, path: str, source: str | None) -> RedirectRule:
    raw = _map(value, path, source, ("destinationIP", "port", "protocol", "targetPort"))
    for key in ("destinationIP", "port", "protocol"):
        if key not in raw:
            raise _fail(f"{path}.{key}", "required", source)
    if raw["protocol"] not in PROTOCOLS:
        got = brief(raw["protocol"], as_json=True)
        raise _fail(f"{path}.protocol", f"must be one of {', '.join(PROTOCOLS)}, got {got}", source)
    target = raw.get("targetPort")
    return RedirectRule(
        destination_ip=_ip(raw["destinationIP"], f"{path}.destinationIP", source),
        port=_port(raw["port"], f"{path}.port", source),
        protocol=raw["protocol"],
        target_port=None if target is None else _port(target, f"{path}.targetPort", source),
    )


MAX_ADDRESSES = 16  # the CRD's maxItems, and the CNI config's bound


def _one_address(value: Any, path: str, source: str | None) -> tuple[RouterAddress, Any]:
    entry = _map(value, path, source, ("ip", "gateway"))
    ip = entry.get("ip")
    try:
        if not isinstance(ip, str):
            raise CidrError(CidrPart.ADDRESS, "not a string")
        interface = parse_cidr(ip, host_bits=HostBits.KEEP, prefix_required=True)
    except CidrError:
        got = brief(ip, as_json=True)
        raise _fail(f"{path}.ip", f"must be an address/prefix, got {got}", source) from None
    alias = ipv4_alias(interface.ip)
    if alias is not None:
        message = f"{ip} is an IPv6 spelling of {alias.ipv4}: write it as IPv4"
        raise _fail(f"{path}.ip", message, source)
    _check_kind(interface.ip, "address", f"{path}.ip", source)
    if "gateway" not in entry:
        raise _fail(f"{path}.gateway", "required (the pod's default route)", source)
    gateway = _ip(entry["gateway"], f"{path}.gateway", source, role="gateway")
    if ipaddress.ip_address(gateway).version != interface.version:
        message = f"{gateway} is not of the family of {ip} (IPv{interface.version})"
        raise _fail(f"{path}.gateway", message, source)
    return RouterAddress(ip, gateway), interface.ip


def _addresses(spec: Mapping[str, Any], source: str | None) -> tuple[RouterAddress, ...]:
    addresses = spec.get("addresses")
    if not isinstance(addresses, list):
        raise _fail("spec.addresses", "required (a list of {ip, gateway})", source)
    if not addresses:
        raise _fail("spec.addresses", "router without addresses", source)
    if len(addresses) > MAX_ADDRESSES:
        got = len(addresses)
        raise _fail("spec.addresses", f"at most {MAX_ADDRESSES} addresses, got {got}", source)
    out: list[RouterAddress] = []
    seen: dict[Any, int] = {}
    first: dict[int, int] = {}  # family -> index of its first address
    for index, value in enumerate(addresses):
        path = f"spec.addresses[{index}]"
        address, bare = _one_address(value, path, source)
        if bare in seen:
            message = f"{bare} is already spec.addresses[{seen[bare]}].ip"
            raise _fail(f"{path}.ip", message, source)
        seen[bare] = index
        at = first.setdefault(bare.version, index)
        # compared as addresses: the text is kept as written (2001:db8::1 = 2001:0db8::1)
        if at < index and ipaddress.ip_address(address.gateway) != ipaddress.ip_address(
            out[at].gateway
        ):
            raise _fail(
                f"{path}.gateway",
                f"{address.gateway} differs from spec.addresses[{at}].gateway {out[at].gateway}: "
                f"the router pod has one default route per family, so its IPv{bare.version}"
                " addresses share one gateway",
                source,
            )
        if bare == ipaddress.ip_address(address.gateway):
            raise _fail(f"{path}.ip", f"{bare} is the gateway itself", source)
        out.append(address)
    return tuple(out)


def parse_egressrouter(doc: Any, source: str | None = None) -> EgressRouter:
    """Validate a decoded CR; every error names its field (``spec.redirect.redirectRules[1]``)."""
    top = _map(doc, "(document)", source, ("apiVersion", "kind", "metadata", "spec", "status"))
    if top.get("apiVersion") != API_VERSION or top.get("kind") != KIND:
        got = f"{brief(top.get('apiVersion'))}/{brief(top.get('kind'))}"
        raise _fail("apiVersion/kind", f"must be {API_VERSION}/{KIND}, got {got}", source)
    meta = top.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise _fail("metadata.name", "required", source)
    if not _NAME.match(meta["name"]):
        got = brief(meta["name"], as_json=True)
        raise _fail("metadata.name", f"must be a Kubernetes object name, got {got}", source)
    namespace = meta.get("namespace") or "default"
    if not isinstance(namespace, str) or not _NAME.match(namespace):
        got = brief(namespace, as_json=True)
        raise _fail("metadata.namespace", f"must be a namespace name, got {got}", source)
    uid = meta.get("uid")
    if uid is not None and (not isinstance(uid, str) or not _UID.match(uid)):
        raise _fail("metadata.uid", f"must be a UID string, got {brief(uid, as_json=True)}", source)
    spec = _map(
        top.get("spec"), "spec", source, ("addresses", "mode", "networkInterface", "redirect")
    )
    mode = spec.get("mode", "Redirect")
    if mode != "Redirect":
        raise _fail("spec.mode", f'must be "Redirect", got {brief(mode, as_json=True)}', source)
    addresses = _addresses(spec, source)
    if "redirect" not in spec:
        raise _fail("spec.redirect", "required when mode is Redirect", source)
    redirect = _map(spec["redirect"], "spec.redirect", source, ("redirectRules", "fallbackIP"))
    raw_rules = redirect.get("redirectRules") or []
    if not isinstance(raw_rules, list):
        raise _fail("spec.redirect.redirectRules", "must be a list", source)
    rules = tuple(
        _rule(r, f"spec.redirect.redirectRules[{i}]", source) for i, r in enumerate(raw_rules)
    )
    fallback = redirect.get("fallbackIP")
    if fallback is not None:
        fallback = _ip(fallback, "spec.redirect.fallbackIP", source)
    used: dict[tuple[int, str, int], int] = {}
    for index, rule in enumerate(rules):
        key = (rule.port, rule.protocol, ipaddress.ip_address(rule.destination_ip).version)
        if key in used:
            message = (
                f"{rule.protocol} port {rule.port} is already redirectRules[{used[key]}]"
                " (a local port is redirected to one destination)"
            )
            raise _fail(f"spec.redirect.redirectRules[{index}].port", message, source)
        used[key] = index
    families = {ipaddress.ip_address(a.gateway).version for a in addresses}
    targets = [(f"spec.redirect.redirectRules[{i}].destinationIP", r.destination_ip)
               for i, r in enumerate(rules)]  # fmt: skip
    if fallback is not None:
        targets.append(("spec.redirect.fallbackIP", fallback))
    for path, target in targets:
        version = ipaddress.ip_address(target).version
        if version not in families:
            message = f"{target} is IPv{version} but spec.addresses has no IPv{version} address"
            raise _fail(path, message, source)
    nic = _map(
        spec.get("networkInterface", {"macvlan": {}}), "spec.networkInterface", source, ("macvlan",)
    )
    macvlan = _map(
        nic.get("macvlan", {}), "spec.networkInterface.macvlan", source, ("mode", "master")
    )
    mac_mode = macvlan.get("mode", "Bridge")
    if mac_mode not in MACVLAN_MODES:
        got = brief(mac_mode, as_json=True)
        path = "spec.networkInterface.macvlan.mode"
        raise _fail(path, f"must be one of {', '.join(MACVLAN_MODES)}, got {got}", source)
    master = macvlan.get("master")
    if master is not None and (not isinstance(master, str) or not is_interface_name(master)):
        raise _fail("spec.networkInterface.macvlan.master", "must be an interface name", source)
    return EgressRouter(
        name=meta["name"],
        namespace=namespace,
        uid=uid,
        addresses=addresses,
        rules=rules,
        fallback_ip=fallback,
        mode=mac_mode,
        master=master,
    )


def render_cr(router: EgressRouter) -> dict[str, Any]:
    """The CR (JSON/YAML-ready) that parses back to ``router``."""
    meta: dict[str, Any] = {"name": router.name, "namespace": router.namespace}
    if router.uid is not None:
        meta["uid"] = router.uid
    rules = []
    for rule in router.rules:
        item: dict[str, Any] = {
            "destinationIP": rule.destination_ip,
            "port": rule.port,
            "protocol": rule.protocol,
        }
        if rule.target_port is not None:
            item["targetPort"] = rule.target_port
        rules.append(item)
    redirect: dict[str, Any] = {"redirectRules": rules}
    if router.fallback_ip is not None:
        redirect["fallbackIP"] = router.fallback_ip
    macvlan: dict[str, Any] = {"mode": router.mode}
    if router.master is not None:
        macvlan["master"] = router.master
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": meta,
        "spec": {
            "mode": "Redirect",
            "addresses": [{"ip": a.ip, "gateway": a.gateway} for a in router.addresses],
            "redirect": redirect,
            "networkInterface": {"macvlan": macvlan},
        },
    }


def cni_config(router: EgressRouter) -> dict[str, Any]:
    """The CNI network configuration the NAD carries (JSON content of ``spec.config``)."""
    ip: dict[str, Any] = {
        "addresses": [a.ip for a in router.addresses],
        "destinations": [rule.as_destination() for rule in router.rules],
    }
    if router.fallback_ip is not None:
        ip["fallbackIP"] = router.fallback_ip
    ip["gateway"] = router.gateway
    if len(router.addresses) > 1:  # our extension: every spec.addresses[i].gateway, in order
        ip["gateways"] = [a.gateway for a in router.addresses]
    config: dict[str, Any] = {
        "cniVersion": "0.4.0",
        "type": "egress-router",
        "name": NAD_NAME,
        "ip": ip,
        "log_file": DEFAULT_LOG_FILE,
        "log_level": "debug",
    }
    if router.mode != "Bridge" or router.master is not None:
        args = {"mode": router.mode.lower()}
        if router.master is not None:
            args["master"] = router.master
        config["interfaceArgs"] = args
    return config


def _meta(router: EgressRouter, name: str, release: str) -> dict[str, Any]:
    owner: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND, "name": router.name}
    if router.uid:
        owner["uid"] = router.uid
    owner["controller"] = True
    return {
        "name": name,
        "namespace": router.namespace,
        "annotations": {"release.openshift.io/version": release},
        "ownerReferences": [owner],
    }


def networks_annotation(gateway: str, *more: str) -> str:
    """The multus annotation requesting the NAD, with the default route via the gateway (one
    per family for a dual-stack router)."""
    routes = ", ".join(f'"{g}"' for g in (gateway, *more))
    return f'[\n  {{\n    "name":"{NAD_NAME}",\n    "default-route": [{routes}]\n  }}\n]\n'


def render(
    router: EgressRouter, release: str = "", image: str = DEFAULT_IMAGE
) -> list[dict[str, Any]]:
    """The NetworkAttachmentDefinition, then the Deployment (the operator's file order)."""
    nad = {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": _meta(router, NAD_NAME, release),
        "spec": {"config": json.dumps(cni_config(router), indent=2) + "\n"},
    }
    deployment_meta = _meta(router, DEPLOYMENT_NAME, release)
    deployment_meta["labels"] = dict(APP_LABEL)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": deployment_meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(APP_LABEL)},
            "template": {
                "metadata": {
                    "labels": dict(APP_LABEL),
                    "annotations": {
                        "target.workload.openshift.io/management": (
                            '{"effect": "PreferredDuringScheduling"}'
                        ),
                        "k8s.v1.cni.cncf.io/networks": networks_annotation(*router.gateways),
                    },
                },
                "spec": {
                    "containers": [
                        {
                            "name": "egress-router-cni-pod",
                            "image": image,
                            "command": ["/bin/sh", "-c", "sleep infinity"],
                            "terminationMessagePolicy": "FallbackToLogsOnError",
                            "resources": {"requests": {"cpu": "100m"}},
                        }
                    ]
                },
            },
        },
    }
    return [nad, deployment]
