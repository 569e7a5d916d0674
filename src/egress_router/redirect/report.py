"""The ``unit-test`` mode's output: the complete plan, as text, with nothing touched.

Owns: formatting the network plan (against a freshly moved, unconfigured macvlan), the
gratuitous ARPs and the nftables ruleset (nft syntax, rendered from the exact JSON applied).
Must not: observe or change the namespace.
"""

from __future__ import annotations

from egress_router.common import nft_text
from egress_router.redirect.model import rules as redirect_rules
from egress_router.redirect.model.env import RouterEnv
from egress_router.redirect.model.plan import ObservedNetwork, announcements, plan_network


def render_plan(env: RouterEnv) -> str:
    """Everything ``setup`` would do in init mode for ``env``."""
    ifs = env.interfaces
    out = [
        f"# egress-router setup plan: source {env.source}, gateway {env.gateway}, "
        f"macvlan {ifs.macvlan}, cluster side {ifs.cluster}",
        "# network (against an unconfigured macvlan; any other default route is removed)",
    ]
    out += [str(op) for op in plan_network(env, ObservedNetwork.empty())]
    out += [str(a) for a in announcements(env, request=False)]
    out += [str(a) for a in announcements(env, request=True)]
    if env.destination is not None:
        ruleset = redirect_rules.redirect_ruleset(
            env.destination, env.source_ips, ifs, env.health[1] if env.health else None
        )
        out.append(
            f"# nftables: table {redirect_rules.FAMILY} {redirect_rules.TABLE}, "
            "replaced in one transaction"
        )
        out.append(nft_text.render(ruleset).rstrip("\n"))
    return "\n".join(out) + "\n"
