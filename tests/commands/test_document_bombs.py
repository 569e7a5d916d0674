"""Hostile documents against the real commands, each in a subprocess under a memory cap
(``RLIMIT_AS``) and a time bound: one line on stderr, exit status 1, no traceback (issue 8,
item 5). Policies go through ``firewall check``, CRs through ``cni render``, CNI configs
through the plugin's stdin."""

from __future__ import annotations

import json
import resource
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import EGRESS_ROUTER, VENV_BIN
from tests.hostile_documents import POLICY_BOMBS, cr_bombs

MEMORY_CAP = 512 * 1024 * 1024  # a normal run needs well under 200 MiB of address space
TIME_BOUND_S = 30.0  # generous for a loaded 2-core machine; a rejection takes ~0.5 s


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run_capped(argv: list[str], stdin: str = "", env: dict[str, str] | None = None):
    started = time.monotonic()
    result = subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIME_BOUND_S,
        preexec_fn=_capped,
        env=env,
    )
    return result, time.monotonic() - started


def assert_one_line_rejection(result: subprocess.CompletedProcess[str], phrase: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.returncode == 1, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines[:5]
    assert lines[0].startswith("egress-router: ")
    assert phrase in lines[0]
    assert len(lines[0]) <= 2100  # never a repr of an expanded value


@pytest.mark.parametrize("name", sorted(POLICY_BOMBS))
def test_firewall_check_rejects_each_bomb_in_one_line(tmp_path: Path, name: str) -> None:
    text, phrase = POLICY_BOMBS[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    result, elapsed = run_capped([EGRESS_ROUTER, "firewall", "check", str(path)])
    assert_one_line_rejection(result, phrase)
    assert str(path) in result.stderr
    assert elapsed < TIME_BOUND_S


def test_firewall_check_rejects_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"kind: \xff\xfe\n")
    result, _ = run_capped([EGRESS_ROUTER, "firewall", "check", str(path)])
    assert_one_line_rejection(result, "cannot read")


@pytest.mark.parametrize("name", sorted(cr_bombs()))
def test_cni_render_rejects_each_bomb_in_one_line(tmp_path: Path, name: str) -> None:
    text, phrase = cr_bombs()[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    result, _ = run_capped([EGRESS_ROUTER, "cni", "render", str(path)])
    assert_one_line_rejection(result, phrase)
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("stdin", "phrase"),
    [
        ('{"cniVersion": "0.4.0", "name": "n", "x": ' + "[" * 1000 + "]" * 1000 + "}", "deeper"),
        ('{"cniVersion": "0.4.0", "name": "n", "name": "m"}', "duplicate key 'name'"),
        (
            '{"cniVersion": "0.4.0", "name": "n", "ip": ' + '{"a": ' * 1000 + "1" + "}" * 1001,
            "deeper",
        ),
    ],
)
def test_cni_plugin_answers_a_decode_error_for_hostile_stdin(stdin: str, phrase: str) -> None:
    env = {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "c1",
        "CNI_NETNS": "/var/run/netns/none",
        "CNI_IFNAME": "net1",
        "CNI_PATH": "/opt/cni/bin",
        "EGRESS_ROUTER_CNI_LOG": "/dev/null",
    }
    result, _ = run_capped([str(VENV_BIN / "egress-router-cni")], stdin=stdin, env=env)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    error = json.loads(result.stdout)
    assert error["code"] == 6
    assert phrase in error["msg"]
