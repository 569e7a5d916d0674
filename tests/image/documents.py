"""The reference documents' pod YAML, as printed (image names and addresses included), and the
one adaptation the image tests make: image names, and the site's addresses for the lab's.

Sources: blog-egress-router.en.txt (legacy pod), ocp3-egress-firewall-and-router.ja.txt
8.6.1.1 (init pod), 8.6.1.2 + 8.6.1.3 (multi-destination pod fed from a ConfigMap made with
`oc create configmap egress-routes --from-file=destination=my-egress-destination.txt`),
8.6.1.4 (HTTP proxy pod) and 8.6.1.5 (DNS proxy pod).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.reference_examples import REDIRECT_CONFIGMAP

LEGACY = """\
apiVersion: v1
kind: Pod
metadata:
  name: egress-1
  labels:
    name: egress-1
  annotations:
    pod.network.openshift.io/assign-macvlan: "true"
spec:
  containers:
  - name: egress-router
    image: openshift3/ose-egress-router
    securityContext:
      privileged: true
    env:
    - name: EGRESS_SOURCE
      value: 192.168.123.99
    - name: EGRESS_GATEWAY
      value: 192.168.123.1
    - name: EGRESS_DESTINATION
      value: 192.168.123.91
"""

INIT = """\
apiVersion: v1
kind: Pod
metadata:
  name: egress-1
  labels:
    name: egress-1
  annotations:
    pod.network.openshift.io/assign-macvlan: "true"
spec:
  initContainers:
  - name: egress-router
    image: registry.redhat.io/openshift3/ose-egress-router
    securityContext:
      privileged: true
    env:
    - name: EGRESS_SOURCE
      value: 192.168.12.99/24
    - name: EGRESS_GATEWAY
      value: 192.168.12.1
    - name: EGRESS_DESTINATION
      value: 203.0.113.25
    - name: EGRESS_ROUTER_MODE
      value: init
  containers:
  - name: egress-router-wait
    image: registry.redhat.io/openshift3/ose-pod
  nodeSelector:
    site: springfield-1
"""

CONFIGMAP = yaml.safe_dump(
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "egress-routes"},
        "data": {"destination": REDIRECT_CONFIGMAP},
    },
    sort_keys=False,
)

MULTI_FROM_CONFIGMAP = """\
apiVersion: v1
kind: Pod
metadata:
  name: egress-multi
  labels:
    name: egress-multi
  annotations:
    pod.network.openshift.io/assign-macvlan: "true"
spec:
  initContainers:
  - name: egress-router
    image: registry.redhat.io/openshift3/ose-egress-router
    securityContext:
      privileged: true
    env:
    - name: EGRESS_SOURCE
      value: 192.168.12.99/24
    - name: EGRESS_GATEWAY
      value: 192.168.12.1
    - name: EGRESS_DESTINATION
      valueFrom:
        configMapKeyRef:
          name: egress-routes
          key: destination
    - name: EGRESS_ROUTER_MODE
      value: init
  containers:
  - name: egress-router-wait
    image: registry.redhat.io/openshift3/ose-pod
"""

HTTP_PROXY = """\
apiVersion: v1
kind: Pod
metadata:
  name: egress-http-proxy
  labels:
    name: egress-http-proxy
  annotations:
    pod.network.openshift.io/assign-macvlan: "true"
spec:
  initContainers:
  - name: egress-router-setup
    image: registry.redhat.io/openshift3/ose-egress-router
    securityContext:
      privileged: true
    env:
    - name: EGRESS_SOURCE
      value: 192.168.12.99/24
    - name: EGRESS_GATEWAY
      value: 192.168.12.1
    - name: EGRESS_ROUTER_MODE
      value: http-proxy
  containers:
  - name: egress-router-proxy
    image: registry.redhat.io/openshift3/ose-egress-http-proxy
    env:
    - name: EGRESS_HTTP_PROXY_DESTINATION
      value: |
        !*.example.com
        !192.168.1.0/24
        *
"""

DNS_PROXY = """\
apiVersion: v1
kind: Pod
metadata:
  name: egress-dns-proxy
  labels:
    name: egress-dns-proxy
  annotations:
    pod.network.openshift.io/assign-macvlan: "true"
spec:
  initContainers:
  - name: egress-router-setup
    image: registry.redhat.io/openshift3/ose-egress-router
    securityContext:
      privileged: true
    env:
    - name: EGRESS_SOURCE
      value: 192.168.12.99/24
    - name: EGRESS_GATEWAY
      value: 192.168.12.1
    - name: EGRESS_ROUTER_MODE
      value: dns-proxy
  containers:
  - name: egress-dns-proxy
    image: registry.redhat.io/openshift3/ose-egress-dns-proxy
    env:
    - name: EGRESS_DNS_PROXY_DEBUG
      value: "1"
    - name: EGRESS_DNS_PROXY_DESTINATION
      value: |
        # Egress routes for Project "Foo", version 5
        80   203.0.113.25
        100  example.com
        8080 203.0.113.26 80
        8443 foobar.com 443
"""

REFERENCE_IMAGES = (
    "openshift3/ose-egress-router",
    "registry.redhat.io/openshift3/ose-egress-router",
    "registry.redhat.io/openshift3/ose-egress-http-proxy",
    "registry.redhat.io/openshift3/ose-egress-dns-proxy",
    "egress-router:latest",  # deploy/*.yaml
)
REFERENCE_PAUSE = (
    "openshift3/ose-pod",
    "registry.redhat.io/openshift3/ose-pod",
    "registry.k8s.io/pause:3.9",  # deploy/*.yaml
)

# The site's network in the documents -> the lab's (the reserved source, its gateway, and the
# blog's web server on that network): the addresses an administrator writes for their site.
SITE_TO_LAB = {
    "192.168.12.99/24": "198.19.123.99/24",
    "192.168.12.1": "198.19.123.1",
    "192.168.123.99": "198.19.123.99",
    "192.168.123.1": "198.19.123.1",
    "192.168.123.91": "203.0.113.25",
}
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SITE_VARIABLES = ("EGRESS_SOURCE", "EGRESS_GATEWAY", "EGRESS_DESTINATION")


def adapt(text: str, image: str, pause_image: str) -> tuple[str, list[str]]:
    """The documents in ``text`` with our image names and the lab's addresses; also returns
    the list of what was changed (``path: old -> new``), so a test can show nothing else was."""
    changes: list[str] = []
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    for doc in docs:
        if doc.get("kind") != "Pod":
            continue
        spec = doc["spec"]
        for group in ("initContainers", "containers"):
            for c in spec.get(group, []):
                where = f"{group}/{c['name']}"
                old = c["image"]
                if old in REFERENCE_IMAGES:
                    c["image"] = image
                elif old in REFERENCE_PAUSE:
                    c["image"] = pause_image
                changes.append(f"{where}.image: {old} -> {c['image']}")
                for var in c.get("env", []):
                    _site_value(var, where, changes)
    return yaml.safe_dump_all(docs, sort_keys=False), changes


def _site_value(var: dict[str, Any], where: str, changes: list[str]) -> None:
    if var["name"] in SITE_VARIABLES and var.get("value") in SITE_TO_LAB:
        new = SITE_TO_LAB[var["value"]]
        changes.append(f"{where}.env.{var['name']}: {var['value']} -> {new}")
        var["value"] = new


def strip_changes(text: str, mapping: Mapping[str, str]) -> Any:
    """Parsed documents with every ``image`` and site value replaced by a placeholder."""
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    for doc in docs:
        for group in ("initContainers", "containers"):
            for c in doc.get("spec", {}).get(group, []):
                c["image"] = "IMAGE"
                for var in c.get("env", []):
                    if var["name"] in SITE_VARIABLES and (
                        var.get("value") in mapping or var.get("value") in mapping.values()
                    ):
                        var["value"] = "SITE"
    return docs
