"""The CNI invocation contract (CNI spec / containernetworking skel) and the plugin's texts.

Owns: validating the ``CNI_*`` environment per command, the VERSION / result / error JSON
documents, the log line format and the reference's log texts (Go-style lists, nft rules).
Must not: do I/O (``cni.plugin`` reads the environment and writes stdout/stderr/the log).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from egress_router.cni.model.config import (
    CLUSTER_INTERFACE,
    INCOMPATIBLE_VERSION,
    INVALID_ENV,
    NAME_RE,
    PLUGIN_VERSION,
    SUPPORTED_VERSIONS,
    UNKNOWN_CONTAINER,
    CniConfig,
    CniError,
)
from egress_router.common.names import is_interface_name
from egress_router.redirect.model.destinations import Destination

COMMANDS = ("ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC")
ABOUT = "CNI egress-router plugin version unknown"
# The first config version that allows each command (older configs get error code 1).
SINCE = {"CHECK": (0, 4, 0), "STATUS": (1, 1, 0), "GC": (1, 1, 0)}
# GC's list of attachments still in use (the spec's key, and the one libcni also sets).
VALID_ATTACHMENTS = ("cni.dev/valid-attachments", "cni.dev/attachments")
MAX_ATTACHMENTS = 100_000  # a bound on the list a runtime hands us (one node's containers)


@dataclass(frozen=True)
class Invocation:
    """A validated ``CNI_*`` environment."""

    command: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    path: str = ""


def parse_invocation(env: Mapping[str, str]) -> Invocation:
    """Check the variables the command needs (codes 3 and 4, as the skel does)."""
    command = env.get("CNI_COMMAND", "")
    if command == "VERSION":
        return Invocation(command)
    if command not in COMMANDS:
        raise CniError(f"unknown CNI_COMMAND: {command}", code=INVALID_ENV)
    if command in ("STATUS", "GC"):  # about the network, not one container (spec 1.1.0)
        if "CNI_PATH" not in env:
            raise CniError("required env variables [CNI_PATH] missing", code=INVALID_ENV)
        return Invocation(command, path=env["CNI_PATH"])
    required = ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"]
    if command != "DEL":
        required.insert(1, "CNI_NETNS")
    missing = [k for k in required if k not in env]
    if missing:
        raise CniError(f"required env variables [{','.join(missing)}] missing", code=INVALID_ENV)
    container = env["CNI_CONTAINERID"]
    if not container:
        raise CniError("empty CNI_CONTAINERID", code=UNKNOWN_CONTAINER)
    if not NAME_RE.match(container):
        raise CniError(f"invalid characters in CNI_CONTAINERID: {container}", code=INVALID_ENV)
    ifname = env["CNI_IFNAME"]
    if not is_interface_name(ifname):
        raise CniError(f"invalid CNI_IFNAME: '{ifname}'", code=INVALID_ENV)
    return Invocation(command, container, env.get("CNI_NETNS", ""), ifname, env["CNI_PATH"])


def check_allowed(version: str, command: str = "CHECK") -> None:
    """CHECK needs a 0.4.0 configuration, STATUS and GC a 1.1.0 one."""
    if tuple(int(p) for p in version.split(".")) < SINCE[command]:
        raise CniError(f"config version does not allow {command}", code=INCOMPATIBLE_VERSION)


@dataclass(frozen=True)
class Attachment:
    """One attachment a GC request says is still valid."""

    container_id: str
    ifname: str


def gc_attachments(raw: Mapping[str, Any]) -> tuple[Attachment, ...]:
    """The still-valid attachments of a GC request (absent = none), each one checked."""
    key = next((k for k in VALID_ATTACHMENTS if k in raw), VALID_ATTACHMENTS[0])
    items = raw.get(key)
    if items is None:
        return ()
    if not isinstance(items, list) or len(items) > MAX_ATTACHMENTS:
        raise CniError(f"{key}: must be a list of at most {MAX_ATTACHMENTS} attachments")
    out = []
    for index, item in enumerate(items):
        container = item.get("containerID") if isinstance(item, dict) else None
        ifname = item.get("ifname") if isinstance(item, dict) else None
        if not isinstance(container, str) or not isinstance(ifname, str):
            raise CniError(f"{key}[{index}]: needs string containerID and ifname")
        out.append(Attachment(container, ifname))
    return tuple(out)


def version_json() -> str:
    return json.dumps(
        {"cniVersion": PLUGIN_VERSION, "supportedVersions": list(SUPPORTED_VERSIONS)},
        separators=(",", ":"),
    )


def error_json(error: CniError, cni_version: str = PLUGIN_VERSION) -> str:
    doc: dict[str, Any] = {"cniVersion": cni_version, "code": error.code, "msg": error.msg}
    if error.details:
        doc["details"] = error.details
    return json.dumps(doc, indent=4)


def add_result(config: CniConfig, ifname: str, mac: str, sandbox: str) -> str:
    """The ADD result in the config's version (1.x, 0.3.x/0.4.0, or the 0.2.0 layout).

    One ``ips`` entry per address, with its family's gateway; the 0.2.0 layout has room for one
    per family (``ip4``, then ``ip6``, as the Go struct prints them): the first of each.
    """
    if config.cni_version in ("0.1.0", "0.2.0"):
        doc: dict[str, Any] = {"cniVersion": "0.2.0"}
        for version in (4, 6):  # the Go struct's field order: ip4, ip6
            address = next((a for a in config.ip.addresses if a.version == version), None)
            if address is not None:
                gateway = str(config.ip.gateway_for(version))
                doc[f"ip{version}"] = {"ip": str(address), "gateway": gateway}
        doc["dns"] = dict(config.dns)
    else:
        ips = []
        for address in config.ip.addresses:
            ip: dict[str, Any] = {"version": str(address.version), "interface": 0}
            if config.cni_version.startswith("1."):
                del ip["version"]  # removed from the result in spec 1.0.0
            ip["address"] = str(address)
            ip["gateway"] = str(config.ip.gateway_for(address.version))
            ips.append(ip)
        doc = {
            "cniVersion": config.cni_version,
            "interfaces": [{"name": ifname, "mac": mac, "sandbox": sandbox}],
            "ips": ips,
            "dns": dict(config.dns),
        }
    return json.dumps(doc, indent=4)


def go_list(items: tuple[str, ...] | list[str]) -> str:
    """A list as Go's ``%v`` prints it: ``[a b c]``."""
    return "[" + " ".join(items) + "]"


def log_line(timestamp: str, level: str, message: str) -> str:
    return f"{timestamp} [{level}] {message}\n"


def dnat_rule_texts(destination: Destination, cluster: str = CLUSTER_INTERFACE) -> list[str]:
    """The DNAT rules as the reference logs them (``Added nftables rule: <text>``); an IPv6
    target with a port is bracketed, as nft reads it (the reference wrote no brackets)."""
    texts = []
    for rule in destination.rules:
        target = str(rule.address)
        if rule.remote_port != rule.port:
            target = f"[{target}]" if rule.address.version == 6 else target
            target += f":{rule.remote_port}"
        texts.append(f"iif {cluster} {rule.protocol.value} dport {rule.port} dnat to {target}")
    if destination.fallback is not None:
        texts.append(f"iif {cluster} dnat to {destination.fallback}")
    return texts


def go_route(ifindex: int, gateway: str | None) -> str:
    """A deleted default route as the Go netlink library prints it."""
    return (
        f"{{Ifindex: {ifindex} Dst: <nil> Src: <nil> Gw: {gateway or '<nil>'} "
        "Flags: [] Table: 254}"
    )
