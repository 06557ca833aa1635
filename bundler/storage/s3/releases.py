"""The versions of a story published to a bucket: list them, point back at one, prune old ones.

A version is published when its ``manifest.json`` is in place (it is uploaded last) and
complete when every file its manifest lists is there with its size. When a version was
published is the later of its ``manifest.json`` and its source record: a run that points
at a version it did not start from rewrites that record first, so a version some run is
about to point at always looks young to ``prune``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bundler.bundle.manifest import MANIFEST_NAME
from bundler.errors import EnvError, UsageError
from bundler.storage.s3.client import SMALL_OBJECT_CAP, Conflict, ObjectInfo, S3Client, S3Url
from bundler.storage.s3.pointer import POINTER_NAME, VERSION_DIGITS, parse_pointer, pointer_document
from bundler.storage.s3.records import SOURCES_SUFFIX

_VERSION = re.compile(f"[0-9a-f]{{{VERSION_DIGITS}}}")
ARCHIVE_SUFFIXES = (".zip", ".tar.gz")


@dataclass
class Release:
    version: str
    objects: dict[str, ObjectInfo] = field(default_factory=dict)  # the version's own files
    beside: dict[str, ObjectInfo] = field(default_factory=dict)  # its source record and archives
    exported_at: str | None = None
    manifest_sha: str | None = None
    missing: int = 0  # files its manifest lists that are absent or of another size
    current: bool = False

    @property
    def published(self) -> bool:
        return MANIFEST_NAME in self.objects

    @property
    def complete(self) -> bool:
        return self.published and self.manifest_sha is not None and self.missing == 0

    @property
    def published_at(self) -> datetime | None:
        """When it was (last) published; for a version never published, its newest object."""
        record = self.beside.get(f"{self.version}{SOURCES_SUFFIX}")
        if self.published:
            moments = [self.objects[MANIFEST_NAME].modified, record.modified if record else None]
        else:
            moments = [info.modified for info in (*self.objects.values(), *self.beside.values())]
        return max((m for m in moments if m is not None), default=None)

    @property
    def archive(self) -> str | None:
        return next((f"{self.version}{s}" for s in ARCHIVE_SUFFIXES if f"{self.version}{s}" in self.beside), None)

    def to_json(self) -> dict[str, Any]:
        moment = self.published_at
        return {
            "version": self.version,
            "current": self.current,
            "complete": self.complete,
            "exportedAt": self.exported_at,
            "files": len(self.objects),
            "bytes": sum(info.size for info in self.objects.values()),
            "publishedAt": moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None,
            "archive": self.archive,
        }


@dataclass
class Story:
    url: S3Url
    client: S3Client
    releases: list[Release]  # most recently published first
    pointer_etag: str | None
    current: str | None

    def find(self, version: str) -> Release | None:
        return next((r for r in self.releases if r.version == version), None)


def open_story(value: str) -> Story:
    """Every version under ``s3://B/P/<story-id>``: one listing (a request per 1,000 objects) and a
    read of each published version's ``manifest.json``."""
    url = S3Url.parse(value, "Story")
    if not url.prefix:
        raise UsageError(f"{value!r} names a bucket, not a story: s3://BUCKET[/PREFIX]/<story-id>.")
    client = S3Client(url.bucket)
    with client.errors("listing the story's versions"):
        pointer = client.read_versioned(url.key(POINTER_NAME))
        objects = client.listing(url.prefix)
        current = None
        if pointer is not None:
            current = str(parse_pointer(pointer.data, str(url)).get("version") or "") or None
        found: dict[str, Release] = {}
        for name, info in objects.items():
            version, slash, rest = name.partition("/")
            if slash and _VERSION.fullmatch(version):
                found.setdefault(version, Release(version)).objects[rest] = info
                continue
            for suffix in (SOURCES_SUFFIX, *ARCHIVE_SUFFIXES):
                stem = name[: -len(suffix)]
                if name.endswith(suffix) and _VERSION.fullmatch(stem):
                    found.setdefault(stem, Release(stem)).beside[name] = info
        for release in found.values():
            release.current = release.version == current
            if release.published:
                _read_manifest(client, url.child(release.version), release)
    oldest = datetime.min.replace(tzinfo=UTC)
    releases = sorted(found.values(), key=lambda r: (r.published_at or oldest, r.version), reverse=True)
    return Story(url, client, releases, pointer.etag if pointer else None, current)


def _read_manifest(client: S3Client, version: S3Url, release: Release) -> None:
    info = release.objects[MANIFEST_NAME]
    if info.size > SMALL_OBJECT_CAP:
        return
    data = client.read_all(version.key(MANIFEST_NAME))
    try:
        document = json.loads(data.decode("utf-8")) if data else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        document = None
    if not isinstance(document, dict) or not isinstance(document.get("files"), list):
        return
    assert data is not None
    release.manifest_sha = hashlib.sha256(data).hexdigest()
    metadata = document.get("metadata")
    exported = metadata.get("exportedAt") if isinstance(metadata, dict) else None
    release.exported_at = exported if isinstance(exported, str) else None
    for entry in document["files"]:
        path = entry.get("path") if isinstance(entry, dict) else None
        found = release.objects.get(path) if isinstance(path, str) else None
        if found is None or found.size != entry.get("bytes"):
            release.missing += 1


def rollback(value: str, version: str) -> tuple[Story, bool]:
    """Point ``current.json`` at ``version`` (complete, checked) over the pointer as read; False when
    it already was the current one."""
    if not _VERSION.fullmatch(version):
        raise UsageError(f"Version {version!r} is not a version ({VERSION_DIGITS} hexadecimal digits).")
    story = open_story(value)
    release = story.find(version)
    if release is None or not release.published:
        raise EnvError(f"There is no published version {version} under {story.url}.")
    if not release.complete:
        raise EnvError(
            f"Version {version} under {story.url} is incomplete ({release.missing} files missing or damaged); "
            "not rolled back."
        )
    if release.current:
        return story, False
    assert release.manifest_sha is not None
    story_id = story.url.prefix.rsplit("/", 1)[-1]
    pointer = pointer_document(story_id, version, release.manifest_sha, release.archive)
    with story.client.errors("writing the pointer"):
        try:
            story.client.put_bytes(story.url.key(POINTER_NAME), pointer, over=story.pointer_etag)
        except Conflict:
            now = story.client.read_versioned(story.url.key(POINTER_NAME))
            moved = parse_pointer(now.data, str(story.url)).get("version") if now else None
            raise EnvError(
                f"{story.url}/{POINTER_NAME} was moved to version {moved or 'nothing'} by another run "
                f"(it named {story.current or 'no version'}); not rolled back to {version}."
            ) from None
    return story, True


def prune_plan(story: Story, keep: int, min_age: float, now: datetime | None = None) -> list[Release]:
    """The versions to delete: past the ``keep`` most recently published, never the current one,
    never one published (or, unpublished, written to) less than ``min_age`` seconds ago."""
    now = now or datetime.now(UTC)
    kept = 0
    doomed: list[Release] = []
    for release in story.releases:
        if release.published and kept < keep:
            kept += 1
            continue
        moment = release.published_at
        young = moment is None or (now - moment).total_seconds() < min_age
        if release.current or release.version == story.current or young:
            continue
        doomed.append(release)
    return doomed


def delete_releases(story: Story, releases: list[Release]) -> int:
    """Delete each version's manifest first (a half-deleted version reads as unpublished), then the
    rest with its source record and archives; the number of objects deleted."""
    manifests = [story.url.child(r.version).key(MANIFEST_NAME) for r in releases if r.published]
    rest = [story.url.child(r.version).key(name) for r in releases for name in r.objects if name != MANIFEST_NAME] + [
        story.url.key(name) for r in releases for name in r.beside
    ]
    with story.client.errors("deleting old versions"):
        story.client.delete(manifests)
        story.client.delete(rest)
    return len(manifests) + len(rest)
