"""The resolver adapter against a real dnsmasq, run inside the lab's router pod namespace: as the
DNS proxy uses it (resolv.conf, A only, search list) and as the firewall does (an explicit
server, A and AAAA in parallel, no search list)."""

from __future__ import annotations

import json
import sys

import pytest

from egress_router.lab.dns import DnsServer
from egress_router.lab.topology import Lab

pytestmark = pytest.mark.lab

_SCRIPT = r"""
import asyncio, json, sys
from egress_router.runtime.resolver import Resolver
from egress_router.errors import ResolveError

async def main():
    resolver = Resolver(sys.argv[1], timeout=1.0)
    out = {}
    for name in sys.argv[2:]:
        try:
            answer = await resolver.lookup(name)
            out[name] = [sorted(str(a) for a in answer.addresses), answer.ttl]
        except ResolveError as exc:
            out[name] = str(exc)
    print(json.dumps(out))

asyncio.run(main())
"""


def lookup(lab: Lab, conf: str, *names: str) -> dict[str, object]:
    path = lab.work / "resolv.conf"
    path.write_text(conf)
    result = lab.exec("router", [sys.executable, "-c", _SCRIPT, str(path), *names], timeout=30)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_answers_ttl_negative_and_search_domains(lab: Lab) -> None:
    DnsServer(
        lab,
        {"www.example.com": ["203.0.113.26", "203.0.113.25"], "db.corp.example": ["203.0.113.27"]},
        ttl=7,
        local_domains=["example.com", "corp.example"],
    ).start()
    conf = "nameserver 198.18.0.1\nsearch corp.example\noptions ndots:1\n"
    got = lookup(lab, conf, "www.example.com", "missing.example.com", "db")
    assert got["www.example.com"] == [["203.0.113.25", "203.0.113.26"], 7]
    assert got["missing.example.com"] == [[], 0]  # NXDOMAIN: an answer, not an error
    assert got["db"] == [["203.0.113.27"], 7]  # through the search list
    refused = lookup(lab, conf, "www.other.example")["www.other.example"]
    assert "REFUSED" in str(refused)  # dnsmasq refuses other domains: an error, not an answer


def test_no_server_is_an_error(lab: Lab) -> None:
    got = lookup(lab, "nameserver 198.18.0.9\n", "www.example.com")
    assert isinstance(got["www.example.com"], str)
    assert got["www.example.com"].startswith("cannot resolve www.example.com")
    empty = lookup(lab, "# nothing\n", "www.example.com")
    assert "no usable" in str(empty["www.example.com"])


_BOTH_FAMILIES = r"""
import asyncio, json, sys
from egress_router.firewall.agent import new_resolver
from egress_router.errors import ResolveError

async def main():
    resolver = new_resolver([(sys.argv[1], 53)])
    out = {}
    for name in sys.argv[2:]:
        try:
            answer = await resolver.lookup(name)
            out[name] = [sorted(str(a) for a in answer.addresses), answer.ttl, answer.note]
        except ResolveError as exc:
            out[name] = str(exc)
    print(json.dumps(out))

asyncio.run(main())
"""


def test_both_families_through_an_explicit_server(lab: Lab) -> None:
    DnsServer(
        lab,
        {
            "dual.example.com": ["203.0.113.25", "2001:db8::25"],
            "v6.example.com": ["2001:db8::26"],
            "mapped.example.com": ["::ffff:203.0.113.27"],
        },
        ttl=9,
        local_domains=["example.com"],
    ).start()
    names = ["dual.example.com", "v6.example.com", "mapped.example.com", "gone.example.com"]
    argv = [sys.executable, "-c", _BOTH_FAMILIES, "198.18.0.1", *names]
    result = lab.exec("router", argv, timeout=30)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["dual.example.com"] == [["2001:db8::25", "203.0.113.25"], 9, ""]
    assert got["v6.example.com"] == [["2001:db8::26"], 9, ""]
    assert got["mapped.example.com"] == [["203.0.113.27"], 9, ""]  # the address packets carry
    assert got["gone.example.com"] == [[], 0, "no such name (NXDOMAIN)"]  # an answer: no error
    refused = subprocess_lookup(lab, "other.example.org")
    assert refused.startswith("cannot resolve other.example.org")


def subprocess_lookup(lab: Lab, name: str) -> str:
    argv = [sys.executable, "-c", _BOTH_FAMILIES, "198.18.0.1", name]
    result = lab.exec("router", argv, timeout=30)
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)[name])
