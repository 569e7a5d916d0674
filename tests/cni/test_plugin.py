"""The plugin's process contract without namespaces: VERSION, env checks, error JSON, CHECK gate."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest

from egress_router.cni.plugin import run
from tests.cni.helpers import LAB_CONFIG, PLUGIN

ENV = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "c0ffee",
    "CNI_NETNS": "/var/run/netns/none",
    "CNI_IFNAME": "net1",
    "CNI_PATH": "/opt/cni/bin",
}


def _run(env: dict[str, str], stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run(env, stdin, out, err)
    return status, out.getvalue(), err.getvalue()


def test_version_ignores_stdin() -> None:
    status, out, _ = _run({"CNI_COMMAND": "VERSION"}, "not json")
    assert status == 0
    assert out == (
        '{"cniVersion":"1.1.0","supportedVersions":'
        '["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n'
    )


def test_version_through_the_console_script() -> None:
    proc = subprocess.run(
        [PLUGIN], env={"CNI_COMMAND": "VERSION"}, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["supportedVersions"][-2:] == ["1.0.0", "1.1.0"]


def test_no_command_prints_about() -> None:
    assert _run({}) == (0, "", "CNI egress-router plugin version unknown\n")


@pytest.mark.parametrize(
    ("changes", "code", "msg"),
    [
        ({"CNI_COMMAND": "FROB"}, 4, "unknown CNI_COMMAND: FROB"),
        ({"CNI_NETNS": None, "CNI_PATH": None}, 4, "required env variables [CNI_NETNS,CNI_PATH]"),
        ({"CNI_CONTAINERID": ""}, 3, "empty CNI_CONTAINERID"),
        ({"CNI_CONTAINERID": "a b"}, 4, "invalid characters in CNI_CONTAINERID: a b"),
        ({"CNI_IFNAME": "x" * 16}, 4, "invalid CNI_IFNAME"),
        ({"CNI_IFNAME": "a/b"}, 4, "invalid CNI_IFNAME"),
    ],
)
def test_env_errors(changes: dict[str, str | None], code: int, msg: str, tmp_path: Path) -> None:
    env = {**ENV, "EGRESS_ROUTER_CNI_LOG": str(tmp_path / "log")}
    for key, value in changes.items():
        if value is None:
            env.pop(key)
        else:
            env[key] = value
    status, out, _ = _run(env, json.dumps(LAB_CONFIG))
    assert status == 1
    doc = json.loads(out)
    assert doc["code"] == code and doc["msg"].startswith(msg)
    assert doc["cniVersion"] == "0.4.0"


@pytest.mark.parametrize(
    ("stdin", "code", "msg"),
    [
        ("{", 6, "error reading network config"),
        (json.dumps({**LAB_CONFIG, "cniVersion": "2.0.0"}), 1, "incompatible CNI versions"),
        (json.dumps({**LAB_CONFIG, "ip": {}}), 7, "ip.addresses: at least one address is required"),
    ],
)
def test_config_errors_are_cni_error_json(stdin: str, code: int, msg: str, tmp_path: Path) -> None:
    log = tmp_path / "log"
    status, out, err = _run({**ENV, "EGRESS_ROUTER_CNI_LOG": str(log)}, stdin)
    assert status == 1
    doc = json.loads(out)
    assert (doc["code"], doc["msg"][: len(msg)]) == (code, msg)
    if code == 1:
        assert doc["details"].startswith('config is "2.0.0", plugin supports ["0.1.0"')
    assert "[error] " in log.read_text()
    assert "Traceback" not in err


def test_check_needs_0_4_0(tmp_path: Path) -> None:
    env = {**ENV, "CNI_COMMAND": "CHECK", "EGRESS_ROUTER_CNI_LOG": str(tmp_path / "log")}
    status, out, _ = _run(env, json.dumps({**LAB_CONFIG, "cniVersion": "0.3.1"}))
    assert status == 1
    doc = json.loads(out)
    assert (doc["code"], doc["msg"], doc["cniVersion"]) == (
        1,
        "config version does not allow CHECK",
        "0.3.1",
    )


def test_del_without_netns_is_a_no_op(tmp_path: Path) -> None:
    env = {**ENV, "CNI_COMMAND": "DEL", "EGRESS_ROUTER_CNI_LOG": str(tmp_path / "log")}
    del env["CNI_NETNS"]
    assert _run(env, "garbage")[:2] == (0, "")


def test_ifname_eth0_is_refused(tmp_path: Path) -> None:
    env = {**ENV, "CNI_IFNAME": "eth0", "EGRESS_ROUTER_CNI_LOG": str(tmp_path / "log")}
    status, out, _ = _run(env, json.dumps(LAB_CONFIG))
    assert status == 1
    assert json.loads(out)["code"] == 4


# -- CNI spec 1.0.0 / 1.1.0: STATUS and GC (issue 8, item 10) ----------------------------------

V11 = {**LAB_CONFIG, "cniVersion": "1.1.0"}
NETWORK_ENV = {"CNI_PATH": "/opt/cni/bin"}  # STATUS and GC are about the network: no container


@pytest.mark.parametrize("command", ["STATUS", "GC"])
def test_status_and_gc_need_cni_path_only(command: str) -> None:
    status, out, _ = _run({"CNI_COMMAND": command}, json.dumps(V11))
    assert status == 1
    doc = json.loads(out)
    assert (doc["code"], doc["msg"]) == (4, "required env variables [CNI_PATH] missing")


@pytest.mark.parametrize("command", ["STATUS", "GC"])
@pytest.mark.parametrize("version", ["0.3.1", "0.4.0", "1.0.0"])
def test_status_and_gc_need_a_1_1_0_config(command: str, version: str) -> None:
    stdin = json.dumps({**LAB_CONFIG, "cniVersion": version})
    status, out, _ = _run({**NETWORK_ENV, "CNI_COMMAND": command}, stdin)
    assert status == 1
    doc = json.loads(out)
    assert (doc["code"], doc["msg"], doc["cniVersion"]) == (
        1,
        f"config version does not allow {command}",
        version,
    )


def test_status_reports_a_missing_master_as_not_available() -> None:
    stdin = json.dumps({**V11, "interfaceArgs": {"master": "nosuchmaster0"}})
    status, out, _ = _run({**NETWORK_ENV, "CNI_COMMAND": "STATUS"}, stdin)
    assert status == 1
    doc = json.loads(out)
    assert (doc["code"], doc["cniVersion"]) == (50, "1.1.0")
    assert doc["msg"] == 'plugin not available: master "nosuchmaster0" not found'


@pytest.mark.parametrize("command", ["STATUS", "GC"])
def test_status_and_gc_validate_the_config(command: str) -> None:
    status, out, _ = _run({**NETWORK_ENV, "CNI_COMMAND": command}, json.dumps({**V11, "ip": {}}))
    assert status == 1
    assert json.loads(out)["code"] == 7


@pytest.mark.parametrize(
    "attachments",
    [
        None,
        [],
        [{"containerID": "c0ffee", "ifname": "net1"}, {"containerID": "beef", "ifname": "net2"}],
    ],
)
def test_gc_accepts_the_valid_attachments_and_prints_nothing(attachments: object) -> None:
    doc = dict(V11)
    if attachments is not None:
        doc["cni.dev/valid-attachments"] = attachments
    assert _run({**NETWORK_ENV, "CNI_COMMAND": "GC"}, json.dumps(doc)) == (0, "", "")


@pytest.mark.parametrize(
    "attachments",
    [
        "c0ffee",
        [{"containerID": "c0ffee"}],
        [["c0ffee", "net1"]],
        [{"containerID": 1, "ifname": "x"}],
    ],
)
def test_gc_rejects_a_malformed_attachment_list(attachments: object) -> None:
    stdin = json.dumps({**V11, "cni.dev/valid-attachments": attachments})
    status, out, err = _run({**NETWORK_ENV, "CNI_COMMAND": "GC"}, stdin)
    assert status == 1
    doc = json.loads(out)
    assert doc["code"] == 7 and doc["msg"].startswith("cni.dev/valid-attachments")
    assert "Traceback" not in err
