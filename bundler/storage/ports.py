"""The storage seam: where media comes from, where a bundle goes, and how one is read back.

``load → plan → build → publish`` does not care whether the assets root or ``--out`` is a
folder or a bucket prefix: the planner's media requests are answered by a ``MediaSource``,
``build`` copies through it into a local staging folder, a ``BundleDestination`` publishes
that folder, and ``verify`` reads a bundle through a ``BundleReader``. Each backend keeps
its own handles (a local file, a stored object) behind ``SourceHandle``.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from bundler.bundle.manifest import FileEntry
from bundler.bundle.reader import Found, Reading
from bundler.media.stream import Progress
from bundler.pipeline.plan.types import FileCopy, MediaRequest, MediaStatus

S3_SCHEME = "s3://"
DEFAULT_ASSETS_ROOT = "generated"
ArchiveFormat = Literal["zip", "tar.gz"]


def is_s3_url(value: str | Path | None) -> bool:
    return isinstance(value, str) and value.startswith(S3_SCHEME)


def assets_root_setting(value: str | Path | None) -> str:
    """The one place the assets root is defaulted: ``--assets-root``, else ``BUNDLER_ASSETS_ROOT``,
    else ``./generated``."""
    return str(value) if value else os.environ.get("BUNDLER_ASSETS_ROOT") or DEFAULT_ASSETS_ROOT


@dataclass(frozen=True, slots=True)
class EncodedFrom:
    """An encoded file (``--web``) as a source record keeps it: how it was made and what it is."""

    recipe: str  # ``Encoding.recipe()``
    sha256: str  # the encoded file's
    bytes: int


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where one media file of a published bundle came from, as its source record keeps it.

    ``size`` and ``sha256`` are always the source's own (a record is trusted as the source's
    bytes); an encoded file's own are in ``encoded``."""

    source: str  # the object's s3:// URL, or the file's absolute path
    size: int
    etag: str | None  # objects in a bucket only: what makes the record trustworthy
    sha256: str
    encoded: EncodedFrom | None = None


KnownFiles = Mapping[str, Provenance]  # by ``Provenance.source``: what the last publish found there


@dataclass(frozen=True, slots=True)
class SourceRead:
    """A checked source read whole, to be encoded (``--web``): its bytes, their SHA-256, and the
    backend's note of what exactly was read (local: the file's stat before and after; a bucket:
    the ETag), which ``MediaSource.remember`` turns into the record that lets the next run reuse
    the encoded file instead of encoding it again."""

    data: bytes
    sha256: str
    proof: Any = None


class MediaSource(ABC):
    """Media under an assets root: checked by the planner's requests, then copied by ``build``."""

    @abstractmethod
    def probe(
        self, requests: Collection[MediaRequest], jobs: int, known: KnownFiles | None = None
    ) -> dict[MediaRequest, MediaStatus]:
        """Check every requested stored path (in parallel): a usable file or a problem code.

        ``known``: source records of the bundle being replaced; a source that can prove a file
        is the recorded one (same key, size and ETag) may trust it without reading it."""

    def for_assemble(self) -> AbstractContextManager[MediaSource]:
        """This source for one ``assemble``: it may keep what its checks read (a bucket source
        downloads each object whole, checks and hashes it once) until the build has copied it."""
        return nullcontext(self)

    def trusted(self, copy: FileCopy) -> FileEntry | None:
        """The entry of ``copy`` when its bytes are known without reading them (a trusted record)."""
        return None

    def provenance(self, copy: FileCopy, entry: FileEntry) -> Provenance:
        """What a source record keeps about ``copy`` (copied as ``entry``)."""
        return Provenance(copy.source.location, entry.bytes, None, entry.sha256)

    def encoded_provenance(self, copy: FileCopy, entry: FileEntry, source_sha256: str) -> Provenance:
        """What a source record keeps about ``copy`` encoded as ``entry`` from bytes with ``source_sha256``:
        the source's size and SHA-256, as for a copy, and the encoded file's own beside them."""
        assert copy.encoding is not None
        as_source = FileEntry(copy.target, copy.source.size, source_sha256, entry.media_type)
        made = EncodedFrom(copy.encoding.recipe(), entry.sha256, entry.bytes)
        return replace(self.provenance(copy, as_source), encoded=made)

    def source_sha256(self, copy: FileCopy) -> str | None:
        """The SHA-256 of ``copy``'s source bytes, without copying or encoding it (None: unknown)."""
        return None

    def copy_jobs(self, jobs: int) -> int:
        """Copies to run at once for ``--jobs``."""
        return jobs

    @abstractmethod
    def copy(self, copy: FileCopy, destination: Path, progress: Progress | None) -> FileEntry:
        """Stream one checked file into ``destination`` (a new file), hashing it on the way."""

    def read(self, copy: FileCopy) -> SourceRead:
        """The whole checked source of ``copy`` (to encode it); ``MediaChangedError`` when it changed
        since the check (size, format, gone)."""
        raise NotImplementedError(f"{type(self).__name__} cannot read sources to encode them")

    def remember(self, copy: FileCopy, fd: int, read: SourceRead, made: FileEntry) -> None:
        """Record on the new file ``fd`` (``made``, encoded from ``read`` by ``copy.encoding``) what
        it was made from, so that ``current``/``reuse`` can prove it current next time.

        The reuse key is (``read.sha256``, ``copy.encoding.recipe()``) -> ``made.sha256``: a
        backend that cannot keep a record on the file (a bucket) can keep the same triple, with the
        source's key and ETag, in a record of its own."""
        return None  # no record: the next run encodes the file again

    def current(self, copy: FileCopy, old: str, seal: int | None = None) -> FileEntry | None:
        """``old`` (a file of the bundle being replaced) when it provably holds the source's bytes.

        ``seal``: the previous bundle's seal (``storage.local.reuse.seal_bundle``), if any."""
        return None

    def reuse(self, copy: FileCopy, previous: str, destination: str, seal: int | None = None) -> FileEntry | None:
        """Link ``copy`` from the previous bundle folder when provably current, else None."""
        return None


@dataclass(frozen=True, slots=True)
class PreviousBundle:
    """The bundle a build replaces.

    ``folder``: a local folder whose files ``MediaSource.reuse`` may link, and ``seal``: when it
    was sealed (files changed later are re-hashed before they are trusted). ``held``: the SHA-256
    of every file the destination already stores and copies in place itself (a bucket's
    server-side copy): a file trusted with one of these is neither read nor staged. ``encoded``:
    (source SHA-256, ``Encoding.recipe()``) -> (encoded SHA-256, bytes) for encoded files held so:
    one whose source has that SHA-256 is neither read nor encoded again."""

    folder: Path | None
    seal: int | None
    held: frozenset[str] = frozenset()
    encoded: Mapping[tuple[str, str], tuple[str, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Staged:
    """A complete bundle in a staging folder, ready to publish.

    ``unchanged_since``: set when ``build`` proved the bundle being replaced already byte for
    byte this one (then staging holds nothing): the time it was found current, to seal it with.
    """

    story_id: str
    staging: Path
    exported_at: str
    unchanged_since: int | None = None
    held: frozenset[str] = frozenset()  # files of the bundle not in staging: ``PreviousBundle.held``
    sources: Mapping[str, Provenance] = field(default_factory=dict)  # by file of the bundle


@dataclass(frozen=True, slots=True)
class Published:
    """Where a bundle went: a folder path or an ``s3://`` URL (and its archive, if any)."""

    bundle: Path | str
    archive: Path | str | None
    text_bytes: int  # manifest.json + SHA256SUMS, for the report's byte count


class BundleDestination(ABC):
    """Where bundles go. A bundle is built in a local staging folder, then published whole."""

    keeps_source_records = False  # publishes ``Staged.sources`` beside each version (a bucket does)

    @abstractmethod
    def claim(self, story_id: str, overwrite: bool) -> None:
        """Fail early (``OutputExistsError``) when a bundle exists and ``overwrite`` is off."""

    def refuse_sources(self, story_id: str, source: MediaSource) -> None:  # noqa: B027  # most have nothing to refuse
        """Fail (``EnvError``) when the story's target would hold or replace ``source``'s media."""

    @abstractmethod
    def staging(self, story_id: str) -> AbstractContextManager[Path]:
        """An empty local folder to build in, removed on exit unless it was published."""

    def previous(self, story_id: str) -> PreviousBundle | None:
        """The bundle being replaced, when ``build`` may reuse its files."""
        return None

    def known(self, story_id: str) -> KnownFiles:
        """The source records of the bundle published now (none by default): read before the
        media are checked, so a source may trust what they prove."""
        return {}

    @abstractmethod
    def publish(
        self, staged: Staged, overwrite: bool, archive: ArchiveFormat | None, stop_if_cancelled: Callable[[], None]
    ) -> Published:
        """Make the staged bundle the story's bundle (and its archive), all at once.

        ``stop_if_cancelled`` raises to stop the run (an interrupt): it is called while the
        archive is built and before publishing begins, never halfway through it."""


class BundleReader(ABC):
    """A bundle to read back (a folder, an archive, a published version in a bucket)."""

    @abstractmethod
    def scan(self, reading: Reading) -> Found:
        """Every file, hashed while it is read (``reading.quick``: sizes and heads only)."""

    @abstractmethod
    def where(self) -> Path | str:
        """What to call the bundle in messages and reports (an absolute path, or the URL)."""
