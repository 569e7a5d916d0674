"""A directory laid out like a ConfigMap volume the kubelet maintains, for reload tests.

``dir/KEY -> ..data/KEY``, ``..data -> ..<version>``; an update writes a new version
directory and swaps ``..data`` with one rename, as the kubelet's atomic writer does.
"""

from __future__ import annotations

import os
from pathlib import Path


class ConfigMapVolume:
    def __init__(self, root: Path, key: str, text: str) -> None:
        self.root, self.key, self.version = root, key, 0
        root.mkdir(parents=True, exist_ok=True)
        self.update(text)
        (root / key).symlink_to(Path("..data") / key)

    @property
    def path(self) -> str:
        return str(self.root / self.key)

    def update(self, text: str) -> None:
        self.version += 1
        data = self.root / f"..v{self.version}"
        data.mkdir()
        (data / self.key).write_text(text)
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(data.name)
        os.rename(tmp, self.root / "..data")
