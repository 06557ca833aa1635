"""Media in an S3 bucket (docs/design.md §3, §4).

A stored path is the key ``<prefix>/<path>`` (the same normalized path as on disk, so
unsafe paths are rejected by the planner before any request). A check is one ranged
GET of the object's first bytes, which also tells its size and ETag; a format check
that needs bytes beyond that window (the end of a large file) reads them with one
more ranged GET. The copy is one GET, pinned to the checked ETag, streamed into
staging while it is hashed.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from bundler.bundle.manifest import FileEntry
from bundler.errors import MediaChangedError
from bundler.media.stream import CHUNK, Progress, stream
from bundler.media.structure import sniff, structure_problem
from bundler.pipeline.plan.types import FileCopy, MediaRequest, MediaStatus
from bundler.storage.ports import MediaSource, SourceRead
from bundler.storage.s3.client import Changed, EmptyObject, NotFound, S3Client, S3Url, in_flight
from bundler.support.workers import run_parallel

HEAD_WINDOW = 64 * 1024  # one ranged GET: every header we check, and all of a small file


@dataclass(frozen=True, slots=True)
class StoredObject:
    """A media object in a bucket that passed every check; ``etag`` pins the checked version."""

    key: str
    size: int
    etag: str | None

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
    def __init__(self, url: S3Url, client: S3Client) -> None:
        self.url = url
        self.client = client

    @classmethod
    def open(cls, raw: str) -> S3Source:
        url = S3Url.parse(raw, "Assets root")
        client = S3Client(url.bucket)
        with client.errors("listing the assets root"):  # reachable, bucket exists, credentials valid
            client.probe_listing(url.prefix)
        return cls(url, client)

    def __str__(self) -> str:
        return str(self.url)

    def probe(self, requests: Collection[MediaRequest], jobs: int) -> dict[MediaRequest, MediaStatus]:
        ordered = sorted(requests, key=lambda r: (r.relative, r.kind))
        return dict(zip(ordered, run_parallel(ordered, self.probe_one, in_flight(jobs)), strict=True))

    def probe_one(self, request: MediaRequest) -> MediaStatus:
        key = self.url.key(request.relative)
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

        Reuse across versions is the object store's own record (``<version>.sources.json``): it can
        key the encoded file's SHA-256 by (source key, ETag or SHA-256, ``Encoding.recipe()``), see
        ``MediaSource.remember``; without it every encoded file is encoded anew."""
        source = copy.source
        if not isinstance(source, StoredObject):
            raise TypeError(f"{copy.target} does not come from a bucket")
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
