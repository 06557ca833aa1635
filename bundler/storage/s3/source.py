"""Media in an S3 bucket (docs/design.md §3, §4).

A stored path is the key ``<prefix>/<path>`` (the same normalized path as on disk, so
unsafe paths are rejected by the planner before any request).

``check``: one ranged GET of the object's first bytes, which also tells its size and
ETag; a format check that needs bytes beyond that window (the end of a large file)
reads them with one more ranged GET.

``assemble`` (``for_assemble``): each object is read once. With source records of the
published version at hand, the prefix is listed first (one request per 1,000 keys) and an
object whose key, size and ETag are the recorded ones is trusted: not read at all. Every
other object is downloaded whole into run scratch, hashed on the way and checked from the
downloaded bytes; the build then links that copy into staging.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path

from bundler.bundle.manifest import FileEntry
from bundler.errors import MediaChangedError
from bundler.media.stream import CHUNK, Progress, stream
from bundler.media.structure import sniff, structure_problem
from bundler.pipeline.plan.types import FileCopy, MediaRequest, MediaStatus
from bundler.storage.ports import KnownFiles, MediaSource, Provenance, SourceRead
from bundler.storage.s3.client import Changed, EmptyObject, NotFound, ObjectInfo, S3Client, S3Url, in_flight
from bundler.storage.s3.scratch import scratch_folder
from bundler.support.workers import run_parallel

HEAD_WINDOW = 64 * 1024  # one ranged GET: every header we check, and all of a small file
MAX_KEY_BYTES = 1024  # S3's limit on a key


@dataclass(frozen=True, slots=True)
class StoredObject:
    """A media object in a bucket that passed every check; ``etag`` pins the checked version."""

    key: str
    size: int
    etag: str | None
    sha256: str | None = None  # known: from a trusted record, or hashed while downloaded
    fetched: str | None = None  # the local copy the check downloaded (assemble only)

    @property
    def location(self) -> str:
        return self.key


class RangedObject:
    """``read_at`` over an object: the first window from one GET, other ranges on demand (cached)."""

    def __init__(self, client: S3Client, key: str) -> None:
        self.client = client
        self.key = key
        self.head, self.info = client.read_range(key, 0, HEAD_WINDOW)
        self.extra: dict[tuple[int, int], bytes] = {}

    def read_at(self, offset: int, length: int) -> bytes:
        end = min(offset + length, self.info.size)
        if offset >= end:
            return b""
        if end <= len(self.head):
            return self.head[offset:end]
        for (start, stop), data in self.extra.items():
            if start <= offset and end <= stop:
                return data[offset - start : end - start]
        # one more window: the file's last one when the read is near the end (PNG IEND, a trailing
        # moov box), so later reads there are free; else the window starting at the read
        size = self.info.size
        start = min(offset, max(0, size - HEAD_WINDOW))
        stop = min(size, max(end, start + HEAD_WINDOW))
        data, _ = self.client.read_range(self.key, start, stop)
        self.extra[(start, start + len(data))] = data
        return data[offset - start : end - start]


class S3Source(MediaSource):
    def __init__(self, url: S3Url, client: S3Client, fetch: Path | None = None) -> None:
        self.url = url
        self.client = client
        self.fetch = fetch  # set for one assemble: objects are downloaded whole by the checks
        self.names = count()

    @classmethod
    def open(cls, raw: str) -> S3Source:
        url = S3Url.parse(raw, "Assets root")
        client = S3Client(url.bucket)
        # reachable, bucket exists, credentials valid; never a listing: a story depends only on its own
        # keys, and one key elsewhere that the client cannot parse must not fail it
        with client.errors("reading the assets root"):
            client.probe(url.prefix)
        return cls(url, client)

    def __str__(self) -> str:
        return str(self.url)

    @contextmanager
    def for_assemble(self) -> Iterator[MediaSource]:
        with scratch_folder() as fetch:
            yield S3Source(self.url, self.client, fetch)

    def probe(
        self, requests: Collection[MediaRequest], jobs: int, known: KnownFiles | None = None
    ) -> dict[MediaRequest, MediaStatus]:
        ordered = sorted(requests, key=lambda r: (r.relative, r.kind))
        listed = self._listing(ordered) if known and self.fetch else None

        def one(request: MediaRequest) -> MediaStatus:
            if listed is not None and known:
                trusted = self._trusted(request, listed, known)
                if trusted is not None:
                    return trusted
            return self.fetch_one(request) if self.fetch else self.probe_one(request)

        return dict(zip(ordered, run_parallel(ordered, one, in_flight(jobs)), strict=True))

    def _listing(self, requests: list[MediaRequest]) -> dict[str, ObjectInfo]:
        """Every object under the requests' common folder (one request per 1,000 keys), by key."""
        keys = [self.url.key(r.relative) for r in requests]
        folders = {key.rpartition("/")[0] for key in keys}
        common = "" if not folders or "" in folders else posixpath.commonpath(folders)
        with self.client.errors("listing the assets root"):
            found = self.client.listing(common)
        return {f"{common}/{name}" if common else name: info for name, info in found.items()}

    def _trusted(self, request: MediaRequest, listed: dict[str, ObjectInfo], known: KnownFiles) -> MediaStatus | None:
        key = self.url.key(request.relative)
        info = listed.get(key)
        record = known.get(str(S3Url(self.url.bucket, key)))
        if info is None or record is None or not info.etag or info.size <= 0:
            return None  # read it: a missing or empty object gets its problem from the read
        if (record.size, record.etag) != (info.size, info.etag):
            return None
        return MediaStatus(source=StoredObject(key, info.size, info.etag, record.sha256))

    def fetch_one(self, request: MediaRequest) -> MediaStatus:
        """One whole GET: downloaded into scratch while hashed, then checked from the local bytes."""
        assert self.fetch is not None
        key = self.url.key(request.relative)
        path = self.fetch / str(next(self.names))
        with self.client.errors(f"reading {request.relative}"):
            try:
                info, chunks = self.client.opened(key)
            except NotFound:
                return MediaStatus(code="missing-media", detail="is missing (no such object under the assets root)")
            except ValueError:  # a name the object store cannot address
                return MediaStatus(code="missing-media", detail="is not a valid object key")
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                done = stream(chunks, into=(fd, os.fspath(path)))
                problem = structure_problem(request.kind, done.size, lambda at, length: os.pread(fd, length, at))
            finally:
                os.close(fd)
        if problem:
            path.unlink()
            return MediaStatus(code="wrong-media-format", detail=problem)
        return MediaStatus(source=StoredObject(key, done.size, info.etag, done.sha256, os.fspath(path)))

    def trusted(self, copy: FileCopy) -> FileEntry | None:
        source = copy.source
        if isinstance(source, StoredObject) and source.sha256:
            return FileEntry(copy.target, source.size, source.sha256, copy.media_type)
        return None

    def source_sha256(self, copy: FileCopy) -> str | None:
        # known for every object of an assemble: trusted from the record, or hashed when fetched
        return copy.source.sha256 if isinstance(copy.source, StoredObject) else None

    def provenance(self, copy: FileCopy, entry: FileEntry) -> Provenance:
        source = copy.source
        etag = source.etag if isinstance(source, StoredObject) else None
        location = str(S3Url(self.url.bucket, source.location))
        return Provenance(location, entry.bytes, etag, entry.sha256)

    def copy_jobs(self, jobs: int) -> int:
        return in_flight(jobs)

    def probe_one(self, request: MediaRequest) -> MediaStatus:
        key = self.url.key(request.relative)
        if len(key.encode("utf-8")) > MAX_KEY_BYTES:  # the client panics on such a request URI
            return MediaStatus(code="missing-media", detail="is not a valid object key (over 1,024 bytes)")
        with self.client.errors(f"reading {request.relative}"):
            try:
                found = RangedObject(self.client, key)
            except NotFound:
                return MediaStatus(code="missing-media", detail="is missing (no such object under the assets root)")
            except EmptyObject:
                return MediaStatus(code="wrong-media-format", detail="is empty")
            except ValueError:  # a name the object store cannot address
                return MediaStatus(code="missing-media", detail="is not a valid object key")
            problem = structure_problem(request.kind, found.info.size, found.read_at)
        if problem:
            return MediaStatus(code="wrong-media-format", detail=problem)
        return MediaStatus(source=StoredObject(key, found.info.size, found.info.etag))

    def copy(self, copy: FileCopy, destination: Path, progress: Progress | None) -> FileEntry:
        source = copy.source
        if not isinstance(source, StoredObject):
            raise TypeError(f"{copy.target} does not come from a bucket")
        if source.fetched and source.sha256:  # downloaded and checked already: never read twice
            try:
                os.link(source.fetched, destination)
            except OSError:  # another file system: a local copy
                shutil.copyfile(source.fetched, destination)
            if progress:
                progress(source.size)
            return FileEntry(copy.target, source.size, source.sha256, copy.media_type)
        where = f"{S3Url(self.url.bucket, source.key)}"

        def check_head(head: bytes) -> None:
            if not sniff(head, copy.kind):
                raise MediaChangedError(f"{where} changed format while bundling ({copy.target}).", copy.target)

        fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            # the client retries transient failures itself, resuming a body cut off mid-way with a ranged GET
            with self.client.errors(f"downloading {copy.target}"):
                chunks = self.client.stream(source.key, source.etag, CHUNK)
                done = stream(chunks, into=(fd, os.fspath(destination)), progress=progress, check_head=check_head)
        except Changed:
            raise MediaChangedError(f"{where} changed while bundling ({copy.target}).", copy.target) from None
        finally:
            os.close(fd)
        if done.size != source.size:
            message = f"{where} changed size while bundling ({source.size} -> {done.size} bytes)."
            raise MediaChangedError(message, copy.target)
        return FileEntry(copy.target, done.size, done.sha256, copy.media_type)

    def read(self, copy: FileCopy) -> SourceRead:
        """The checked object whole, pinned to its ETag (``--web`` encodes it); ``proof``: the ETag.

        Not called for a source whose encoding the published version holds: its record keys the
        encoded file by (source SHA-256, ``Encoding.recipe()``), see ``PreviousBundle.encoded``."""
        source = copy.source
        if not isinstance(source, StoredObject):
            raise TypeError(f"{copy.target} does not come from a bucket")
        if source.fetched and source.sha256:  # downloaded and checked already: never read twice
            return SourceRead(Path(source.fetched).read_bytes(), source.sha256, source.etag)
        where = f"{S3Url(self.url.bucket, source.key)}"

        def check_head(head: bytes) -> None:
            if not sniff(head, copy.kind):
                raise MediaChangedError(f"{where} changed format while bundling ({copy.target}).", copy.target)

        try:
            with self.client.errors(f"downloading {copy.target}"):
                done = stream(self.client.stream(source.key, source.etag, CHUNK), keep=True, check_head=check_head)
        except Changed:
            raise MediaChangedError(f"{where} changed while bundling ({copy.target}).", copy.target) from None
        if done.size != source.size or done.content is None:
            message = f"{where} changed size while bundling ({source.size} -> {done.size} bytes)."
            raise MediaChangedError(message, copy.target)
        return SourceRead(done.content, done.sha256, source.etag)
