"""The Pod spec reader behind ``Podman.start_pod``: what it passes to ``podman run``."""

from __future__ import annotations

import pytest

from egress_router.lab.podman import PodmanError, pod_spec

POD = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: routes}
data: {destination: "80 tcp 203.0.113.25\\n"}
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers:
  - name: setup
    image: img
    securityContext: {privileged: true}
    env:
    - {name: A, value: "1"}
    - name: B
      valueFrom: {configMapKeyRef: {name: routes, key: destination}}
  containers:
  - name: main
    image: img
    command: [/bin/sh, -c]
    args: [sleep 1]
    securityContext: {capabilities: {add: [NET_ADMIN]}}
---
kind: Service
metadata: {name: ignored}
"""


def test_run_arguments() -> None:
    pod = pod_spec(POD)
    assert pod.init[0].run_args("p") == [
        "--name", "p-setup", "--privileged",
        "--env", "A=1", "--env", "B=80 tcp 203.0.113.25\n", "img",
    ]  # fmt: skip
    assert pod.containers[0].run_args("p") == [
        "--name", "p-main", "--cap-add=NET_ADMIN", "--entrypoint", "/bin/sh", "img", "-c",
        "sleep 1",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (POD.replace("key: destination", "key: other"), "no ConfigMap key"),
        (POD.replace("    image: img\n    command", "    image: img\n    ports: []\n    command"),
         "unsupported fields ['ports']"),
        (POD.replace("  initContainers:", "  hostNetwork: true\n  initContainers:"),
         "unsupported fields ['hostNetwork']"),
        ("kind: ConfigMap\nmetadata: {name: x}\n", "expected one Pod, found 0"),
    ],
)  # fmt: skip
def test_unsupported_input_is_an_error(text: str, message: str) -> None:
    with pytest.raises(PodmanError, match=message.replace("[", r"\[").replace("]", r"\]")):
        pod_spec(text)
