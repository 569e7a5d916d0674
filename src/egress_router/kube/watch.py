"""Watching Kubernetes resources: list, then watch from that resourceVersion, for ever.

Owns: one ``Watcher`` per resource (a custom resource by group/version/plural, or core
Namespaces and Pods with an optional field selector) that lists, hands the whole list to its
sink as a ``SYNC`` (the complete current state, so a sink forgets what is no longer there), then
streams ``ADDED``/``MODIFIED``/``DELETED`` from the list's ``resourceVersion`` with bookmarks;
a server-side timeout resumes from the last version seen, ``410 Gone`` (history compacted)
lists again, and any connection error or refusal waits with exponential back-off and jitter
before listing again. Objects reach the sink as plain dicts exactly as the API server sent them.
Must not: decide anything about the objects, or block the sink's thread (the sink is called
from the watcher's own thread and must only hand the event on).
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.watch import Watch
from urllib3.exceptions import HTTPError

from egress_router.kube.client import Kube, KubeError, _wrap

SYNC = "SYNC"  # the event type of a complete listing (object: {"items": [...]})
WATCH_TIMEOUT = 240  # s: the API server ends each watch after this; we resume from the version
READ_TIMEOUT = WATCH_TIMEOUT + 30  # s: no byte for this long (bookmarks come every ~60 s): dead
CONNECT_TIMEOUT = 5.0  # s


@dataclass(frozen=True)
class Resource:
    """What to watch: ``group`` "" is the core API (``namespaces``, ``pods``)."""

    group: str
    version: str
    plural: str
    field_selector: str | None = None

    def describe(self) -> str:
        where = f"{self.group}/{self.version}" if self.group else self.version
        return f"{self.plural}.{where}" + (
            f" ({self.field_selector})" if self.field_selector else ""
        )


@dataclass(frozen=True)
class WatchEvent:
    """One change (``ADDED``, ``MODIFIED``, ``DELETED``) or a complete listing (``SYNC``)."""

    resource: Resource
    type: str
    object: Mapping[str, Any]


@dataclass(frozen=True)
class Backoff:
    """Delays between reconnection attempts (seconds): first, doubling, capped, +-jitter."""

    first: float = 0.5
    cap: float = 30.0
    jitter: float = 0.2  # fraction

    def delay(self, failures: int) -> float:
        base = min(self.first * 2.0 ** min(failures - 1, 30), self.cap)
        return base * (1.0 + random.uniform(-self.jitter, self.jitter))  # not crypto


Sink = Callable[[WatchEvent], None]
Report = Callable[[str], None]  # one line about connection trouble or recovery


class Watcher:
    """List+watch ``resource`` into ``sink`` until ``stop`` is set (run it in its own thread)."""

    def __init__(
        self,
        kube: Kube,
        resource: Resource,
        sink: Sink,
        *,
        report: Report | None = None,
        backoff: Backoff | None = None,
        watch_timeout: int = WATCH_TIMEOUT,
    ) -> None:
        self.kube = kube
        self.resource = resource
        self.sink = sink
        self.report = report or (lambda _line: None)
        self.backoff = backoff or Backoff()
        self.watch_timeout = watch_timeout
        self.resource_version: str | None = None
        self._watch: Watch | None = None

    # -- the two API calls ----------------------------------------------------------------------

    def _list_function(self) -> Callable[..., Any]:
        r = self.resource
        if r.group:
            api = client.CustomObjectsApi(self.kube.api)

            def custom(**kwargs: Any) -> Any:
                return api.list_cluster_custom_object(r.group, r.version, r.plural, **kwargs)

            return custom
        core = client.CoreV1Api(self.kube.api)
        functions: dict[str, Callable[..., Any]] = {
            "namespaces": core.list_namespace,
            "pods": core.list_pod_for_all_namespaces,
        }
        if r.plural in functions:
            return functions[r.plural]
        raise KubeError(f"cannot watch {r.describe()}: only namespaces and pods of the core API")

    def _selectors(self) -> dict[str, Any]:
        return (
            {"field_selector": self.resource.field_selector} if self.resource.field_selector else {}
        )

    def list(self) -> str:
        """One complete listing to the sink; returns its resourceVersion."""
        response = self._list_function()(
            _preload_content=False,
            _request_timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            **self._selectors(),
        )
        try:
            body = json.loads(response.data)
        finally:
            response.release_conn()
        version = str(body.get("metadata", {}).get("resourceVersion", ""))
        self.sink(WatchEvent(self.resource, SYNC, {"items": body.get("items") or []}))
        return version

    def watch(self, version: str, stop: threading.Event) -> str:
        """Stream changes from ``version`` until the server ends the watch; the last version."""
        self._watch = Watch()
        stream = self._watch.stream(
            self._list_function(),
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=self.watch_timeout,
            deserialize=False,
            _request_timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            **self._selectors(),
        )
        for event in stream:
            if stop.is_set():
                self._watch.stop()
                break
            kind, obj = event.get("type"), event.get("object")
            if not isinstance(obj, dict):
                continue
            version = str(obj.get("metadata", {}).get("resourceVersion") or version)
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                self.sink(WatchEvent(self.resource, str(kind), obj))
        return version

    # -- the loop ---------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                if self.resource_version is None:
                    self.resource_version = self.list()
                    if failures:
                        self.report(f"{self.resource.describe()}: connected again")
                    failures = 0
                self.resource_version = self.watch(self.resource_version, stop)
            except ApiException as exc:
                self.resource_version = None  # 410 Gone and every refusal: list again
                if exc.status == 410:
                    continue
                failures += 1
                self._trouble(_wrap(f"watch {self.resource.describe()}", exc), failures, stop)
            except (HTTPError, OSError, ValueError) as exc:
                self.resource_version = None
                failures += 1
                self._trouble(_wrap(f"watch {self.resource.describe()}", exc), failures, stop)

    def _trouble(self, error: KubeError, failures: int, stop: threading.Event) -> None:
        if stop.is_set():
            return  # stopping: the connection was closed on purpose
        delay = self.backoff.delay(failures)
        if failures == 1 or failures % 10 == 0:
            self.report(f"{error.one_line()}; retrying in {delay:.1f} s (attempt {failures})")
        stop.wait(delay)

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.stop()


def start(watchers: list[Watcher], stop: threading.Event) -> list[threading.Thread]:
    """Run each watcher in a daemon thread (a blocked read must not keep the process alive)."""
    threads = []
    for watcher in watchers:
        thread = threading.Thread(
            target=watcher.run,
            args=(stop,),
            name=f"watch {watcher.resource.plural}",
            daemon=True,
        )
        thread.start()
        threads.append(thread)
    return threads
