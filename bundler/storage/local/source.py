"""Media in a local folder: checked by the fast prober, copied (or reused) while hashed."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from bundler.bundle.manifest import FileEntry
from bundler.media.stream import Progress
from bundler.pipeline.plan.types import FileCopy, MediaRequest, MediaStatus
from bundler.storage.local import encoded
from bundler.storage.local.copying import copy_and_hash, disk_file, hash_file
from bundler.storage.local.files import resolve_assets_root
from bundler.storage.local.probe import probe_media
from bundler.storage.local.records import same_file
from bundler.storage.local.reuse import current_entry, reuse_previous
from bundler.storage.ports import KnownFiles, MediaSource, SourceRead


class LocalSource(MediaSource):
    def __init__(self, root: Path) -> None:
        self.root = root  # resolved, an existing folder

    @classmethod
    def open(cls, raw: str) -> LocalSource:
        return cls(resolve_assets_root(raw))

    def __str__(self) -> str:
        return str(self.root)

    def probe(
        self, requests: Collection[MediaRequest], jobs: int, known: KnownFiles | None = None
    ) -> dict[MediaRequest, MediaStatus]:
        # a path and a size prove nothing about a file's bytes: records are not trusted here
        return probe_media(requests, self.root, jobs)

    def copy(self, copy: FileCopy, destination: Path, progress: Progress | None) -> FileEntry:
        return copy_and_hash(copy, destination, progress)

    def source_sha256(self, copy: FileCopy) -> str | None:
        # a read and a hash: cheap next to encoding, and only asked when an encoding may be reused
        hashed = hash_file(disk_file(copy).path)
        if hashed is None or hashed[2].st_size != copy.source.size or not same_file(hashed[1], hashed[2]):
            return None  # gone or changing since the check: encoding it reports what became of it
        return hashed[0]

    def read(self, copy: FileCopy) -> SourceRead:
        return encoded.read_source(copy)

    def remember(self, copy: FileCopy, fd: int, read: SourceRead, made: FileEntry) -> None:
        encoded.remember(copy, fd, read, made)

    def current(self, copy: FileCopy, old: str, seal: int | None = None) -> FileEntry | None:
        if copy.encoding is not None:
            return encoded.current_encoded(copy, old, seal)
        return current_entry(copy, old, seal)

    def reuse(self, copy: FileCopy, previous: str, destination: str, seal: int | None = None) -> FileEntry | None:
        if copy.encoding is not None:
            return encoded.reuse_encoded(copy, previous, destination, seal)
        return reuse_previous(copy, previous, destination, seal)
