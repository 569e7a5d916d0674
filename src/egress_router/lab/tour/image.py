"""Tour part ``image``: the same router, run from the container image by podman.

Owns: finding the image (``localhost/egress-router:latest``, made by ``scripts/image``; the
part is skipped with a note when podman or the image is absent), running it in the router
pod's network namespace (podman is started inside it by ``nsenter --net``, keeping the cgroup
mounts, with ``--network host``: podman refuses its default network sysctls in a ``ns:``
namespace) with the blog's variables (``privileged`` as the documents' pod spec
says, lowered ulimits as these machines need), and removing the container on any exit.
Must not: pull, build or change images, or give the container any network but the pod's.
"""

from __future__ import annotations

import os
from typing import Any

from egress_router.lab import procs
from egress_router.lab.topology import ADDR
from egress_router.lab.tour.base import READY_S, ROUTER, S25, SOURCE, Part, Tour, have

IMAGE = os.environ.get("EGRESS_ROUTER_IMAGE", "localhost/egress-router:latest")
ULIMITS = ("nofile=1024:1024", "nproc=4096:4096")  # these machines cannot raise podman's


def _podman(tour: Tour, *args: str) -> Any:
    """``podman ARGS`` in the router pod's network namespace, with the machine's /sys."""
    return tour.run("router", ["podman", *args], timeout=15, keep_mounts=True)


def present(tour: Tour) -> bool:
    if not have("podman"):
        return False
    return bool(_podman(tour, "image", "exists", IMAGE).returncode == 0)


def run(tour: Tour) -> None:
    tour.step(f"The router from the image {IMAGE}, in the router pod's network namespace")
    if not present(tour):
        tour.note(
            f"skipped: {'podman is not installed' if not have('podman') else IMAGE + ' is absent'}"
            " (build it with scripts/image)"
        )
        return
    tour.web()
    tour.reset_router()
    tour.forget_neighbours()
    name = f"er{tour.lab.lab_id}-router"
    env = {
        "EGRESS_SOURCE": f"{SOURCE}/24",
        "EGRESS_GATEWAY": str(ADDR.gateway_ip),
        "EGRESS_DESTINATION": S25,
        "EGRESS_ROUTER_MODE": "legacy",
    }
    tour.show_env(env)
    argv = [
        "podman", "run", "--rm", "--name", name, "--runtime", "runc", "--privileged",
        "--network", "host",  # podman runs inside the router pod's namespace: that one
        *(f"--ulimit={u}" for u in ULIMITS),
        *(f"--env={k}={v}" for k, v in env.items()),
        IMAGE,
    ]  # fmt: skip
    # podman's container outlives a killed `podman run`: remove it on every exit
    tour.cleanups.append(lambda: _podman(tour, "rm", "--force", "--time", "0", name))
    container = tour.spawn("router", argv, "podman-router", keep_mounts=True)
    ready = procs.wait_for(
        lambda: not container.alive() or tour.curl(f"http://{ROUTER}/ip", timeout=1)[0] == 0,
        READY_S,
        0.2,
    )
    tour.check(
        "the container configures the pod and keeps running",
        ready and container.alive(),
        f"podman run {IMAGE}" if container.alive() else container.output()[-300:],
    )
    status, out, err = tour.curl(f"http://{ROUTER}/")
    tour.check(
        f"the client reaches the web server through it, from {SOURCE}",
        status == 0 and out == f"Hello World! You came from {SOURCE}",
        f"curl http://{ROUTER}/ -> {out or err}",
    )
    stopped = _podman(tour, "stop", "--time", "5", name)
    procs.wait_for(lambda: not container.alive(), 10.0, 0.1)  # `podman run` follows it
    code = container.stop()
    tour.check(
        "podman stop ends it cleanly (SIGTERM, exit 0)",
        stopped.returncode == 0 and code == 0,
        f"podman run exited {code}",
    )


PART = Part(
    name="image",
    title="The container image: the same router from localhost/egress-router:latest",
    proves="the image runs the router unchanged with the blog's variables",
    run=run,
)
