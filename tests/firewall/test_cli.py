"""``firewall check`` and ``firewall explain`` (no kernel needed)."""

from __future__ import annotations

import pytest

from tests.conftest import cli
from tests.reference_examples import EGRESS_NETWORK_POLICY

from .helpers import allow, deny, policy


@pytest.fixture
def example(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(EGRESS_NETWORK_POLICY)
    return path


def test_check_accepts_the_document_example(example):
    out = cli("firewall", "check", str(example))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "valid: 1 policies, 3 rules"


def test_check_rejects_with_one_line(tmp_path):
    bad = policy(tmp_path / "bad.json", [allow("1.2.3.0/24"), deny("0.0.0.0/33")])
    out = cli("firewall", "check", str(bad))
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        f"egress-router: {bad}, namespace myproj, rule 2, to.cidrSelector: "
        "the prefix length must be 0-32: '0.0.0.0/33'"
    ]
    assert out.stdout == ""


def test_apply_needs_a_namespace_for_the_document_example(example):
    out = cli("firewall", "apply", "--pods=myproj=198.18.0.3/32", str(example))
    assert out.returncode == 1
    assert out.stderr.strip() == (
        f"egress-router: {example}, metadata.namespace: missing: give metadata.namespace or "
        "--namespace"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--to", "8.8.8.8"], "deny: namespace myproj rule 3 (Deny 0.0.0.0/0)"),
        (["--to", "1.2.3.9", "--port", "443"], "allow: namespace myproj rule 1 (Allow 1.2.3.0/24)"),
        (["--to", "198.18.0.7"], "allow: cluster network exempt"),
        (["--to", "172.30.0.1"], "allow: cluster network exempt"),
        (["--to", "2001:db8::1"], "allow: no rule matched (default allow)"),
    ],
)
def test_explain(example, args, expected):
    out = cli(
        "firewall",
        "explain",
        "-n",
        "myproj",
        "--pods",
        "myproj=198.18.0.3/32",
        "--cluster-cidr",
        "198.18.0.0/24",
        "--service-cidr",
        "172.30.0.0/16",
        str(example),
        "--from",
        "198.18.0.3",
        *args,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "nope", "--to", "1.1.1.1"], "--from: not an IP address 'nope'"),
        (["--from", "198.18.0.3", "--to", "bad name!"], "--to: not an IP address or DNS name"),
        (["--from", "198.18.0.3", "--to", "1.1.1.1", "--proto", "icmp"], "--proto: must be"),
        (["--pods", "myproj", "--from", "198.18.0.3", "--to", "1.1.1.1"], "--pods: expected"),
    ],
)
def test_explain_bad_flags(example, args, message):
    out = cli("firewall", "explain", "-n", "myproj", str(example), *args)
    assert out.returncode == 1
    [line] = out.stderr.splitlines()
    assert message in line


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--node", "Bad_Name"], "--node"),
        (["--node", "n1", "--debounce", "9"], "--debounce"),
        (["--node", "n1", "--cluster-cidr", "10.0.0.0/99"], "--cluster-cidr"),
    ],
)
def test_agent_refuses_bad_flags_in_one_line(args, flag):
    result = cli("firewall", "agent", *args)
    assert result.returncode == 1, result.stderr
    assert flag in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_agent_without_api_server_fails_in_one_line(tmp_path):
    result = cli("firewall", "agent", "--node", "n1", "--kubeconfig", str(tmp_path / "missing"))
    assert result.returncode == 1, result.stderr
    assert "cannot log in to the API server" in result.stderr
    assert "Traceback" not in result.stderr
