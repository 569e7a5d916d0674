"""Tour part ``http-proxy``: the documents' HTTP proxy list, an allowed name, a denied one
(403 naming the rule), and HTTPS through CONNECT.

Owns: the HTTP proxy steps and the lab's TLS server (openssl s_server on the web host, a
throwaway self-signed certificate) that CONNECT reaches.
Must not: configure the router pod or the proxy itself (``setup`` and ``http-proxy`` do).
"""

from __future__ import annotations

from egress_router.lab import procs
from egress_router.lab.tour.base import ROUTER, SOURCE, Part, Tour

DESTINATION = "!*.example.com\n!192.168.1.0/24\n*\n"  # the documents' example, unchanged
PORT = 8080
PROXY = f"http://{ROUTER}:{PORT}"


def _tls_server(tour: Tour) -> bool:
    key, cert = tour.lab.work / "tls.key", tour.lab.work / "tls.crt"
    made = tour.run(
        "web",
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=web.test"],
    )  # fmt: skip
    if made.returncode != 0:
        return False
    server = tour.spawn(
        "web",
        ["openssl", "s_server", "-accept", "443", "-cert", str(cert), "-key", str(key), "-www"],
        "tls",
    )
    return procs.wait_for(lambda: "ACCEPT" in server.output() or not server.alive(), 5.0)


def run(tour: Tour) -> None:
    tour.web()
    tour.dns()
    tour.step("The router pod in http-proxy mode, the proxy with the documents' list")
    tour.reset_router()
    tour.forget_neighbours()
    setup = tour.setup("http-proxy")
    env = {"EGRESS_HTTP_PROXY_DESTINATION": DESTINATION, "EGRESS_HTTP_PROXY_WORKERS": "1"}
    tour.show_env(env)
    proxy = tour.start("router", ["http-proxy"], "http-proxy", "listening on", env)
    tour.check(
        f"the proxy listens on {ROUTER}:{PORT}",
        setup.returncode == 0 and proxy.alive(),
        (proxy.output().strip().splitlines() or [setup.stderr.strip()])[-1][-200:],
    )

    tour.step("An allowed name: web.test (rule 3, *)")
    status, out, err = tour.curl("-x", PROXY, "http://web.test/ip")
    tour.check(
        f"http://web.test/ is fetched, from {SOURCE}",
        status == 0 and out == SOURCE,
        f"curl -x {PROXY} http://web.test/ip -> {out or err}",
    )

    tour.step("A denied name: www.example.com (rule 1, !*.example.com)")
    status, out, err = tour.curl("-i", "-x", PROXY, "http://www.example.com/")
    head, _, body = out.replace("\r\n", "\n").partition("\n\n")
    first = head.split("\n", 1)[0]
    tour.check(
        "403 Forbidden, and the body names the rule that decided",
        first == "HTTP/1.1 403 Forbidden" and body.strip().startswith("denied by rule 1"),
        f"{first} | {body.strip()[:120] or err}",
    )

    tour.step("HTTPS through CONNECT: the proxy tunnels, TLS stays end to end")
    tls = _tls_server(tour)
    status, out, err = tour.curl("-k", "-x", PROXY, "https://web.test/", timeout=5)
    tour.check(
        "https://web.test/ is tunnelled to the TLS server (its own page comes back)",
        tls and status == 0 and "s_server" in out,
        f"curl -k -x {PROXY} https://web.test/ -> exit {status}"
        + (", the s_server status page" if "s_server" in out else f": {err}"),
    )
    code = proxy.stop()
    tour.check("the proxy exits 0 on SIGTERM", code == 0, f"exit {code}")


PART = Part(
    name="http-proxy",
    title="HTTP proxy mode: a list of allowed and denied names and networks",
    proves="allowed names are fetched from the reserved IP, denied ones get a 403 naming "
    "the rule, HTTPS is tunnelled by CONNECT",
    run=run,
)
