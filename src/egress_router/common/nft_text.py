"""Rendering nftables JSON commands as nft's own syntax, for people (``unit-test`` mode, docs).

Owns: a faithful text form of the JSON subset our planners generate (tables, maps with
concatenated data, base chains, rules with meta/payload/ct matches, NAT, reject, verdicts,
comments). The output is accepted by ``nft -c -f`` (the tests check this), so what the plan
prints is what the kernel gets.
Must not: parse nft syntax or run nft.
"""

from __future__ import annotations

from typing import Any

Command = dict[str, Any]


def _value(v: Any) -> str:
    if isinstance(v, dict):
        if "payload" in v:
            return _left(v)
        if "concat" in v:
            return " . ".join(_value(x) for x in v["concat"])
        if "prefix" in v:
            return f"{v['prefix']['addr']}/{v['prefix']['len']}"
        if "set" in v:
            return "{ " + ", ".join(_value(x) for x in v["set"]) + " }"
    if isinstance(v, list):
        return ",".join(_value(x) for x in v)
    if isinstance(v, str) and (v.startswith("@") or v.replace(".", "").replace("-", "").isalnum()):
        return v
    if isinstance(v, str):
        return '"' + v + '"'
    return str(v)


def _left(expr: dict[str, Any]) -> str:
    if "meta" in expr:
        key = expr["meta"]["key"]
        return key if key in ("iifname", "oifname", "iif", "oif", "mark") else f"meta {key}"
    if "payload" in expr:
        return f"{expr['payload']['protocol']} {expr['payload']['field']}"
    if "ct" in expr:
        return f"ct {expr['ct']['key']}"
    raise ValueError(f"cannot render {expr}")


def _match(m: dict[str, Any]) -> str:
    left = _left(m["left"])
    right = m["right"]
    if left in ("iifname", "oifname"):
        rendered = f'"{right}"'
    elif isinstance(right, list):
        rendered = ",".join(str(x) for x in right)
    else:
        rendered = _value(right)
    op = "" if m["op"] in ("==", "in") else m["op"] + " "
    return f"{left} {op}{rendered}"


def _nat(kind: str, spec: dict[str, Any]) -> str:
    addr = spec["addr"]
    family = "ip " if spec.get("family") else ""
    text = f"{kind} {family}to {_nat_value(addr)}"
    if "port" in spec:
        text += f" : {_nat_value(spec['port'])}"
    return text


def _nat_value(v: Any) -> str:
    if isinstance(v, dict) and "map" in v:
        key, data = v["map"]["key"], v["map"]["data"]
        if "jhash" in key:
            h = key["jhash"]
            key_text = f"jhash {_value(h['expr'])} mod {h['mod']} seed {h['seed']:#x}"
        else:
            key_text = _left(key)
        if isinstance(data, dict) and "set" in data:
            data = "{ " + ", ".join(f"{k} : {d}" for k, d in data["set"]) + " }"
        return f"{key_text} map {data}"
    return str(v)


def _statement(s: dict[str, Any]) -> str:
    (kind, spec), *_ = s.items()
    if kind == "match":
        return _match(spec)
    if kind in ("dnat", "snat"):
        return _nat(kind, spec)
    if kind == "reject":
        if not spec:
            return "reject"
        if spec.get("type") == "tcp reset":
            return "reject with tcp reset"
        return f"reject with {spec['type']} {spec['expr']}"
    if kind in ("accept", "drop", "return"):
        return kind
    if kind in ("jump", "goto"):
        return f"{kind} {spec['target']}"
    if kind == "masquerade":
        return "masquerade"
    if kind == "counter":
        return "counter"
    raise ValueError(f"cannot render statement {kind}")


def render(commands: list[Command]) -> str:
    """nft syntax for a list of ``add`` commands building one table (other verbs are skipped)."""
    table: dict[str, Any] | None = None
    maps: list[dict[str, Any]] = []
    chains: dict[str, dict[str, Any]] = {}
    rules: dict[str, list[dict[str, Any]]] = {}
    for cmd in commands:
        if "add" not in cmd:
            continue
        (kind, obj), *_ = cmd["add"].items()
        if kind == "table":
            table = obj
        elif kind in ("map", "set"):
            maps.append({"kind": kind, **obj})
        elif kind == "chain":
            chains[obj["name"]] = obj
            rules.setdefault(obj["name"], [])
        elif kind == "rule":
            rules.setdefault(obj["chain"], []).append(obj)
    if table is None:
        return ""
    out = [f"table {table['family']} {table['name']} {{"]
    for m in maps:
        out.append(f"\t{m['kind']} {m['name']} {{")
        data = m.get("map")
        data_text = " . ".join(data) if isinstance(data, list) else data
        out.append(f"\t\ttype {m['type']}" + (f" : {data_text}" if data else ""))
        elems = m.get("elem", [])
        if elems:
            rendered = [
                f"{_value(e[0])} : {_value(e[1])}" if isinstance(e, list) else _value(e)
                for e in elems
            ]
            out.append("\t\telements = { " + ",\n\t\t\t     ".join(rendered) + " }")
        out.append("\t}")
    for name, chain in chains.items():
        out.append(f"\tchain {name} {{")
        if "hook" in chain:
            out.append(
                f"\t\ttype {chain['type']} hook {chain['hook']} priority {chain['prio']}; "
                f"policy {chain.get('policy', 'accept')};"
            )
        for rule in rules.get(name, []):
            text = " ".join(_statement(s) for s in rule["expr"])
            if rule.get("comment"):
                text += f' comment "{rule["comment"]}"'
            out.append(f"\t\t{text}")
        out.append("\t}")
    out.append("}")
    return "\n".join(out) + "\n"
