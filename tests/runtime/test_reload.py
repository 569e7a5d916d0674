"""The file poll behind reloads: a ConfigMap ``..data`` swap is seen, a vanished file is not."""

from __future__ import annotations

import os
from pathlib import Path

from egress_router.runtime.reload import FileWatch, ReloadCounts, digest
from tests.configmap import ConfigMapVolume


def test_configmap_swap_is_seen_once(tmp_path: Path) -> None:
    volume = ConfigMapVolume(tmp_path, "destination", "80 tcp 203.0.113.25\n")
    watch = FileWatch(volume.path)
    assert not watch.changed()
    volume.update("80 tcp 203.0.113.26\n")  # same size: the new inode tells
    assert watch.changed()
    assert not watch.changed()


def test_rewrite_in_place_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("a\n")
    watch = FileWatch(str(path))
    path.write_text("bb\n")
    assert watch.changed()


def test_vanished_file_is_not_a_new_configuration(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("a\n")
    watch = FileWatch(str(path))
    os.unlink(path)
    assert not watch.changed()
    path.write_text("a\n")
    assert watch.changed()


def test_counts_and_digest() -> None:
    counts = ReloadCounts()
    counts.record(None)
    counts.record("EGRESS_DESTINATION line 2: bad")
    assert (counts.ok, counts.failed, counts.last_error) == (1, 1, "EGRESS_DESTINATION line 2: bad")
    assert digest("a") == digest("a") != digest("b")
