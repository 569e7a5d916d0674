"""Lab helpers for the DNS proxy tests: the router pod's network, running the proxy, clients."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from egress_router.lab import procs
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import ADDR, Lab
from tests.conftest import EGRESS_ROUTER, setup_router

ROUTER = str(ADDR.router_pod_ip)
SOURCE = str(ADDR.egress_source)


def router_network(lab: Lab) -> None:
    """The router pod as ``egress-router setup`` leaves it in dns-proxy mode (macvlan0 with
    EGRESS_SOURCE, default route via the gateway on it, ip_forward)."""
    setup_router(lab, mode="dns-proxy")


def start_proxy(
    lab: Lab,
    destinations: str,
    *,
    forwarding: str = "kernel",
    debug: bool = True,
    extra: Mapping[str, str] | None = None,
    name: str = "dns-proxy",
    wait: bool = True,
) -> procs.Background:
    env = {
        "EGRESS_DNS_PROXY_DESTINATION": destinations,
        "EGRESS_DNS_PROXY_FORWARDING": forwarding,
        "EGRESS_DNS_PROXY_DEBUG": "1" if debug else "",
        "EGRESS_DNS_PROXY_TTL_MIN": "1",
        **(extra or {}),
    }
    proc = lab.spawn("router", [EGRESS_ROUTER, "dns-proxy"], name=name, env=env)
    if wait and not procs.wait_for(lambda: "ready:" in proc.output() or not proc.alive(), 20):
        raise AssertionError(f"dns-proxy did not start: {proc.output()[-2000:]}")
    assert proc.alive(), proc.output()
    return proc


def curl(lab: Lab, port: int, path: str = "/ip", host: str = ROUTER, timeout: float = 5) -> Any:
    return lab.exec(
        "client", ["curl", "-sS", "-m", str(timeout), f"http://{host}:{port}{path}"], timeout=30
    )


def web(lab: Lab, ip: str, ports: tuple[int, ...] = (80,)) -> Nginx:
    """One nginx per server address, so its access log tells which address a request reached."""
    return Nginx(lab, "web", [f"{ip}:{p}" for p in ports]).start()


def eventually(predicate: Any, timeout: float = 10.0) -> bool:
    return procs.wait_for(predicate, timeout, interval=0.1)


def hits(server: Nginx) -> int:
    return len(server.client_addresses())


def wait_quiet(seconds: float) -> None:
    time.sleep(seconds)
