"""Media in an S3 bucket, and bundles published to one (DESIGN §3, §4).

Source: a stored path is the key ``<prefix>/<path>`` (the same normalized path
as on disk, so unsafe paths are rejected by the planner before any request).
A check is one ranged GET of the object's first bytes, which also tells its
size and ETag; a format check that needs bytes beyond that window (the end of
a large file) reads them with one more ranged GET. The copy is one GET,
pinned to the checked ETag, streamed into staging while it is hashed.

Destination: the bundle is built in a local staging folder, then uploaded under
an immutable version prefix ``<prefix>/<story-id>/<version>/`` (``version`` =
the first 16 hex digits of the SHA-256 of ``manifest.json``), and only then is
the pointer ``<prefix>/<story-id>/current.json`` written. Readers who follow the
pointer never see a half-uploaded or mixed bundle; objects already present in
the version (same key, same size) are not uploaded again, and an unchanged
pointer is not rewritten, so publishing an unchanged bundle uploads nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bundler.assets import SNIFF_BYTES, sniff
from bundler.errors import BundleUnreadableError, EnvError, OutputExistsError
from bundler.manifest import MANIFEST_NAME, SUMS_NAME, FileEntry
from bundler.media_structure import structure_problem
from bundler.plan.types import FileCopy, MediaRequest, MediaStatus, StoredObject
from bundler.storage.base import BundleDestination, MediaSource, Progress, Published
from bundler.storage.s3client import Changed, EmptyObject, NotFound, ObjectInfo, S3Client, S3Url

HEAD_WINDOW = 64 * 1024  # one ranged GET: every header we check, and all of a small file
REQUESTS_PER_JOB = 8  # requests in flight per --jobs: S3 work waits on the network, not the CPU
POINTER_NAME = "current.json"
POINTER_FORMAT = "story-bundle-pointer"
VERSION_DIGITS = 16
MAX_KEY_BYTES = 1024  # S3's limit on a key
_CHUNK = 1 << 20


def _workers(jobs: int) -> int:
    return max(1, jobs) * REQUESTS_PER_JOB


# --- source ----------------------------------------------------------------------------------


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
        # reachable, bucket exists, credentials valid; never a listing: a story depends only on its own
        # keys, and one key elsewhere that the client cannot parse must not fail it
        with client.errors("reading the assets root"):
            client.probe_key(url.key(".bundler-probe"))
        return cls(url, client)

    def __str__(self) -> str:
        return str(self.url)

    def probe(self, requests: Collection[MediaRequest], jobs: int) -> dict[MediaRequest, MediaStatus]:
        from bundler.workers import run_parallel

        ordered = sorted(requests, key=lambda r: (r.relative, r.kind))
        return dict(zip(ordered, run_parallel(ordered, self.probe_one, _workers(jobs)), strict=True))

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
        from bundler.copying import MediaChangedError

        source = copy.source
        if not isinstance(source, StoredObject):
            raise TypeError(f"{copy.target} does not come from a bucket")
        where = f"{S3Url(self.url.bucket, source.key)}"
        fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            # the client retries transient failures itself, resuming a body cut off mid-way with a ranged GET
            with self.client.errors(f"downloading {copy.target}"):
                sha, size = self._download(fd, destination, copy, source, progress)
        except Changed:
            raise MediaChangedError(f"{where} changed while bundling ({copy.target}).") from None
        finally:
            os.close(fd)
        if size != source.size:
            raise MediaChangedError(f"{where} changed size while bundling ({source.size} -> {size} bytes).")
        return FileEntry(copy.target, size, sha, copy.media_type)

    def _download(
        self, fd: int, destination: Path, copy: FileCopy, source: StoredObject, progress: Progress | None
    ) -> tuple[str, int]:
        from bundler.copying import MediaChangedError, write_all

        digest = hashlib.sha256()
        size = 0
        for chunk in self.client.stream(source.key, source.etag, _CHUNK):
            if size == 0 and not sniff(chunk[:SNIFF_BYTES], copy.kind):
                raise MediaChangedError(f"{copy.target} changed format while bundling.")
            digest.update(chunk)
            write_all(fd, memoryview(chunk), destination)
            size += len(chunk)
            if progress:
                progress(len(chunk))
        return digest.hexdigest(), size


# --- destination -----------------------------------------------------------------------------


class S3Destination(BundleDestination):
    """``s3://bucket/prefix/<story-id>/<version>/…`` plus ``<story-id>/current.json`` written last."""

    def __init__(self, url: S3Url, client: S3Client, jobs: int) -> None:
        self.url = url
        self.client = client
        self.jobs = jobs

    @classmethod
    def open(cls, raw: str, jobs: int) -> S3Destination:
        url = S3Url.parse(raw, "--out")
        client = S3Client(url.bucket)
        with client.errors("listing the output prefix"):
            client.probe_listing(url.prefix)
        return cls(url, client, jobs)

    def __str__(self) -> str:
        return str(self.url)

    def pointer(self, story_id: str) -> dict[str, Any] | None:
        key = self.url.child(story_id).key(POINTER_NAME)
        with self.client.errors(f"reading {POINTER_NAME} of {story_id}"):
            data = self.client.read_all(key)
        return None if data is None else _parse_pointer(data, str(self.url.child(story_id)))

    def claim(self, story_id: str, overwrite: bool) -> None:
        if not overwrite and self.pointer(story_id) is not None:
            raise OutputExistsError(
                f"Bundle {self.url.child(story_id)} already exists; pass --overwrite to replace it."
            )

    @contextmanager
    def staging(self, story_id: str) -> Iterator[Path]:
        # named after the story, so that an archive of it has the story id as its top folder
        work = Path(tempfile.mkdtemp(prefix="bundler-publish-"))
        try:
            path = work / story_id
            path.mkdir()
            yield path
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def publish(
        self,
        staging: Path,
        story_id: str,
        overwrite: bool,
        archive: str | None,
        exported_at: str,
        check: Callable[[], None] | None = None,
    ) -> Published:
        from bundler.workers import run_parallel

        manifest = (staging / MANIFEST_NAME).read_bytes()
        manifest_sha = hashlib.sha256(manifest).hexdigest()
        version = manifest_sha[:VERSION_DIGITS]
        story = self.url.child(story_id)
        bundle = story.child(version)
        files = _local_files(staging)
        with self.client.errors(f"publishing {story_id}"):
            present = self.client.listing(bundle.prefix)
            missing = [name for name, size in files.items() if _absent(present, name, size)]
            # manifest.json and SHA256SUMS go last: a version holding them holds everything
            last = [name for name in (SUMS_NAME, MANIFEST_NAME) if name in missing]
            first = [name for name in missing if name not in last]

            def upload(name: str) -> None:
                self.client.put_file(bundle.key(name), staging / name)

            run_parallel(first, upload, _workers(self.jobs))
            for name in last:
                upload(name)
            archive_url = self._publish_archive(staging, story, version, archive, exported_at)
            document: dict[str, Any] = {
                "format": POINTER_FORMAT,
                "formatVersion": 1,
                "storyId": story_id,
                "version": version,
                "bundlePath": f"{version}/",
                "manifestSha256": manifest_sha,
                "archivePath": archive_url.prefix.rsplit("/", 1)[-1] if archive_url else None,
            }
            pointer = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
            pointer_key = story.key(POINTER_NAME)
            if check is not None:
                check()  # an interrupt before the pointer: readers never see the new version
            if self.client.read_all(pointer_key) != pointer:
                self.client.put_bytes(pointer_key, pointer)  # last: readers switch to the complete version
        text_bytes = files[MANIFEST_NAME] + files[SUMS_NAME]
        return Published(str(bundle), str(archive_url) if archive_url else None, text_bytes)

    def _publish_archive(
        self, staging: Path, story: S3Url, version: str, archive: str | None, exported_at: str
    ) -> S3Url | None:
        if archive is None:
            return None
        from bundler.archive import archive_timestamp, write_archive

        path = write_archive(staging, archive, archive_timestamp(exported_at))  # type: ignore[arg-type]
        name = f"{version}.{archive}"
        present = self.client.listing(story.prefix)
        if _absent(present, name, path.stat().st_size):
            self.client.put_file(story.key(name), path)
        return story.child(name)


def _absent(present: dict[str, ObjectInfo], name: str, size: int) -> bool:
    found = present.get(name)
    return found is None or found.size != size


def _local_files(root: Path) -> dict[str, int]:
    """Every file under ``root`` by POSIX path, with its size."""
    files: dict[str, int] = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            files[path.relative_to(root).as_posix()] = path.stat().st_size
    return files


def _parse_pointer(data: bytes, where: str) -> dict[str, Any]:
    from bundler.documents import MAX_POINTER_BYTES, DocumentError, check_size, parse_json

    try:  # capped and depth-safe: a pointer nested thousands deep is no pointer, not a crash
        document = parse_json(check_size(data, MAX_POINTER_BYTES))
    except DocumentError:
        document = None
    path = document.get("bundlePath") if isinstance(document, dict) else None
    if not isinstance(path, str) or not path.strip("/") or ".." in path.split("/"):
        raise EnvError(f"{where}/{POINTER_NAME} is not a bundle pointer.")
    return document  # type: ignore[no-any-return]


# --- reading a published bundle (verify) -----------------------------------------------------


def open_bundle(value: str) -> tuple[S3Client, S3Url, dict[str, ObjectInfo]]:
    """The version a URL names (through ``current.json`` when there is one) and its objects."""
    url = S3Url.parse(value, "Bundle")
    client = S3Client(url.bucket)
    with client.errors("reading the bundle"):
        data = client.read_all(url.key(POINTER_NAME))
        if data is not None:
            try:
                pointer = _parse_pointer(data, str(url))
            except EnvError as exc:
                raise BundleUnreadableError(str(exc).rstrip(".")) from None
            url = url.child(pointer["bundlePath"])
        objects = client.listing(url.prefix)
    if not objects:
        raise BundleUnreadableError("there is no bundle there (no current.json and no objects)")
    return client, url, objects


def object_chunks(client: S3Client, url: S3Url, name: str) -> Iterator[bytes]:
    with client.errors(f"reading {name}"):
        yield from client.stream(url.key(name), None, _CHUNK)
