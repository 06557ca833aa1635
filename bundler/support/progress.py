"""The one progress protocol: bytes moved for one job (a story's build, a bundle's read)."""

from __future__ import annotations

from typing import Protocol


class ProgressSink(Protocol):
    def start(self, total_bytes: int | None) -> None:
        """Once, before any ``advance``; None when the total is not known yet (an archive)."""

    def advance(self, count: int) -> None:
        """``count`` more bytes moved (called from worker threads)."""
