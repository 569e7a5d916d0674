"""Tour part ``redirect``: the reference blog's walk-through, then the multi-line form.

Owns: the redirect steps: the client refused directly; the router in legacy mode with a single
destination IP (long-running ``setup``, stopped by SIGTERM); the documented multi-line form
with a remote port and a fallback (init mode, one run); the same without the fallback, where an
unmapped port is refused at once.
Must not: configure the router pod itself (``egress-router setup`` does, as in a pod).
"""

from __future__ import annotations

import time

from egress_router.lab import procs
from egress_router.lab.topology import ADDR
from egress_router.lab.tour.base import (
    EGRESS_ROUTER,
    READY_S,
    ROUTER,
    S25,
    S26,
    S27,
    SOURCE,
    Part,
    Tour,
)

MULTI = f"80 tcp {S25}\n8080 tcp {S26} 80\n{S27}\n"  # the documents' form, lab addresses
NO_FALLBACK = f"80 tcp {S25}\n8080 tcp {S26} 80\n"


def single_destination(tour: Tour, destination: str) -> None:
    """The blog's steps: refused directly, served through the router from the reserved IP."""
    web = tour.web()
    tour.step("The client pod tries the web server directly")
    status, out, err = tour.curl(f"http://{S25}/")
    tour.check(
        "the web server refuses the client pod (its firewall admits only the egress IP)",
        status != 0,
        f"curl http://{S25}/ -> exit {status}: {err or out}",
    )

    tour.step("The egress router in the router pod: legacy mode, one destination IP (the blog)")
    env = {
        "EGRESS_SOURCE": f"{SOURCE}/24",
        "EGRESS_GATEWAY": str(ADDR.gateway_ip),
        "EGRESS_DESTINATION": destination,
        "EGRESS_ROUTER_MODE": "legacy",
    }
    tour.show_env(env)
    before = len(web.client_addresses())
    router = tour.spawn("router", [EGRESS_ROUTER, "setup"], "router-legacy", env)
    ready = procs.wait_for(
        lambda: not router.alive() or tour.curl(f"http://{ROUTER}/ip", timeout=1)[0] == 0,
        READY_S,
        0.1,
    )
    default = tour.run("router", ["ip", "route", "show", "default"]).stdout.strip()
    tour.check(
        "the router is configured and keeps running",
        ready and router.alive(),
        f"{SOURCE} on macvlan0; {default}"
        if router.alive()
        else f"setup exited: {router.output()[-300:]}",
    )
    status, out, err = tour.curl(f"http://{ROUTER}/")
    tour.check(
        "the client reaches the web server through the router",
        status == 0 and "Hello World" in out,
        f"curl http://{ROUTER}/ -> {out or err}",
    )
    procs.wait_for(lambda: len(web.client_addresses()) > before, 2.0)
    seen = web.client_addresses()[before:]
    tour.check(
        f"the web server saw only the reserved source IP {SOURCE}",
        bool(seen) and set(seen) == {SOURCE},
        f"access log sources: {', '.join(sorted(set(seen))) or '(none)'}",
    )
    code = router.stop()
    tour.check("the router exits 0 on SIGTERM, as Kubernetes stops it", code == 0, f"exit {code}")


def run(tour: Tour, destination: str = S25) -> None:
    tour.web()
    single_destination(tour, destination)

    tour.step("The documented multi-line form: ports, a remote port, a fallback (init mode)")
    tour.show_env({"EGRESS_DESTINATION": MULTI})
    result = tour.setup("init", MULTI)
    tour.check("setup applies it and exits 0", result.returncode == 0, result.stderr[-300:] or "")
    for port, expected, why in (
        (80, f"{S25}:80", "port 80 to .25"),
        (8080, f"{S26}:80", "port 8080 to .26 on its port 80 (remote port)"),
        (9000, f"{S27}:9000", "any other port to the fallback .27, port kept"),
    ):
        answer = tour.served(port)
        tour.check(
            f"{why}, from {SOURCE}",
            answer == f"{expected} {SOURCE}",
            f"curl http://{ROUTER}:{port}/server -> {answer}",
        )

    tour.step("Without the fallback line, an unmapped port is refused at once")
    tour.show_env({"EGRESS_DESTINATION": NO_FALLBACK})
    result = tour.setup("init", NO_FALLBACK)
    started = time.monotonic()
    status, _, err = tour.curl(f"http://{ROUTER}:9000/", timeout=5)
    took = time.monotonic() - started
    tour.check(
        "port 9000 is refused (a reset, not a timeout); port 80 still served",
        result.returncode == 0 and status == 7 and took < 2.5 and tour.served(80).endswith(SOURCE),
        f"curl http://{ROUTER}:9000/ -> exit {status} in {took:.1f} s: {err}",
    )


PART = Part(
    name="redirect",
    title="Redirect mode: the egress router of the reference blog",
    proves="a pod reaches outside servers only through the router, from the reserved IP: "
    "one IP, ports with a remote port and a fallback; unmapped ports refused",
    run=run,
)
