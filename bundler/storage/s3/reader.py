"""A published bundle read back from a bucket, for ``verify``: the version ``current.json``
names (or the version prefix given), each object streamed and hashed, several at a time."""

from __future__ import annotations

from collections.abc import Iterator

from bundler.bundle.reader import HEAD, Digest, Found, Reading, collect, digest_stream, keeps
from bundler.errors import BundleUnreadableError, EnvError
from bundler.media.stream import CHUNK
from bundler.storage.ports import BundleReader
from bundler.storage.s3.client import ObjectInfo, S3Client, S3Url, in_flight
from bundler.storage.s3.pointer import POINTER_NAME, parse_pointer
from bundler.support.workers import run_parallel


class S3BundleReader(BundleReader):
    def __init__(self, value: str) -> None:
        self.value = value

    def where(self) -> str:
        return self.value

    def scan(self, reading: Reading) -> Found:
        client, version, objects = _open_bundle(self.value)
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
        return collect(zip(names, digests, strict=True), archive=True)


def _open_bundle(value: str) -> tuple[S3Client, S3Url, dict[str, ObjectInfo]]:
    """The version a URL names (through ``current.json`` when there is one) and its objects."""
    url = S3Url.parse(value, "Bundle")
    client = S3Client(url.bucket)
    with client.errors("reading the bundle"):
        data = client.read_all(url.key(POINTER_NAME))
        if data is not None:
            try:
                pointer = parse_pointer(data, str(url))
            except EnvError as exc:
                raise BundleUnreadableError(str(exc).rstrip(".")) from None
            url = url.child(pointer["bundlePath"])
        objects = client.listing(url.prefix)
    if not objects:
        raise BundleUnreadableError("there is no bundle there (no current.json and no objects)")
    return client, url, objects


def _chunks(client: S3Client, url: S3Url, name: str) -> Iterator[bytes]:
    with client.errors(f"reading {name}"):
        yield from client.stream(url.key(name), None, CHUNK)
