"""Bundles into a local folder: ``<out>/<story-id>/``, built in a hidden staging folder beside
it and swapped in whole (``staging``), with its archive beside it."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path

from bundler.bundle.archive import archive_path, archive_timestamp, build_archive, check_archive_time
from bundler.bundle.manifest import MANIFEST_NAME, SUMS_NAME
from bundler.errors import EnvError
from bundler.storage.local.records import read_seal, seal_bundle
from bundler.storage.local.source import LocalSource
from bundler.storage.local.staging import (
    ensure_target_free,
    prepare_out_dir,
    publish,
    refuse_sources,
    run_scratch,
    scratch_file,
    staging_dir,
)
from bundler.storage.ports import ArchiveFormat, BundleDestination, MediaSource, PreviousBundle, Published, Staged


class LocalDestination(BundleDestination):
    def __init__(self, out: Path) -> None:
        self.out = out  # resolved, an existing writable folder

    @classmethod
    def open(cls, out: Path) -> LocalDestination:
        return cls(prepare_out_dir(out))

    def __str__(self) -> str:
        return str(self.out)

    def claim(self, story_id: str, overwrite: bool) -> None:
        ensure_target_free(self.out / story_id, overwrite)

    def refuse_sources(self, story_id: str, source: MediaSource) -> None:
        if isinstance(source, LocalSource):
            refuse_sources(self.out / story_id, source.root)

    def staging(self, story_id: str) -> AbstractContextManager[Path]:
        return staging_dir(self.out, story_id)

    def previous(self, story_id: str) -> PreviousBundle | None:
        """The bundle a build replaces (``<out>/<story-id>``), if any, when its files could be reused
        (reuse records live in extended attributes)."""
        if not hasattr(os, "getxattr"):
            return None
        candidate = self.out / story_id
        try:
            mode = os.lstat(candidate).st_mode
        except OSError:
            return None
        return PreviousBundle(candidate, read_seal(candidate)) if stat.S_ISDIR(mode) else None

    def publish(
        self, staged: Staged, overwrite: bool, archive: ArchiveFormat | None, stop_if_cancelled: Callable[[], None]
    ) -> Published:
        target = self.out / staged.story_id
        unchanged = staged.unchanged_since is not None  # then the bundle in place already is the new one
        placed: tuple[Path, Path] | None = None
        if archive is not None:  # built before the swap, moved into place right after it
            temp = build_archive(
                target if unchanged else staged.staging,
                staged.story_id,
                archive,
                archive_timestamp(staged.exported_at),
                scratch_file(staged.staging, f".{archive}.tmp"),
                stop_if_cancelled,
            )
            placed = (temp, archive_path(target, archive))
        stop_if_cancelled()  # the last moment to stop
        publish(staged.staging, target, overwrite, placed, unchanged=unchanged)
        seal_bundle(target, staged.unchanged_since)
        text_bytes = sum((target / name).stat().st_size for name in (MANIFEST_NAME, SUMS_NAME))
        return Published(target, placed[1] if placed else None, text_bytes)


def write_archive(bundle_dir: Path, fmt: ArchiveFormat, timestamp: datetime) -> Path:
    """Write ``<bundle_dir.parent>/<bundle_dir.name>.<fmt>`` and return its path.

    An existing archive at that path is replaced atomically; whether it may be
    is the caller's decision.
    """
    check_archive_time(fmt, timestamp)
    if not bundle_dir.is_dir():
        raise EnvError(f"Bundle folder {bundle_dir} does not exist.")
    bundle_dir = Path(os.path.abspath(bundle_dir))  # "." or "x/.." still name the top folder
    target = archive_path(bundle_dir, fmt)
    with run_scratch(bundle_dir.parent, bundle_dir.name) as scratch:
        temp = build_archive(bundle_dir, bundle_dir.name, fmt, timestamp, scratch_file(scratch, f".{fmt}.tmp"))
        try:
            os.replace(temp, target)
        except OSError as exc:
            raise EnvError(f"Cannot write the archive {target}: {exc.strerror or exc}.") from None
    return target
