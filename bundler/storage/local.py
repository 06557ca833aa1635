"""Media in a local folder, bundles into a local folder.

The rules live where they always did: ``bundler.assets`` (stored paths, content
checks), ``bundler.media`` (the fast parallel prober), ``bundler.copying``
(copy-and-hash, reuse of unchanged files) and ``bundler.publish`` (staging
folder beside the target, atomic swap). This module puts them behind the seam.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractContextManager
from pathlib import Path

from bundler.manifest import MANIFEST_NAME, SUMS_NAME, FileEntry
from bundler.plan.types import FileCopy, MediaRequest, MediaStatus
from bundler.storage.base import BundleDestination, MediaSource, Progress, Published


class LocalSource(MediaSource):
    def __init__(self, root: Path) -> None:
        self.root = root  # resolved, an existing folder

    @classmethod
    def open(cls, raw: str) -> LocalSource:
        from bundler.assets import resolve_assets_root

        return cls(resolve_assets_root(raw))

    def __str__(self) -> str:
        return str(self.root)

    def probe(self, requests: Collection[MediaRequest], jobs: int) -> dict[MediaRequest, MediaStatus]:
        from bundler.media import probe_media

        return probe_media(requests, self.root, jobs)

    def copy(self, copy: FileCopy, destination: Path, progress: Progress | None) -> FileEntry:
        from bundler.copying import copy_and_hash

        return copy_and_hash(copy, destination, progress)

    def current(self, copy: FileCopy, old: str) -> FileEntry | None:
        from bundler.copying import current_entry

        return current_entry(copy, old)

    def reuse(self, copy: FileCopy, previous: str, destination: str) -> FileEntry | None:
        from bundler.copying import reuse_previous

        return reuse_previous(copy, previous, destination)


class LocalDestination(BundleDestination):
    """``<out>/<story-id>/``, built in a hidden staging folder beside it and swapped in whole."""

    def __init__(self, out: Path) -> None:
        self.out = out  # resolved, an existing writable folder

    @classmethod
    def open(cls, out: Path) -> LocalDestination:
        from bundler.publish import prepare_out_dir

        return cls(prepare_out_dir(out))

    def __str__(self) -> str:
        return str(self.out)

    def claim(self, story_id: str, overwrite: bool) -> None:
        from bundler.publish import ensure_target_free

        ensure_target_free(self.out / story_id, overwrite)

    def staging(self, story_id: str) -> AbstractContextManager[Path]:
        from bundler.publish import staging_dir

        return staging_dir(self.out, story_id)

    def previous(self, story_id: str) -> Path | None:
        from bundler.build import previous_bundle

        return previous_bundle(self.out, story_id)

    def publish(
        self, staging: Path, story_id: str, overwrite: bool, archive: str | None, exported_at: str
    ) -> Published:
        from bundler.archive import archive_timestamp, write_archive
        from bundler.publish import publish

        target = self.out / story_id
        publish(staging, target, overwrite)
        archive_path = None
        if archive is not None:
            archive_path = write_archive(target, archive, archive_timestamp(exported_at))  # type: ignore[arg-type]
        text_bytes = sum((target / name).stat().st_size for name in (MANIFEST_NAME, SUMS_NAME))
        return Published(target, archive_path, text_bytes)
