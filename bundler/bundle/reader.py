"""Read a bundle folder or a ``.zip``/``.tar.gz`` of one in a single streaming pass.

Each file is hashed while it is read; only ``manifest.json`` and ``SHA256SUMS``
are kept in memory and nothing is unpacked to disk. ``bundler.bundle.verify`` checks
what this module found.
"""

from __future__ import annotations

import os
import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

from bundler.bundle.manifest import MANIFEST_NAME as MANIFEST
from bundler.bundle.manifest import PLAYER_NAME as PLAYER
from bundler.bundle.manifest import SUMS_NAME as SUMS
from bundler.errors import BundleUnreadableError
from bundler.media.stream import HEAD as HEAD
from bundler.media.stream import chunks, stream
from bundler.problems import Problem, error
from bundler.support.documents import MAX_DOCUMENT_BYTES, DocumentError, check_size, parse_json
from bundler.support.progress import ProgressSink
from bundler.support.workers import run_parallel

# big reads: hashlib releases the GIL while it hashes a buffer, so threads hash files in parallel
_CHUNK = 4 << 20


@dataclass(frozen=True, slots=True)
class Digest:
    size: int
    sha256: str | None  # None when read with ``quick`` (sizes and completeness only)
    head: bytes
    content: bytes | None  # kept only for manifest.json, SHA256SUMS and index.html


@dataclass(frozen=True)
class Reading:
    """How to read a bundle: hashing threads (folders), quick mode, progress."""

    jobs: int = 1
    quick: bool = False  # sizes and heads only; manifest.json and SHA256SUMS are still read in full
    progress: ProgressSink | None = None


class _Bad(NamedTuple):
    """An entry that is not a readable regular file."""

    code: str
    message: str


@dataclass
class Found:
    files: dict[str, Digest] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def keeps(name: str) -> bool:
    # before an archive's top folder is known, the manifest may sit one level down
    return name.rsplit("/", 1)[-1] in (MANIFEST, SUMS, PLAYER) and name.count("/") <= 1


def _digest(source: IO[bytes], keep: bool, reading: Reading, size_hint: int) -> Digest:
    """Hash (or, quick, only measure) one file; ``size_hint`` is its size as listed, used when quick."""
    if reading.quick and not keep:
        head = source.read(HEAD)
        if reading.progress:
            reading.progress.advance(size_hint)
        return Digest(size_hint, None, head, None)
    return digest_stream(chunks(source.readinto, _CHUNK), keep, reading.progress)  # type: ignore[attr-defined]


def digest_stream(source: Iterable[bytes | memoryview], keep: bool, progress: ProgressSink | None) -> Digest:
    done = stream(_capped(source) if keep else source, progress=progress.advance if progress else None, keep=keep)
    return Digest(done.size, done.sha256, done.head, done.content)


def _capped(source: Iterable[bytes | memoryview]) -> Iterator[bytes | memoryview]:
    """A text file of the bundle is kept whole in memory: at most ``MAX_DOCUMENT_BYTES`` of it."""
    total = 0
    for chunk in source:
        total += len(chunk)
        if total > MAX_DOCUMENT_BYTES:
            raise BundleUnreadableError(f"{MANIFEST}, {SUMS} or {PLAYER} is larger than 256 MiB")
        yield chunk


def scan_path(path: Path, reading: Reading) -> Found:
    """A bundle folder, or a ``.zip``/``.tar.gz`` of one, in one streaming pass."""
    if path.is_dir():
        if not (path / MANIFEST).is_file():  # before hashing a folder that is no bundle at all
            raise BundleUnreadableError("it has no manifest.json")
        if (path / MANIFEST).stat().st_size > MAX_DOCUMENT_BYTES:  # before reading 3 GB of it
            raise BundleUnreadableError("its manifest.json is larger than 256 MiB")
        return collect(_directory_entries(path, reading), archive=False)
    if not path.exists():
        raise BundleUnreadableError("it does not exist")
    if not path.is_file():
        raise BundleUnreadableError("it is neither a folder nor an archive")
    if reading.progress:
        reading.progress.start(None)  # an archive's unpacked size is known only once it is read
    try:
        if zipfile.is_zipfile(path):
            return collect(_zip_entries(path, reading), archive=True)
        return collect(_tar_entries(path, reading), archive=True)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
        raise BundleUnreadableError(f"it is not a readable .zip or .tar.gz archive ({exc})") from None


def _directory_entries(root: Path, reading: Reading) -> Iterator[tuple[str, Digest | _Bad]]:
    """Walk first (names and sizes), then hash the files with ``reading.jobs`` threads."""
    files: list[tuple[str, Path, int]] = []
    for name, item in _walk(root):
        if isinstance(item, _Bad):
            yield name, item
        else:
            files.append((name, *item))
    if reading.progress:
        reading.progress.start(sum(size for _, _, size in files))

    def read(entry: tuple[str, Path, int]) -> tuple[str, Digest | _Bad]:
        name, path, size = entry
        return name, _read_file(path, keeps(name), reading, size)

    yield from run_parallel(files, read, reading.jobs)


def _walk(root: Path) -> Iterator[tuple[str, tuple[Path, int] | _Bad]]:
    pending = [root]  # an explicit stack: nesting depth costs no recursion
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as listing:
                items = sorted(listing, key=lambda item: item.name)
        except OSError as exc:
            if folder == root:
                raise BundleUnreadableError(f"it cannot be read ({exc.strerror})") from None
            yield folder.relative_to(root).as_posix(), _Bad("unreadable-file", str(exc.strerror))
            continue
        for item in items:
            name = Path(item.path).relative_to(root).as_posix()
            if item.is_symlink():
                # never followed: a bundle must be self-contained
                yield name, _Bad("not-a-regular-file", "is a symbolic link")
            elif item.is_dir(follow_symlinks=False):
                pending.append(Path(item.path))
            elif not item.is_file(follow_symlinks=False):
                yield name, _Bad("not-a-regular-file", "is not a regular file")
            else:
                yield name, (Path(item.path), item.stat(follow_symlinks=False).st_size)


def _read_file(path: Path, keep: bool, reading: Reading, size: int) -> Digest | _Bad:
    try:
        with open(path, "rb", buffering=0) as stream:
            return _digest(stream, keep, reading, size)
    except OSError as exc:
        return _Bad("unreadable-file", f"cannot be read: {exc.strerror}")


def _zip_entries(path: Path, reading: Reading) -> Iterator[tuple[str, Digest | _Bad]]:
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            mode = info.external_attr >> 16
            if mode and (mode & 0o170000) not in (0, 0o100000):  # symlink or device (Unix creator)
                yield info.filename, _Bad("not-a-regular-file", "is not a regular file")
                continue
            try:
                with archive.open(info) as stream:
                    found: Digest | _Bad = _digest(stream, keeps(_clean(info.filename)), reading, info.file_size)
            # members are independent in a zip: one damaged member is that file's problem
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
                found = _Bad("unreadable-file", f"cannot be read from the archive: {exc}")
            yield info.filename, found


def _tar_entries(path: Path, reading: Reading) -> Iterator[tuple[str, Digest | _Bad]]:
    # stream mode: one sequential pass through the (compressed) archive, no seeking
    with tarfile.open(path, mode="r|*") as archive:
        for member in archive:
            if member.isdir():
                continue
            stream = archive.extractfile(member) if member.isfile() else None
            if stream is None:
                yield member.name, _Bad("not-a-regular-file", "is not a regular file")
                continue
            with stream:
                yield member.name, _digest(stream, keeps(_clean(member.name)), reading, member.size)


def _clean(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


def collect(entries: Iterable[tuple[str, Digest | _Bad]], *, archive: bool) -> Found:
    raw: dict[str, Digest | _Bad] = {}
    found = Found()
    for name, item in entries:
        name = _clean(name)
        if name in raw:
            found.problems.append(error("duplicate-entry", "appears twice in the archive", path=name))
        elif archive and not is_safe_path(name):
            found.problems.append(error("unsafe-path", "archive entry path is not safe", path=name))
        else:
            raw[name] = item
    prefix = _bundle_prefix(raw) if archive else ""
    for name, item in raw.items():
        if not name.startswith(prefix):
            found.problems.append(error("extra-file", "is outside the archive's bundle folder", path=name))
            continue
        relative = name[len(prefix) :]
        if isinstance(item, _Bad):
            found.problems.append(error(item.code, item.message, path=relative))
        elif item.content is not None and relative not in (MANIFEST, SUMS, PLAYER):
            # kept only in case it was the bundle's own manifest or sums; it was not
            found.files[relative] = Digest(item.size, item.sha256, item.head, None)
        else:
            found.files[relative] = item
    if MANIFEST not in found.files:
        raise BundleUnreadableError("it has no manifest.json (or not as a regular file)")
    return found


def _bundle_prefix(names: Mapping[str, object]) -> str:
    """``"<top>/"`` for the one top folder holding a manifest, ``""`` when the files sit at the top."""
    if MANIFEST in names:
        return ""
    bundles = [
        name.removesuffix(f"/{MANIFEST}") for name in names if name.count("/") == 1 and name.endswith(f"/{MANIFEST}")
    ]
    if len(bundles) != 1:
        raise BundleUnreadableError("the archive needs exactly one manifest.json, at its top or in a top folder")
    return f"{bundles[0]}/"


def load_manifest(content: bytes | None) -> dict[str, Any]:
    try:
        manifest = parse_json(check_size(content or b""))
    except DocumentError as exc:
        raise BundleUnreadableError(f"manifest.json {exc}") from None
    if not isinstance(manifest, dict):
        raise BundleUnreadableError("manifest.json is not a JSON object")
    return manifest


# not safe in a URL path segment even percent-encoded by every player: control characters
# (C0, DEL, C1), and the characters that end or escape a path (``#``, ``%``, ``?``, ``\``)
_URL_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f#%?\\]")


def is_safe_path(path: str) -> bool:
    """Relative, normalized, POSIX and URL-safe: no absolute path, ``..``, empty segment, control
    character, ``#``, ``%``, ``?`` or backslash (docs/design.md §3)."""
    if not path or path.startswith("/") or _URL_UNSAFE.search(path):
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))
