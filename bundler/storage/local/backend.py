"""Media in a local folder, bundles into a local folder.

The rules live where they always did: ``bundler.media.paths`` (stored paths, content
checks), ``bundler.storage.local.probe`` (the fast parallel prober), ``bundler.storage.local.copying``
(copy-and-hash, reuse of unchanged files) and ``bundler.storage.local.staging`` (staging
folder beside the target, atomic swap). This module puts them behind the seam.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from pathlib import Path

from bundler.bundle.manifest import MANIFEST_NAME, SUMS_NAME, FileEntry
from bundler.pipeline.plan.types import FileCopy, MediaRequest, MediaStatus
from bundler.storage.ports import BundleDestination, MediaSource, Progress, Published


class LocalSource(MediaSource):
    def __init__(self, root: Path) -> None:
        self.root = root  # resolved, an existing folder

    @classmethod
    def open(cls, raw: str) -> LocalSource:
        from bundler.media.paths import resolve_assets_root

        return cls(resolve_assets_root(raw))

    def __str__(self) -> str:
        return str(self.root)

    def probe(self, requests: Collection[MediaRequest], jobs: int) -> dict[MediaRequest, MediaStatus]:
        from bundler.storage.local.probe import probe_media

        return probe_media(requests, self.root, jobs)

    def copy(self, copy: FileCopy, destination: Path, progress: Progress | None) -> FileEntry:
        from bundler.storage.local.copying import copy_and_hash

        return copy_and_hash(copy, destination, progress)

    def current(self, copy: FileCopy, old: str, seal: int | None = None) -> FileEntry | None:
        from bundler.storage.local.copying import current_entry

        return current_entry(copy, old, seal)

    def reuse(self, copy: FileCopy, previous: str, destination: str, seal: int | None = None) -> FileEntry | None:
        from bundler.storage.local.copying import reuse_previous

        return reuse_previous(copy, previous, destination, seal)


class LocalDestination(BundleDestination):
    """``<out>/<story-id>/``, built in a hidden staging folder beside it and swapped in whole."""

    def __init__(self, out: Path) -> None:
        self.out = out  # resolved, an existing writable folder

    @classmethod
    def open(cls, out: Path) -> LocalDestination:
        from bundler.storage.local.staging import prepare_out_dir

        return cls(prepare_out_dir(out))

    def __str__(self) -> str:
        return str(self.out)

    def claim(self, story_id: str, overwrite: bool) -> None:
        from bundler.storage.local.staging import ensure_target_free

        ensure_target_free(self.out / story_id, overwrite)

    def staging(self, story_id: str) -> AbstractContextManager[Path]:
        from bundler.storage.local.staging import staging_dir

        return staging_dir(self.out, story_id)

    def previous(self, story_id: str) -> Path | None:
        from bundler.pipeline.build import previous_bundle

        return previous_bundle(self.out, story_id)

    def publish(
        self,
        staging: Path,
        story_id: str,
        overwrite: bool,
        archive: str | None,
        exported_at: str,
        check: Callable[[], None] | None = None,
    ) -> Published:
        from bundler.bundle.archive import archive_path, archive_timestamp, build_archive
        from bundler.pipeline.build import unchanged_since
        from bundler.storage.local.copying import seal_bundle
        from bundler.storage.local.staging import publish, scratch_file

        target = self.out / story_id
        unchanged = unchanged_since(staging)  # then the bundle in place already is the new one
        placed: tuple[Path, Path] | None = None
        if archive is not None:  # built before the swap, moved into place right after it
            temp = build_archive(
                target if unchanged is not None else staging,
                story_id,
                archive,  # type: ignore[arg-type]
                archive_timestamp(exported_at),
                scratch_file(staging, f".{archive}.tmp"),
                check,
            )
            placed = (temp, archive_path(target, archive))  # type: ignore[arg-type]
        if check is not None:
            check()  # the last moment to stop
        publish(staging, target, overwrite, placed)
        seal_bundle(target, unchanged)
        text_bytes = sum((target / name).stat().st_size for name in (MANIFEST_NAME, SUMS_NAME))
        return Published(target, placed[1] if placed else None, text_bytes)
