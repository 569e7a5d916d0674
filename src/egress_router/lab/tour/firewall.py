"""Tour part ``firewall``: an EgressFirewall enforced on the node, by CIDR and by name, and
``firewall explain`` saying which rule decides.

Owns: the firewall steps, the demo policy file, and putting the node back as it was (agent
stopped, its table removed, the web server's firewall as before).
Must not: write nftables rules itself (``egress-router firewall run`` does, in the node).
"""

from __future__ import annotations

import json

from egress_router.lab import procs
from egress_router.lab.topology import ADDR
from egress_router.lab.tour.base import S25, S26, S27, SOURCE, Part, Tour

CLIENT = str(ADDR.client_pod_ip)
NAMESPACE = "demo"
POLICY = {
    "kind": "EgressFirewall",
    "apiVersion": "k8s.ovn.org/v1",
    "metadata": {"name": "default", "namespace": NAMESPACE},
    "spec": {
        "egress": [
            {"type": "Allow", "to": {"cidrSelector": f"{S25}/32"}},
            {"type": "Allow", "to": {"dnsName": "www.foo.test"}},
            {"type": "Deny", "to": {"cidrSelector": "0.0.0.0/0"}},
        ]
    },
}


def _reach(tour: Tour, target: str) -> bool:
    return tour.curl("-o", "/dev/null", f"http://{target}/", timeout=2)[0] == 0


def run(tour: Tour) -> None:
    tour.web()
    tour.dns()
    policy = tour.lab.work / "egressfirewall.json"
    policy.write_text(json.dumps(POLICY, indent=2))
    node_args = [f"--pods={NAMESPACE}={CLIENT}/32", f"--cluster-cidr={ADDR.cluster_net}"]

    tour.step("Pods leave through the node, masqueraded (no egress router in this part)")
    # the web server admits the node's address too, so only our firewall can refuse
    tour.lab.set_web_firewall([SOURCE, str(ADDR.node_lan_ip)])
    tour.after_part.append(lambda: tour.lab.set_web_firewall([SOURCE]))
    reached = {ip: _reach(tour, ip) for ip in (S25, S26, S27)}
    tour.check(
        "without a policy the client pod reaches every server",
        all(reached.values()),
        ", ".join(f"{ip}: {'reached' if ok else 'not reached'}" for ip, ok in reached.items()),
    )

    tour.step(f"The node's agent enforces an EgressFirewall for namespace {NAMESPACE}")
    for number, rule in enumerate(POLICY["spec"]["egress"], 1):  # type: ignore[index]
        tour.note(f"rule {number}: {rule['type']} {next(iter(rule['to'].values()))}")
    agent = tour.start(
        "node",
        ["firewall", "run", "-n", NAMESPACE, *node_args, str(policy)],
        "firewall",
        "running",
        {},
    )
    tour.after_part.append(
        lambda: tour.run("node", ["nft", "delete", "table", "inet", "egress_firewall"])
    )
    tour.check("the agent is running", agent.alive(), agent.output().strip()[-200:])
    tour.check(
        f"Allow by CIDR: {S25} (rule 1) is reached", _reach(tour, S25), f"curl http://{S25}/"
    )
    by_name = procs.wait_for(lambda: _reach(tour, "www.foo.test"), 10.0, 0.2)
    tour.check(
        f"Allow by name: www.foo.test ({S26}, rule 2) is reached",
        by_name,
        "the agent resolved the name and allowed its address",
    )
    denied = not _reach(tour, S27)
    tour.check(f"Deny by CIDR: {S27} (rule 3, 0.0.0.0/0) is refused", denied, f"curl http://{S27}/")

    tour.step("`egress-router firewall explain`: which rule decides, and why")
    for target, expected in (
        (S27, "deny: namespace demo rule 3 (Deny 0.0.0.0/0)"),
        ("www.foo.test", f"{S26}: allow: namespace demo rule 2 (Allow dnsName www.foo.test)"),
    ):
        out = tour.cli(
            "node", "firewall", "explain", "-n", NAMESPACE, *node_args, str(policy),
            "--from", CLIENT, "--to", target,
        )  # fmt: skip
        answer = out.stdout.strip() or out.stderr.strip()
        tour.check(f"explain --to {target}", answer == expected, answer)
    code = agent.stop()
    tour.check(
        "the agent exits 0 on SIGTERM (the rules stay in the kernel)", code == 0, f"exit {code}"
    )


PART = Part(
    name="firewall",
    title="Egress firewall: EgressFirewall rules enforced on the node",
    proves="Allow/Deny by CIDR and by DNS name hold on real traffic, in order, "
    "and explain names the deciding rule",
    run=run,
)
