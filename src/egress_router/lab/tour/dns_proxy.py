"""Tour part ``dns-proxy``: a destination given by name moves while traffic flows.

Owns: the DNS proxy steps and the client loop (one request every 0.1 s from the client pod,
each line of its output one result) that shows no request failing across the move.
Must not: configure the router pod or the proxy itself (``setup`` and ``dns-proxy`` do).
"""

from __future__ import annotations

import time

from egress_router.lab import procs
from egress_router.lab.tour.base import RECORDS, ROUTER, S25, S26, SOURCE, Part, Tour

DESTINATION = "80 moving.example\n"
LOOP = """
import os, sys, time, urllib.request
stop, url = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 30
while not os.path.exists(stop) and time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            print("ok", answer.read().decode().strip(), flush=True)
    except Exception as exc:
        print("fail", type(exc).__name__, exc, flush=True)
    time.sleep(0.1)
"""


def _results(loop: procs.Background) -> list[str]:
    return [line for line in loop.output().splitlines() if line.startswith(("ok", "fail"))]


def run(tour: Tour) -> None:
    tour.web()
    dns = tour.dns()
    tour.step("The router pod in dns-proxy mode: port 80 goes to moving.example")
    tour.reset_router()
    tour.forget_neighbours()
    setup = tour.setup("dns-proxy")
    env = {"EGRESS_DNS_PROXY_DESTINATION": DESTINATION, "EGRESS_DNS_PROXY_TTL_MIN": "1"}
    tour.show_env(env)
    proxy = tour.start("router", ["dns-proxy"], "dns-proxy", "ready:", env)
    tour.check(
        f"the proxy is ready; moving.example is {S25} (TTL 1 s)",
        setup.returncode == 0 and proxy.alive(),
        (proxy.output().strip().splitlines() or [setup.stderr.strip()])[-1][-200:],
    )

    tour.step("Traffic flows: the client pod asks every 0.1 s; then the name moves to .26")
    stop = tour.lab.work / "dns-loop-stop"
    loop = tour.spawn(
        "client", ["python3", "-c", LOOP, str(stop), f"http://{ROUTER}/server"], "dns-loop"
    )
    before = procs.wait_for(lambda: len(_results(loop)) >= 5, 10.0, 0.1)
    first = _results(loop)
    tour.check(
        f"requests reach {S25} from {SOURCE}",
        before and all(r == f"ok {S25}:80 {SOURCE}" for r in first),
        f"{len(first)} answers: {first[-1] if first else '(none)'}",
    )
    dns.set_records({**RECORDS, "moving.example": [S26]})
    moved = time.monotonic()
    arrived = procs.wait_for(lambda: f"ok {S26}" in " ".join(_results(loop)[-1:]), 10.0, 0.05)
    took = time.monotonic() - moved
    count = len(_results(loop))
    procs.wait_for(lambda: len(_results(loop)) >= count + 5, 5.0, 0.1)
    stop.touch()
    loop.stop()
    results = _results(loop)
    failed = [r for r in results if r.startswith("fail")]
    switched = [i for i, r in enumerate(results) if r.startswith(f"ok {S26}")]
    back = switched and any(r.startswith(f"ok {S25}") for r in results[switched[0] :])
    tour.check(
        f"new requests follow the name to {S26} within the TTL and stay there",
        arrived and not back,
        f"first answer from {S26} {took:.1f} s after the DNS change",
    )
    tour.check(
        "no request failed while the name moved",
        bool(results) and not failed,
        f"{len(results) - len(failed)}/{len(results)} requests answered"
        + (f"; {failed[0]}" if failed else ""),
    )
    code = proxy.stop()
    tour.check("the proxy exits 0 on SIGTERM", code == 0, f"exit {code}")


PART = Part(
    name="dns-proxy",
    title="DNS proxy mode: destinations by name, followed as they move",
    proves="a destination given by name is re-resolved within its TTL while traffic flows, "
    "without a failed request, from the reserved IP",
    run=run,
)
