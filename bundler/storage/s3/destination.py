"""Bundles published to an S3 bucket (docs/design.md §4).

The bundle is built in a local staging folder, then uploaded under an immutable
version prefix ``<prefix>/<story-id>/<version>/`` (``version`` = the first 16 hex
digits of the SHA-256 of ``manifest.json``), and only then is the pointer
``<prefix>/<story-id>/current.json`` written. Readers who follow the pointer never
see a half-uploaded or mixed bundle; objects already present in the version (same
key, same size) are not uploaded again, and an unchanged pointer is not rewritten,
so publishing an unchanged bundle uploads nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bundler.bundle.archive import archive_timestamp, build_archive
from bundler.bundle.manifest import MANIFEST_NAME, SUMS_NAME
from bundler.errors import OutputExistsError
from bundler.storage.ports import ArchiveFormat, BundleDestination, Published, Staged
from bundler.storage.s3.client import ObjectInfo, S3Client, S3Url, in_flight
from bundler.storage.s3.pointer import POINTER_NAME, VERSION_DIGITS, parse_pointer, pointer_document
from bundler.support.workers import run_parallel


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
        return None if data is None else parse_pointer(data, str(self.url.child(story_id)))

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
        self, staged: Staged, overwrite: bool, archive: ArchiveFormat | None, stop_if_cancelled: Callable[[], None]
    ) -> Published:
        staging = staged.staging
        manifest = (staging / MANIFEST_NAME).read_bytes()
        manifest_sha = hashlib.sha256(manifest).hexdigest()
        version = manifest_sha[:VERSION_DIGITS]
        story = self.url.child(staged.story_id)
        bundle = story.child(version)
        files = _local_files(staging)
        with self.client.errors(f"publishing {staged.story_id}"):
            present = self.client.listing(bundle.prefix)
            missing = [name for name, size in files.items() if _absent(present, name, size)]
            # manifest.json and SHA256SUMS go last: a version holding them holds everything
            last = [name for name in (SUMS_NAME, MANIFEST_NAME) if name in missing]
            first = [name for name in missing if name not in last]

            def upload(name: str) -> None:
                self.client.put_file(bundle.key(name), staging / name)

            run_parallel(first, upload, in_flight(self.jobs))
            for name in last:
                upload(name)
            archive_url = self._publish_archive(staged, story, version, archive)
            archive_name = archive_url.prefix.rsplit("/", 1)[-1] if archive_url else None
            pointer = pointer_document(staged.story_id, version, manifest_sha, archive_name)
            pointer_key = story.key(POINTER_NAME)
            stop_if_cancelled()  # an interrupt before the pointer: readers never see the new version
            if self.client.read_all(pointer_key) != pointer:
                self.client.put_bytes(pointer_key, pointer)  # last: readers switch to the complete version
        text_bytes = files[MANIFEST_NAME] + files[SUMS_NAME]
        return Published(str(bundle), str(archive_url) if archive_url else None, text_bytes)

    def _publish_archive(
        self, staged: Staged, story: S3Url, version: str, archive: ArchiveFormat | None
    ) -> S3Url | None:
        if archive is None:
            return None
        name = f"{version}.{archive}"
        # built in the staging folder's private parent (``staging`` is ``<temp>/<story-id>``)
        path = build_archive(
            staged.staging,
            staged.story_id,
            archive,
            archive_timestamp(staged.exported_at),
            staged.staging.parent / name,
        )
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
