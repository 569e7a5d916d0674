"""The egress-router CNI plugin's input: the network configuration (stdin) and the CNI_* env.

Owns: validating the JSON network configuration into a frozen ``CniConfig`` (fields of the
OpenShift 4 plugin: ``cniVersion``, ``name``, ``type``, ``interfaceType``, ``interfaceArgs``,
``ip {addresses, gateway, destinations, fallbackIP}``, ``log_file``, ``log_level``, ``dns``,
and our extension ``ip.gateways``),
the destination grammar mapped onto our redirect ``Destination``, the CNI_* environment
contract, and the pure texts the plugin prints (result JSON, Go-style lists, rule log lines).
Must not: do I/O (``cni.plugin`` reads stdin/env and drives the kernel adapters).

Every error is a ``CniError``: one line naming the field, with the CNI error code to report.

Destination grammar (one JSON string per entry, fields separated by spaces):

    <ip>[/mask]                                    catch-all (last entry only)
    <port> <tcp|udp|sctp> <ip>[/mask]              same port on <ip>
    <port> <tcp|udp|sctp> <ip>[/mask] <remote>     <remote> on <ip>

The protocol is case-insensitive; a ``/mask`` is tolerated and dropped (it never meant a
range); ports are 1-65535 and a local port is used once per protocol (first match would
shadow the rest in the reference). ``ip.fallbackIP`` becomes the catch-all when no entry is one.

Addresses (the reference used ``addresses[0]`` and silently ignored the rest): every entry of
``ip.addresses`` (1-16, each ``<ip>/<prefix>``, IPv4 or IPv6, none twice) goes on the macvlan,
and outgoing flows are spread over those of their family (``redirect.model.rules``).
``ip.gateway`` is the one gateway of the reference grammar; the extension ``ip.gateways`` (a
list beside ``ip.addresses``, entry *i* the gateway of address *i*, as the operator renders
``spec.addresses[i].gateway``) may repeat it per address. The pod has one default route per
family, so the gateways of one family must be the same address: a second one is refused with
its index named, as is a gateway of the other family than its address, or a family of
addresses without a gateway (a dual-stack router needs ``ip.gateways``).

IPv6 (the reference's IPv6 mode, repaired): destinations may be IPv6 when an IPv6 address is
there to source them (each family is redirected by its own table, ``ip`` or ``ip6``), a remote
port is written after the address as for IPv4 (``8080 tcp 2001:db8::5 80``; the rule is
``dnat to [2001:db8::5]:80``, where the reference wrote no brackets), and an IPv6 spelling of
an IPv4 address (``::ffff:203.0.113.5``) is refused everywhere: write the IPv4 address.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from egress_router.common.documents import DocumentError
from egress_router.common.documents import load_json as decode_json
from egress_router.common.lines import bad_char, describe_char, split_fields
from egress_router.common.names import is_interface_name
from egress_router.common.networks import CidrError, CidrPart, HostBits, parse_cidr
from egress_router.common.values import IPAddress, ipv4_alias, is_decimal, parse_ip
from egress_router.errors import ConfigError, VariableError, brief
from egress_router.redirect.model.destinations import (
    BOTH_FAMILIES,
    CNI_PROTOCOLS,
    Destination,
    parse_destination,
    unfit_destination,
)
from egress_router.redirect.model.env import IPInterface

SUPPORTED_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
PLUGIN_VERSION = "1.1.0"  # what VERSION reports, as the CNI library of that spec does
NAME_RE = re.compile(r"\A[a-zA-Z0-9][a-zA-Z0-9_.\-]*\Z")
MACVLAN_MODES = ("bridge", "private", "vepa", "passthru")
LOG_LEVELS = ("panic", "error", "verbose", "debug")
DEFAULT_LOG_FILE = "/tmp/egress-router-log"
CLUSTER_INTERFACE = "eth0"  # hard-coded in the reference: the pod's primary interface

# CNI error codes (CNI spec / skel)
INCOMPATIBLE_VERSION = 1
UNKNOWN_CONTAINER = 3
INVALID_ENV = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
NOT_AVAILABLE = 50  # STATUS: cannot service ADD requests (CNI spec 1.1.0)
PLUGIN_FAILURE = 100  # ours: the kernel refused (first plugin-specific code)


class CniError(ConfigError):
    """A CNI invocation failure: ``code`` is the CNI error code, ``details`` optional."""

    def __init__(self, message: str, *, code: int = INVALID_CONFIG, details: str = "") -> None:
        self.code = code
        self.msg = message
        self.details = details
        super().__init__(message + (f" ({details})" if details else ""))


MAX_ADDRESSES = 16  # as the EgressRouter CRD's maxItems: each is an address on the macvlan


@dataclass(frozen=True)
class IpConfig:
    """``ip``: the egress addresses (with prefixes), the gateways and the DNAT destinations."""

    addresses: tuple[IPInterface, ...]  # at least one; the first is the primary
    gateways: tuple[IPAddress, ...]  # one per family of the addresses, IPv4's first
    destinations: tuple[str, ...]  # verbatim, for the ``IP Destinations: [...]`` log line
    destination: Destination
    per_address_gateways: bool = False  # ``ip.gateways`` was given (rendered back the same)

    @property
    def address(self) -> IPInterface:
        """The first address (what the reference used, and the one 0.2.0 results report)."""
        return self.addresses[0]

    @property
    def gateway(self) -> IPAddress:
        """The gateway of the first address's family (``ip.gateway`` of the reference)."""
        return self.gateway_for(self.address.version)

    def gateway_for(self, version: int) -> IPAddress:
        return next(g for g in self.gateways if g.version == version)


@dataclass(frozen=True)
class CniConfig:
    """A validated network configuration."""

    cni_version: str
    name: str
    ip: IpConfig
    master: str | None = None  # None: the interface of the default route
    mode: str = "bridge"
    mtu: int | None = None  # None: the master's MTU
    log_file: str | None = None
    log_level: str = "debug"
    dns: Mapping[str, Any] = field(default_factory=dict)


def _str(obj: Mapping[str, Any], key: str, where: str = "") -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise CniError(f"{where}{key}: must be a string, got {brief(value, as_json=True)}")
    return value


def _obj(obj: Mapping[str, Any], key: str, where: str = "") -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise CniError(f"{where}{key}: must be an object, got {brief(value, as_json=True)}")
    return value


def _str_list(obj: Mapping[str, Any], key: str) -> list[str]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CniError(f"ip.{key}: must be a list of strings, got {brief(value, as_json=True)}")
    return value


def _strip_mask(entry: str, index: int) -> str:
    """The entry with its address's ``/mask`` checked and dropped (host bits kept: the mask
    never meant a range). A bad address is left for the destination grammar to report."""
    fields = list(split_fields(entry.strip(" \t")))
    at = 0 if len(fields) == 1 else 2
    if at < len(fields) and "/" in fields[at]:
        ip, _, mask = fields[at].partition("/")
        try:
            fields[at] = str(parse_cidr(fields[at], host_bits=HostBits.KEEP).ip)
        except CidrError as exc:
            if exc.part is CidrPart.PREFIX:
                raise CniError(f"ip.destinations[{index}]: '{entry}': bad mask '/{mask}'") from None
            fields[at] = ip
    return " ".join(fields)


def _fallback(text: str) -> IPAddress:
    """``ip.fallbackIP``: an IPv4 or IPv6 address (not an IPv6 spelling of an IPv4 one)."""
    try:
        address: IPAddress = parse_ip(text)
    except ValueError as exc:
        raise CniError(f"ip.fallbackIP: '{text}' is not an IP address ({exc})") from None
    alias = ipv4_alias(address)
    if alias is not None:
        raise CniError(f"ip.fallbackIP: '{text}' is the IPv4 address {alias.ipv4}: write it so")
    if unfit_destination(address) is not None:  # as the destination grammar
        raise CniError(f"ip.fallbackIP: {address} cannot be a destination")
    return address


def parse_destinations(entries: list[str], fallback_ip: str | None = None) -> Destination:
    """The destination entries (plus an optional ``fallbackIP``) as our redirect plan."""
    cleaned = []
    for index, entry in enumerate(entries):
        ch = bad_char(entry)
        if ch is not None:
            raise CniError(
                f"ip.destinations[{index}]: character {describe_char(ch)} is not allowed"
                " (fields are separated by spaces or tabs)"
            )
        if not entry.strip(" \t") or "#" in entry:
            raise CniError(f"ip.destinations[{index}]: invalid entry {brief(entry, as_json=True)}")
        cleaned.append(_strip_mask(entry, index))
    destination = Destination(rules=())
    if cleaned:
        try:
            destination = parse_destination(
                "\n".join(cleaned),
                variable="ip.destinations",
                protocols=CNI_PROTOCOLS,
                families=BOTH_FAMILIES,
            )
        except VariableError as exc:
            index = (exc.line or 1) - 1
            raise CniError(f"ip.destinations[{index}]: {exc.message}") from None
    if fallback_ip is not None:
        fallback = _fallback(fallback_ip)
        if destination.fallback not in (None, fallback):
            raise CniError(
                f"ip.fallbackIP: {fallback} conflicts with the catch-all destination "
                f"{destination.fallback}"
            )
        destination = Destination(rules=destination.rules, fallback=fallback)
    return destination


def _address(text: str, index: int) -> IPInterface:
    where = f"ip.addresses[{index}]"
    try:  # the address on the macvlan and its subnet: host bits are the point
        cidr = parse_cidr(text, host_bits=HostBits.KEEP, prefix_required=True)
    except CidrError as exc:
        if "/" not in text:
            example = "64" if ":" in text else "24"
            raise CniError(
                f"{where}: '{text}' needs a prefix length (e.g. {text}/{example})"
            ) from None
        raise CniError(f"{where}: '{text}' is not an address with a prefix ({exc})") from None
    ip = cidr.ip
    alias = ipv4_alias(ip)
    if alias is not None:
        raise CniError(f"{where}: '{text}' is an IPv6 spelling of {alias.ipv4}: write it as IPv4")
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback or ip.is_link_local:
        raise CniError(f"{where}: {ip} cannot be an egress address (not a unicast address)")
    return cidr


def _addresses(raw: dict[str, Any]) -> tuple[IPInterface, ...]:
    texts = _str_list(raw, "addresses")
    if not texts:
        raise CniError("ip.addresses: at least one address is required")
    if len(texts) > MAX_ADDRESSES:
        raise CniError(f"ip.addresses: at most {MAX_ADDRESSES} addresses, got {len(texts)}")
    out: list[IPInterface] = []
    for index, text in enumerate(texts):
        address = _address(text, index)
        for before, other in enumerate(out):
            if other.ip == address.ip:
                raise CniError(
                    f"ip.addresses[{index}]: {address.ip} is already ip.addresses[{before}]"
                )
        out.append(address)
    return tuple(out)


def _gateway(text: str, where: str) -> IPAddress:
    try:
        address: IPAddress = parse_ip(text)
    except ValueError as exc:
        raise CniError(f"{where}: '{text}' is not an IP address ({exc})") from None
    alias = ipv4_alias(address)
    if alias is not None:
        raise CniError(f"{where}: '{text}' is an IPv6 spelling of {alias.ipv4}: write it as IPv4")
    if address.is_multicast or address.is_unspecified or address.is_loopback:
        raise CniError(f"{where}: {address} cannot be a gateway (not a unicast address)")
    return address


def _family(version: int) -> str:
    return f"IPv{version}"


def _gateways(
    raw: dict[str, Any], addresses: tuple[IPInterface, ...]
) -> tuple[tuple[IPAddress, ...], bool]:
    """The gateway of each family (``ip.gateway``, or the extension ``ip.gateways``: one per
    address, the same for all the addresses of a family)."""
    gateway_text = _str(raw, "gateway", "ip.")
    per_address = raw.get("gateways") is not None
    texts = _str_list(raw, "gateways")
    if per_address and len(texts) != len(addresses):
        raise CniError(
            f"ip.gateways: one per address ({len(addresses)} in ip.addresses), got {len(texts)}"
        )
    if not gateway_text and not texts:
        raise CniError("ip.gateway: required (the router's default route goes through it)")
    found: dict[int, tuple[IPAddress, str]] = {}
    if gateway_text:
        gateway = _gateway(gateway_text, "ip.gateway")
        found[gateway.version] = (gateway, "ip.gateway")
    for index, text in enumerate(texts):
        where = f"ip.gateways[{index}]"
        this = _gateway(text, where)
        version = addresses[index].version
        if this.version != version:
            raise CniError(
                f"{where}: {this} is {_family(this.version)} but ip.addresses[{index}]"
                f" {addresses[index]} is {_family(version)}"
            )
        first = found.setdefault(version, (this, where))
        if this != first[0]:
            raise CniError(
                f"{where}: {this} differs from {first[1]} {first[0]} (the router has one"
                f" default route per family: one gateway for all its {_family(version)} addresses)"
            )
    for index, address in enumerate(addresses):
        if address.version not in found:
            raise CniError(
                f"ip.gateway: {_family(address.version)} ip.addresses[{index}] {address} has no"
                f" gateway of its family (give one per address in ip.gateways)"
            )
        if found[address.version][0] == address.ip:
            raise CniError(
                f"{found[address.version][1]}: {address.ip} is the egress address itself"
            )
    extra = [v for v in found if not any(a.version == v for a in addresses)]
    if extra:
        gateway, where = found[extra[0]]
        raise CniError(
            f"{where}: {gateway} is {_family(extra[0])} but no address in ip.addresses is"
        )
    return tuple(found[v][0] for v in sorted(found)), per_address


def _check_families(
    destination: Destination, addresses: tuple[IPInterface, ...], fallback_field: str
) -> None:
    """Every destination of a family that some reserved address can source. ``fallback_field``
    names where the catch-all was written (``ip.fallbackIP``, or the last destination entry)."""
    have = {a.version for a in addresses}
    for rule in destination.rules:
        if rule.address.version not in have:
            raise CniError(
                f"ip.destinations[{rule.line - 1}]: {rule.address} is"
                f" {_family(rule.address.version)} but ip.addresses has no"
                f" {_family(rule.address.version)} address to send from"
            )
    if destination.fallback is not None and destination.fallback.version not in have:
        version = destination.fallback.version
        raise CniError(
            f"{fallback_field}: {destination.fallback} is {_family(version)} but ip.addresses"
            f" has no {_family(version)} address to send from"
        )


def _ip(raw: dict[str, Any]) -> IpConfig:
    addresses = _addresses(raw)
    gateways, per_address = _gateways(raw, addresses)
    entries = _str_list(raw, "destinations")
    fallback_ip = _str(raw, "fallbackIP", "ip.")
    destination = parse_destinations(entries, fallback_ip)
    where = "ip.fallbackIP" if fallback_ip is not None else f"ip.destinations[{len(entries) - 1}]"
    _check_families(destination, addresses, where)
    return IpConfig(addresses, gateways, tuple(entries), destination, per_address)


def _interface_args(raw: Mapping[str, Any]) -> tuple[str | None, str, int | None]:
    kind = _str(raw, "interfaceType") or "macvlan"
    if kind != "macvlan":
        raise CniError(f"interfaceType: '{kind}' is not supported (only macvlan)")
    args = _obj(raw, "interfaceArgs") or {}
    master = _str(args, "master", "interfaceArgs.") or None
    if master is not None and not is_interface_name(master):
        raise CniError(f"interfaceArgs.master: '{master}' is not an interface name")
    mode = (_str(args, "mode", "interfaceArgs.") or "bridge").lower()
    if mode not in MACVLAN_MODES:
        raise CniError(f"interfaceArgs.mode: unknown macvlan mode '{mode}'")
    mtu_raw = args.get("mtu")
    mtu: int | None = None
    if mtu_raw is not None and mtu_raw != "":
        text = str(mtu_raw)
        if (
            isinstance(mtu_raw, bool)
            or not is_decimal(text)
            or len(text) > 5
            or not 68 <= int(text) <= 65535
        ):
            raise CniError(f"interfaceArgs.mtu: '{text}' must be an integer 68-65535")
        mtu = int(text)
    return master, mode, mtu


def parse_version(raw: Mapping[str, Any]) -> str:
    """``cniVersion`` (missing = 0.1.0), checked against what we support (code 1)."""
    version = _str(raw, "cniVersion") or "0.1.0"
    if version not in SUPPORTED_VERSIONS:
        plugin = " ".join(f'"{v}"' for v in SUPPORTED_VERSIONS)
        raise CniError(
            "incompatible CNI versions",
            code=INCOMPATIBLE_VERSION,
            details=f'config is "{version}", plugin supports [{plugin}]',
        )
    return version


def load_json(text: str) -> dict[str, Any]:
    """Decode stdin (code 6) and check ``name`` (code 7), as the CNI skel does."""
    try:
        raw = decode_json(text)
    except DocumentError as exc:
        raise CniError(f"error reading network config: {exc}", code=DECODE_FAILURE) from None
    if not isinstance(raw, dict):
        raise CniError("network config: must be a JSON object", code=DECODE_FAILURE)
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise CniError(f"name: invalid network name {brief(name, as_json=True)}")
    return raw


def parse_config(text: str) -> CniConfig:
    """Validate everything before anything is touched."""
    raw = load_json(text)
    version = parse_version(raw)
    _str(raw, "type")
    master, mode, mtu = _interface_args(raw)
    ip_raw = _obj(raw, "ip")
    if ip_raw is None:
        raise CniError("ip: required ({addresses, gateway, destinations})")
    level = (_str(raw, "log_level") or _str(raw, "log_level.omitempty") or "debug").lower()
    if level not in LOG_LEVELS:
        raise CniError(f"log_level: '{level}' must be one of {', '.join(LOG_LEVELS)}")
    return CniConfig(
        cni_version=version,
        name=raw["name"],
        ip=_ip(ip_raw),
        master=master,
        mode=mode,
        mtu=mtu,
        log_file=_str(raw, "log_file") or None,
        log_level=level,
        dns=_obj(raw, "dns") or {},
    )


def render_config(config: CniConfig) -> dict[str, Any]:
    """The network configuration (JSON-ready) that parses back to ``config``."""
    args: dict[str, Any] = {"mode": config.mode}
    if config.master is not None:
        args["master"] = config.master
    if config.mtu is not None:
        args["mtu"] = config.mtu
    ip: dict[str, Any] = {
        "addresses": [str(a) for a in config.ip.addresses],
        "gateway": str(config.ip.gateway),
        "destinations": list(config.ip.destinations),
    }
    if config.ip.per_address_gateways or len(config.ip.gateways) > 1:
        ip["gateways"] = [str(config.ip.gateway_for(a.version)) for a in config.ip.addresses]
    if config.ip.destination.fallback is not None:
        ip["fallbackIP"] = str(config.ip.destination.fallback)
    raw: dict[str, Any] = {
        "cniVersion": config.cni_version,
        "name": config.name,
        "type": "egress-router",
        "interfaceType": "macvlan",
        "interfaceArgs": args,
        "ip": ip,
        "log_level": config.log_level,
    }
    if config.log_file is not None:
        raw["log_file"] = config.log_file
    if config.dns:
        raw["dns"] = dict(config.dns)
    return raw
