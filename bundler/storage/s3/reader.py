"""A published bundle read back from a bucket, for ``verify``: the version ``current.json``
names (or the version prefix given), each object streamed and hashed, several at a time."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from bundler.bundle.manifest import MANIFEST_NAME
from bundler.bundle.reader import HEAD, Digest, Found, Reading, collect, digest_stream, keeps
from bundler.errors import BundleUnreadableError, EnvError
from bundler.media.stream import CHUNK
from bundler.problems import Problem, error
from bundler.storage.ports import BundleReader
from bundler.storage.s3.client import ObjectInfo, S3Client, S3Url, in_flight
from bundler.storage.s3.pointer import POINTER_FORMAT, POINTER_NAME, parse_pointer
from bundler.support.workers import run_parallel


class S3BundleReader(BundleReader):
    def __init__(self, value: str) -> None:
        self.value = value

    def where(self) -> str:
        return self.value

    def scan(self, reading: Reading) -> Found:
        client, version, objects, pointer = _open_bundle(self.value)
        names = sorted(name for name in objects if not name.endswith("/"))  # "folder" markers hold nothing
        if reading.progress:
            reading.progress.start(sum(objects[name].size for name in names))

        def digest(name: str) -> Digest:
            if reading.quick and not keeps(name):  # the listing has the sizes; only the head is fetched
                with client.errors(f"reading {name}"):
                    head, info = client.read_range(version.key(name), 0, HEAD)
                if reading.progress:
                    reading.progress.advance(info.size)
                return Digest(info.size, None, head, None)
            return digest_stream(_chunks(client, version, name), keeps(name), reading.progress)

        digests = run_parallel(names, digest, in_flight(reading.jobs))
        found = collect(zip(names, digests, strict=True), archive=True)
        if pointer is not None:
            found.problems.extend(_pointer_problems(pointer, found))
        return found


def _open_bundle(value: str) -> tuple[S3Client, S3Url, dict[str, ObjectInfo], dict[str, Any] | None]:
    """The version a URL names (through ``current.json`` when there is one), its objects, the pointer."""
    url = S3Url.parse(value, "Bundle")
    client = S3Client(url.bucket)
    pointer: dict[str, Any] | None = None
    with client.errors("reading the bundle"):
        data = client.read_all(url.key(POINTER_NAME))
        if data is not None:
            try:
                pointer = parse_pointer(data, str(url))
            except EnvError as exc:
                raise BundleUnreadableError(str(exc).rstrip(".")) from None
            _check_pointer(pointer, url)
            url = url.child(pointer["bundlePath"])
        objects = client.listing(url.prefix)
    if not objects and pointer is not None:
        raise BundleUnreadableError(
            f"{POINTER_NAME} points at version {pointer.get('version')!r}, which does not exist (no objects under it)"
        )
    if not objects:
        raise BundleUnreadableError("there is no bundle there (no current.json and no objects)")
    return client, url, objects, pointer


def _check_pointer(pointer: dict[str, Any], url: S3Url) -> None:
    """A pointer of another format, another format version or another story is not this bundle's."""
    if pointer.get("format") != POINTER_FORMAT or pointer.get("formatVersion") != 1:
        raise BundleUnreadableError(
            f"{POINTER_NAME} is not a {POINTER_FORMAT} of format version 1 "
            f"(format {pointer.get('format')!r}, formatVersion {pointer.get('formatVersion')!r})"
        )
    folder = url.prefix.rstrip("/").rsplit("/", 1)[-1]
    story_id = pointer.get("storyId")
    if _is_uuid(folder) and story_id != folder:
        raise BundleUnreadableError(f"{POINTER_NAME} names story {story_id!r}, not the story {folder} it sits under")


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _pointer_problems(pointer: dict[str, Any], found: Found) -> list[Problem]:
    """The pointer vouches for one manifest: the version's manifest.json must hash to it."""
    manifest = found.files.get(MANIFEST_NAME)
    expected = pointer.get("manifestSha256")
    if manifest is None or manifest.sha256 is None or manifest.sha256 == expected:
        return []
    return [
        error(
            "pointer-mismatch",
            f"{POINTER_NAME} names a manifest with SHA-256 {expected!r}, but the version's manifest.json has "
            f"{manifest.sha256}",
            path=POINTER_NAME,
        )
    ]


def _chunks(client: S3Client, url: S3Url, name: str) -> Iterator[bytes]:
    with client.errors(f"reading {name}"):
        yield from client.stream(url.key(name), None, CHUNK)
