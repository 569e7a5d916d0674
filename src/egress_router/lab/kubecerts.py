"""Files a lab control plane starts from: CA, serving certificate, keys, tokens, kubeconfigs.

Owns: the self-signed CA and the kube-apiserver's serving certificate for 127.0.0.1/localhost
(made with the openssl CLI), the service-account signing key pair, the static token file (admin
and the two ServiceAccount users of deploy/), kubeconfig texts, and picking a free loopback port.
Must not: start processes other than openssl, or keep secrets anywhere but the working directory
(files 0600).
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
from pathlib import Path

from egress_router.errors import ControlPlaneError

# Tokens of the static token file: user name, uid, groups. The service-account users let tests
# run the operator, the agent and a failover instance with exactly the RBAC deploy/ grants them.
USERS = {
    "admin": ("admin", "admin", "system:masters"),
    "operator": (
        "system:serviceaccount:egress-router:egress-router-operator",
        "operator",
        "system:serviceaccounts,system:serviceaccounts:egress-router,system:authenticated",
    ),
    "agent": (
        "system:serviceaccount:egress-router:egress-router-firewall",
        "agent",
        "system:serviceaccounts,system:serviceaccounts:egress-router,system:authenticated",
    ),
    "failover": (
        "system:serviceaccount:egress-router:egress-router-failover",
        "failover",
        "system:serviceaccounts,system:serviceaccounts:egress-router,system:authenticated",
    ),
}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ControlPlaneError(f"openssl {args[0]} failed: {proc.stderr.strip()[-300:]}")


def make_credentials(work: Path) -> dict[str, str]:
    """CA, serving certificate for 127.0.0.1/localhost, SA keys, token file; returns the tokens."""
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "30",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=egress-router-lab-ca",
        cwd=work,
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "apiserver.key",
        "-out",
        "apiserver.csr",
        "-subj",
        "/CN=kube-apiserver",
        cwd=work,
    )
    (work / "san.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        "apiserver.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        "san.ext",
        "-out",
        "apiserver.crt",
        cwd=work,
    )
    _openssl(
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "sa.key",
        cwd=work,
    )
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=work)
    tokens = {role: secrets.token_hex(16) for role in USERS}
    lines = [f'{tokens[r]},{u},{uid},"{groups}"' for r, (u, uid, groups) in USERS.items()]
    token_file = work / "tokens.csv"
    token_file.write_text("\n".join(lines) + "\n")
    for secret in ("ca.key", "apiserver.key", "sa.key", "tokens.csv"):
        (work / secret).chmod(0o600)
    return tokens


def kubeconfig_text(server: str, ca_file: Path, token: str, user: str = "admin") -> str:
    """A kubeconfig (JSON is valid YAML) for ``server`` with a bearer token."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "lab", "cluster": {"server": server, "certificate-authority": str(ca_file)}}
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": user}}],
        "current-context": "lab",
    }
    return json.dumps(config, indent=2) + "\n"
