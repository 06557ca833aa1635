"""The storage seam: where media comes from and where a bundle goes (DESIGN §6).

``load → plan → build → publish`` does not care whether the assets root is a
folder or a bucket prefix, or whether ``--out`` is a folder or a bucket: the
planner asks a ``MediaSource`` about stored paths, ``build`` copies through it
into a local staging folder, and a ``BundleDestination`` publishes that folder.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from bundler.bundle.manifest import FileEntry
from bundler.pipeline.plan.types import FileCopy, MediaRequest, MediaStatus

Progress = Callable[[int], None]  # called with the bytes just copied
S3_SCHEME = "s3://"


def is_s3_url(value: str | Path | None) -> bool:
    return isinstance(value, str) and value.startswith(S3_SCHEME)


class MediaSource(ABC):
    """Media under an assets root: checked by the planner's requests, then copied by ``build``."""

    @abstractmethod
    def probe(self, requests: Collection[MediaRequest], jobs: int) -> dict[MediaRequest, MediaStatus]:
        """Check every requested stored path (in parallel): a usable file or a problem code."""

    @abstractmethod
    def copy(self, copy: FileCopy, destination: Path, progress: Progress | None) -> FileEntry:
        """Stream one checked file into ``destination`` (a new file), hashing it on the way."""

    def current(self, copy: FileCopy, old: str, seal: int | None = None) -> FileEntry | None:
        """``old`` (a file of the bundle being replaced) when it provably holds the source's bytes.

        ``seal``: the previous bundle's seal (``bundler.storage.local.copying.seal_bundle``), if any."""
        return None

    def reuse(self, copy: FileCopy, previous: str, destination: str, seal: int | None = None) -> FileEntry | None:
        """Link ``copy`` from the previous bundle folder when provably current, else None."""
        return None


@dataclass(frozen=True, slots=True)
class Published:
    """Where a bundle went: a folder path or an ``s3://`` URL (and its archive, if any)."""

    bundle: Path | str
    archive: Path | str | None
    text_bytes: int  # manifest.json + SHA256SUMS, for the report's byte count


class BundleDestination(ABC):
    """Where bundles go. A bundle is built in a local staging folder, then published whole."""

    @abstractmethod
    def claim(self, story_id: str, overwrite: bool) -> None:
        """Fail early (``OutputExistsError``) when a bundle exists and ``overwrite`` is off."""

    @abstractmethod
    def staging(self, story_id: str) -> AbstractContextManager[Path]:
        """An empty local folder to build in, removed on exit unless it was published."""

    def previous(self, story_id: str) -> Path | None:
        """A local folder holding the bundle being replaced, whose files ``build`` may reuse."""
        return None

    @abstractmethod
    def publish(
        self,
        staging: Path,
        story_id: str,
        overwrite: bool,
        archive: str | None,
        exported_at: str,
        check: Callable[[], None] | None = None,
    ) -> Published:
        """Make the complete ``staging`` folder the story's bundle (and its archive), all at once.

        ``check`` raises to stop the run (an interrupt): it is called while the
        archive is built and before publishing begins, never halfway through it."""
