"""A bundle folder or archive on disk, read back for ``verify``."""

from __future__ import annotations

from pathlib import Path

from bundler.bundle.reader import Found, Reading, scan_path
from bundler.storage.ports import BundleReader


class LocalBundleReader(BundleReader):
    def __init__(self, path: Path) -> None:
        self.path = path

    def where(self) -> Path:
        return self.path.absolute()

    def scan(self, reading: Reading) -> Found:
        return scan_path(self.path, reading)
