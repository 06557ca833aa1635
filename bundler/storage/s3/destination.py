"""Bundles published to an S3 bucket (docs/design.md §4).

The bundle is built in a local staging folder, then placed under an immutable
version prefix ``<prefix>/<story-id>/<version>/`` (``version`` = the first 16 hex
digits of the SHA-256 of ``manifest.json``), and only then is the pointer
``<prefix>/<story-id>/current.json`` written. Readers who follow the pointer never
see a half-uploaded or mixed bundle.

A release costs what changed: a file of the new version with the SHA-256 of a file of
the version the pointer named when the run began is copied inside the store
(CopyObject), never sent through the runner; objects already in place (same key,
same size) are left alone; only changed files and the texts are uploaded. The pointer
is written only over the version the run started from (If-Match on its ETag,
If-None-Match for a first publish): a run that lost a race stops, naming both
versions, and leaves its complete version for a later run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bundler.bundle.archive import archive_timestamp, build_archive
from bundler.bundle.manifest import MANIFEST_NAME, SUMS_NAME
from bundler.errors import EnvError, OutputExistsError
from bundler.media.stream import CHUNK, stream
from bundler.storage.ports import ArchiveFormat, BundleDestination, KnownFiles, PreviousBundle, Published, Staged
from bundler.storage.s3.client import Conflict, ObjectInfo, S3Client, S3Url, Versioned, in_flight
from bundler.storage.s3.pointer import POINTER_NAME, VERSION_DIGITS, parse_pointer, pointer_document
from bundler.storage.s3.records import encodings, parse_sources, parse_stored, sources_document, sources_name
from bundler.storage.s3.scratch import scratch_folder
from bundler.support.documents import DocumentError, parse_json
from bundler.support.workers import run_parallel


class PointerMovedError(EnvError):
    """Another run moved ``current.json`` after this one started (exit 3)."""


@dataclass
class Start:
    """The story as this run found it: the pointer (and its ETag) and what its version holds."""

    pointer: Versioned | None = None
    version: str | None = None
    held: dict[str, str] = field(default_factory=dict)  # SHA-256 -> a file of that version holding it
    sizes: dict[str, int] = field(default_factory=dict)  # SHA-256 -> its size, for every one held
    record: bytes | None = None  # the version's source record as stored
    known: KnownFiles = field(default_factory=dict)
    stored: dict[str, str] = field(default_factory=dict)  # object -> ETag as published (the record says)


class S3Destination(BundleDestination):
    """``s3://bucket/prefix/<story-id>/<version>/…`` plus ``<story-id>/current.json`` written last."""

    keeps_source_records = True

    def __init__(self, url: S3Url, client: S3Client, jobs: int) -> None:
        self.url = url
        self.client = client
        self.jobs = jobs
        self.started: dict[str, Start] = {}

    @classmethod
    def open(cls, raw: str, jobs: int) -> S3Destination:
        url = S3Url.parse(raw, "--out")
        client = S3Client(url.bucket)
        with client.errors("reaching the output prefix"):
            client.probe(url.prefix)
        return cls(url, client, jobs)

    def __str__(self) -> str:
        return str(self.url)

    def start(self, story_id: str) -> Start:
        """Read once per run, before anything is built: the pointer this run may move from."""
        if story_id in self.started:
            return self.started[story_id]
        story = self.url.child(story_id)
        start = Start()
        with self.client.errors(f"reading {POINTER_NAME} of {story_id}"):
            start.pointer = self.client.read_versioned(story.key(POINTER_NAME))
            document = _pointer_or_none(start.pointer, str(story))
            document = document or {}
            version = document.get("version")
            if isinstance(version, str) and version and f"{version}/" == document.get("bundlePath"):
                start.version = version
                manifest_sha = document.get("manifestSha256")
                start.record = self.client.read_all(story.key(sources_name(version)))
                start.known = parse_sources(start.record)
                start.stored = parse_stored(start.record)
                start.held, start.sizes = self._holdings(story.child(version), manifest_sha, start.stored)
        self.started[story_id] = start
        return start

    def _holdings(
        self, version: S3Url, manifest_sha: Any, stored: dict[str, str]
    ) -> tuple[dict[str, str], dict[str, int]]:
        """SHA-256 -> file of a published version, for every file present there with its listed size
        and, where the record has it, the ETag it was published with (else it was changed in place)."""
        data = self.client.read_all(version.key(MANIFEST_NAME))
        if data is None or hashlib.sha256(data).hexdigest() != manifest_sha:
            return {}, {}  # not the version the pointer vouches for: copy nothing from it
        try:
            document = parse_json(data)
        except DocumentError:
            return {}, {}
        files = document.get("files") if isinstance(document, dict) else None
        present = self.client.listing(version.prefix)
        held: dict[str, str] = {}
        sizes: dict[str, int] = {}
        for entry in files if isinstance(files, list) else ():
            if isinstance(entry, dict) and isinstance(entry.get("sha256"), str):
                path = str(entry.get("path"))
                found = present.get(path)
                if found is not None and found.size == entry.get("bytes") and _as_published(found, path, stored):
                    held.setdefault(entry["sha256"], path)
                    sizes[entry["sha256"]] = found.size
        return held, sizes

    def claim(self, story_id: str, overwrite: bool) -> None:
        if not overwrite and self.start(story_id).pointer is not None:
            raise OutputExistsError(
                f"Bundle {self.url.child(story_id)} already exists; pass --overwrite to replace it."
            )

    def known(self, story_id: str) -> KnownFiles:
        return self.start(story_id).known

    def previous(self, story_id: str) -> PreviousBundle | None:
        start = self.start(story_id)
        if not start.held:
            return None
        # encoded files of the version, reusable only where the version still holds their bytes
        encoded = {key: made for key, made in encodings(start.known).items() if start.sizes.get(made[0]) == made[1]}
        return PreviousBundle(None, None, frozenset(start.held), encoded)

    @contextmanager
    def staging(self, story_id: str) -> Iterator[Path]:
        # named after the story, so that an archive of it has the story id as its top folder
        with scratch_folder() as work:
            path = work / story_id
            path.mkdir()
            yield path

    def publish(
        self, staged: Staged, overwrite: bool, archive: ArchiveFormat | None, stop_if_cancelled: Callable[[], None]
    ) -> Published:
        staging = staged.staging
        manifest = (staging / MANIFEST_NAME).read_bytes()
        manifest_sha = hashlib.sha256(manifest).hexdigest()
        version = manifest_sha[:VERSION_DIGITS]
        story = self.url.child(staged.story_id)
        bundle = story.child(version)
        start = self.start(staged.story_id)
        files = _bundle_files(manifest, staging)
        with self.client.errors(f"publishing {staged.story_id}"):
            present = self.client.listing(bundle.prefix)
            stored = start.stored if version == start.version else {}
            missing = [name for name, (size, _) in files.items() if _absent(present, name, size, stored)]
            # manifest.json and SHA256SUMS go last: a version holding them holds everything
            last = [name for name in (SUMS_NAME, MANIFEST_NAME) if name in missing]
            first = [name for name in missing if name not in last]
            old = story.child(start.version) if start.version and start.version != version else None

            def place(name: str) -> None:
                held = start.held.get(files[name][1]) if old is not None else None
                if held is not None:  # the same bytes are in the store already: copied there
                    self.client.copy(old.key(held), bundle.key(name))  # type: ignore[union-attr]
                else:
                    self.client.put_file(bundle.key(name), staging / name)

            run_parallel(first, place, in_flight(self.jobs))
            for name in last:
                place(name)
            archive_url = self._publish_archive(staged, story, bundle, archive)
            archive_name = archive_url.prefix.rsplit("/", 1)[-1] if archive_url else None
            if missing:  # the ETags as published now, for the next run to compare content with
                present = self.client.listing(bundle.prefix)
            etags = {name: present[name].etag for name in files if name in present}
            record = sources_document(staged.story_id, version, staged.sources, etags)
            # rewritten by every run that points at a version it did not start from: its date then
            # tells ``prune`` the version is in use (see releases.published_at)
            if version != start.version or record != start.record:
                self.client.put_bytes(story.key(sources_name(version)), record)
            pointer = pointer_document(staged.story_id, version, manifest_sha, archive_name)
            stop_if_cancelled()  # an interrupt before the pointer: readers never see the new version
            if start.pointer is None or start.pointer.data != pointer:
                self._move_pointer(story, start, version, pointer)
        text_bytes = files[MANIFEST_NAME][0] + files[SUMS_NAME][0]
        return Published(str(bundle), str(archive_url) if archive_url else None, text_bytes)

    def _move_pointer(self, story: S3Url, start: Start, version: str, pointer: bytes) -> None:
        """Last: readers switch to the complete version, if nobody moved the pointer meanwhile."""
        try:
            self.client.put_bytes(story.key(POINTER_NAME), pointer, over=start.pointer.etag if start.pointer else None)
        except Conflict:
            now = _pointer_or_none(self.client.read_versioned(story.key(POINTER_NAME)), str(story))
            moved_to = (now or {}).get("version") or "nothing"
            raise PointerMovedError(
                f"{story}/{POINTER_NAME} was moved to version {moved_to} by another run while this one "
                f"published version {version} (it started from {start.version or 'no version'}); "
                f"{version} stays uploaded for a later run."
            ) from None

    def _publish_archive(
        self, staged: Staged, story: S3Url, bundle: S3Url, archive: ArchiveFormat | None
    ) -> S3Url | None:
        if archive is None:
            return None
        name = f"{bundle.prefix.rsplit('/', 1)[-1]}.{archive}"
        if self.client.exists(story.key(name)):  # one HEAD: an archive of this version is never rebuilt
            return story.child(name)
        for target in sorted(staged.held):  # copied in the store, so not in staging: fetched for the archive
            with open(staged.staging / target, "xb") as handle:
                stream(self.client.stream(bundle.key(target), None, CHUNK), into=(handle.fileno(), handle.name))
        # built in the staging folder's private parent (``staging`` is ``<scratch>/<story-id>``)
        path = build_archive(
            staged.staging,
            staged.story_id,
            archive,
            archive_timestamp(staged.exported_at),
            staged.staging.parent / name,
        )
        self.client.put_file(story.key(name), path)
        return story.child(name)


def _pointer_or_none(found: Versioned | None, where: str) -> dict[str, Any] | None:
    """The pointer document, or None when there is none or it is not one (then it is only replaced)."""
    if found is None:
        return None
    try:
        return parse_pointer(found.data, where)
    except EnvError:
        return None


def _absent(present: dict[str, ObjectInfo], name: str, size: int, stored: dict[str, str]) -> bool:
    """Not there as published: missing, another size, or another ETag than the record says it had
    (changed in place with the same size: content is compared, not sizes)."""
    found = present.get(name)
    return found is None or found.size != size or not _as_published(found, name, stored)


def _as_published(found: ObjectInfo, name: str, stored: dict[str, str]) -> bool:
    recorded = stored.get(name)
    return recorded is None or found.etag == recorded


def _bundle_files(manifest: bytes, staging: Path) -> dict[str, tuple[int, str]]:
    """Every file of the bundle (size, SHA-256): the manifest's list, the manifest and SHA256SUMS."""
    files: dict[str, tuple[int, str]] = {
        entry["path"]: (entry["bytes"], entry["sha256"]) for entry in json.loads(manifest)["files"]
    }
    files[MANIFEST_NAME] = (len(manifest), hashlib.sha256(manifest).hexdigest())
    sums = (staging / SUMS_NAME).read_bytes()
    files[SUMS_NAME] = (len(sums), hashlib.sha256(sums).hexdigest())
    return files
