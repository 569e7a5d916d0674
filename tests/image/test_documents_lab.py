"""The documents' pods, run from our image by ``podman kube play`` in the lab.

Each pod's YAML is the reference document's, with only the image names replaced and the site's
addresses swapped for the lab's (tests/image/documents.py). podman plays it inside the lab's
router namespace, where the platform's macvlan waits, as the SDN leaves it in a real pod. The
web servers admit only the reserved source 198.19.123.99, so each successful request from the
lab's client proves that the traffic left through the pod from the reserved address.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from egress_router.lab import procs
from egress_router.lab.dns import DnsServer
from egress_router.lab.podman import IMAGE, PAUSE_IMAGE, Podman
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import Lab
from tests.image import documents

pytestmark = [pytest.mark.lab, pytest.mark.image, pytest.mark.timeout(600)]

ROUTER = "198.18.0.2"
SOURCE = "198.19.123.99"
S25, S26, S27 = "203.0.113.25", "203.0.113.26", "203.0.113.27"
PROXY_UID = 10001


def play(podman: Podman, name: str, *texts: str) -> None:
    yaml_text, _ = documents.adapt("---\n".join(texts), IMAGE, PAUSE_IMAGE)
    podman.start_pod("router", yaml_text, name)


def get(lab: Lab, url: str, *, proxy: str | None = None, timeout: float = 3.0) -> str | None:
    """The body of a GET from the lab's client, or None when it failed."""
    argv = ["curl", "-sS", "-m", str(timeout), url]
    if proxy is not None:
        argv[1:1] = ["-x", proxy]
    result = lab.exec("client", argv, timeout=timeout + 5)
    return result.stdout.strip() if result.returncode == 0 else None


def eventually_get(lab: Lab, url: str, *, proxy: str | None = None, wait: float = 30.0) -> str:
    """The first successful body within ``wait`` seconds (the pod is still starting)."""
    seen: list[str | None] = [None]

    def ok() -> bool:
        seen[0] = get(lab, url, proxy=proxy, timeout=2.0)
        return seen[0] is not None

    procs.wait_for(ok, wait, interval=0.3)
    assert seen[0] is not None, f"no answer from {url} within {wait} s"
    return seen[0]


def process_status(podman: Podman, container: str) -> dict[str, str]:
    """/proc/PID/status of the container's main process, as a dict."""
    pid = podman("inspect", "--format", "{{.State.Pid}}", container).stdout.strip()
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def test_legacy_pod(lab: Lab, podman: Podman) -> None:
    Nginx(lab, "web", [f"{S25}:80"]).start()
    play(podman, "legacy", documents.LEGACY)
    assert eventually_get(lab, f"http://{ROUTER}/ip") == SOURCE
    assert podman.state("egress-1-egress-router") == "running 0"  # legacy mode stays up


def test_init_pod(lab: Lab, podman: Podman) -> None:
    Nginx(lab, "web", [f"{S25}:80", f"{S25}:8080"]).start()
    play(podman, "init", documents.INIT)
    assert eventually_get(lab, f"http://{ROUTER}/ip") == SOURCE
    assert get(lab, f"http://{ROUTER}:8080/ip") == SOURCE  # a single IP takes every port
    assert podman.state("egress-1-egress-router-wait") == "running 0"


def test_multi_destination_pod_fed_from_a_configmap(lab: Lab, podman: Podman) -> None:
    listen = [f"{S25}:80", f"{S26}:80", f"{S26}:443", f"{S27}:9000"]
    Nginx(lab, "web", listen).start()
    play(podman, "multi", documents.CONFIGMAP, documents.MULTI_FROM_CONFIGMAP)
    assert eventually_get(lab, f"http://{ROUTER}:80/server") == f"{S25}:80 {SOURCE}"
    assert get(lab, f"http://{ROUTER}:8080/server") == f"{S26}:80 {SOURCE}"
    assert get(lab, f"http://{ROUTER}:8443/server") == f"{S26}:443 {SOURCE}"
    assert get(lab, f"http://{ROUTER}:9000/server") == f"{S27}:9000 {SOURCE}"  # the fallback


def test_http_proxy_pod(lab: Lab, podman: Podman) -> None:
    Nginx(lab, "web", [f"{S25}:80"]).start()
    play(podman, "http-proxy", documents.HTTP_PROXY)
    proxy = f"http://{ROUTER}:8080"
    assert eventually_get(lab, f"http://{S25}/ip", proxy=proxy) == SOURCE
    denied = lab.exec(
        "client",
        ["curl", "-sS", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}", "-x", proxy,
         "http://www.example.com/"],
        timeout=10,
    )  # fmt: skip
    assert denied.stdout == "403"
    status = process_status(podman, "egress-http-proxy-egress-router-proxy")
    assert status["Uid"].split()[:2] == [str(PROXY_UID)] * 2
    assert int(status["CapEff"], 16) == 0  # port 8080 needs no capability


def test_dns_proxy_pod(lab: Lab, podman: Podman) -> None:
    DnsServer(lab, {"example.com": [S26], "foobar.com": [S27]}, ttl=30).start()
    for ip in (S25, S26, S27):
        Nginx(lab, "web", [f"{ip}:80", f"{ip}:100", f"{ip}:443"]).start()
    play(podman, "dns-proxy", documents.DNS_PROXY)
    assert eventually_get(lab, f"http://{ROUTER}:80/server") == f"{S25}:80 {SOURCE}"
    assert get(lab, f"http://{ROUTER}:100/server") == f"{S26}:100 {SOURCE}"  # example.com
    assert get(lab, f"http://{ROUTER}:8080/server") == f"{S26}:80 {SOURCE}"
    assert get(lab, f"http://{ROUTER}:8443/server") == f"{S27}:443 {SOURCE}"  # foobar.com
    container = "egress-dns-proxy-egress-dns-proxy"
    # No NET_ADMIN in the documents' proxy container: the relay, as uid 10001, binding the
    # ports below 1024 with NET_BIND_SERVICE only.
    assert "relay forwarding" in podman.logs(container)
    status = process_status(podman, container)
    assert status["Uid"].split()[:2] == [str(PROXY_UID)] * 2
    assert int(status["CapEff"], 16) == 1 << 10


def test_deploy_dns_proxy_with_net_admin_takes_the_kernel_path(lab: Lab, podman: Podman) -> None:
    # deploy/dns-proxy.yaml gives the proxy NET_ADMIN: nftables DNAT, still as uid 10001.
    DnsServer(lab, {"example.com": [S26], "foobar.com": [S27]}, ttl=30).start()
    for ip in (S25, S26, S27):
        Nginx(lab, "web", [f"{ip}:80", f"{ip}:100", f"{ip}:443"]).start()
    play(podman, "deploy-dns-proxy", (documents.DEPLOY / "dns-proxy.yaml").read_text())
    assert eventually_get(lab, f"http://{ROUTER}:100/server") == f"{S26}:100 {SOURCE}"
    assert get(lab, f"http://{ROUTER}:8443/server") == f"{S27}:443 {SOURCE}"
    container = "egress-dns-proxy-egress-dns-proxy"
    assert "kernel forwarding" in podman.logs(container)
    status = process_status(podman, container)
    assert status["Uid"].split()[:2] == [str(PROXY_UID)] * 2
    assert int(status["CapEff"], 16) == (1 << 10) | (1 << 12)


def test_deploy_redirect_pod(lab: Lab, podman: Podman) -> None:
    Nginx(lab, "web", [f"{S25}:80", f"{S26}:80", f"{S26}:443", f"{S27}:9000"]).start()
    play(podman, "deploy-redirect", (documents.DEPLOY / "redirect.yaml").read_text())
    assert eventually_get(lab, f"http://{ROUTER}:8443/server") == f"{S26}:443 {SOURCE}"
    assert get(lab, f"http://{ROUTER}:9000/server") == f"{S27}:9000 {SOURCE}"
