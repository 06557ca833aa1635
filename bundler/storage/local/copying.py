"""Copy one media file into a bundle, hashing it on the way, or reuse it from the
previous bundle when a *source record* proves it current.

Re-assembling over an existing bundle (``--overwrite``) reuses its unchanged
media: the new staging folder gets a hard link to the previous bundle's file
instead of a fresh copy. A file is reused only when its record proves it holds
exactly the bytes the source has now (see ``SourceRecord``); anything else is
copied and hashed anew, so a stale file can never end up in a bundle.

Where the record lives, and why: in an extended attribute (``user.bundler``)
of the bundle file it describes, not in a file of its own.

* It is not one of the bundle's files, so ``manifest.json``, ``SHA256SUMS``,
  archives and ``bundler verify`` never see it, and ``--out`` holds nothing but
  bundles (no cache file that could outlive, or disagree with, its bundle).
* It is written before the bundle is published, onto the very inode whose bytes
  it describes, so it is published atomically with the bundle and cannot drift
  from it: replacing or deleting a bundle file takes its record along, and a
  hard link shares it.
* Deriving reuse from the previous manifest plus the sources' ``stat`` alone
  is not safe: the manifest knows each file's hash but not which source path,
  inode and timestamps it came from, so a stored path switched to a different
  file of the same size (narration of the same length) would go stale.
* Where extended attributes are not supported (some file systems, non-Linux
  systems) no record is written and every file is simply copied again.

Nothing ever writes into a reused (hard-linked) file: new files are created
with ``O_EXCL``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bundler.bundle.manifest import FileEntry
from bundler.errors import InputError
from bundler.media.paths import OPEN_FLAGS, SourceFile, not_regular, sniff
from bundler.pipeline.plan.types import BundlePlan, FileCopy
from bundler.problems import Problem, error

CHUNK = 1 << 20
Progress = Callable[[int], None]  # called with the bytes just copied

RECORD_ATTRIBUTE = "user.bundler"
RECORD_VERSION = 2
_RECORD = struct.Struct("<B32sq16s")  # version, SHA-256, bundle file mtime (ns), source identity
# A record is only trusted for a source last changed at least this long before it
# was read: a write in the same timestamp tick as our read would otherwise leave
# size and timestamps unchanged ("racy" files, as git calls them). Two seconds
# covers the coarsest common timestamps (FAT); such fresh files are re-hashed.
RACY_MARGIN_NS = 2_000_000_000
SEAL_ATTRIBUTE = "user.bundler.sealed"  # on a bundle folder: see seal_bundle
_SEAL = struct.Struct("<q")
CTIME_TICK_NS = 20_000_000  # more than one tick of the kernel's coarse clock (4-10 ms)

_NO_RECORDS = (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.EACCES, errno.ENOSYS)
_records_supported = hasattr(os, "setxattr") and hasattr(os, "getxattr")
_local = threading.local()


class MediaChangedError(InputError):
    """A source file changed (or vanished) between the check and the copy: a story problem."""

    def __init__(self, message: str, copy: FileCopy | None = None) -> None:
        super().__init__(message)
        self.copy = copy


def media_changed_problem(plan: BundlePlan, exc: MediaChangedError) -> Problem:
    """The problem for ``exc``, naming the scenelet (UUID and label), shot and file it concerns."""
    copy = exc.copy
    scenelet_id = label = shot_index = path = None
    if copy is not None:
        source = copy.source
        path = source.path if isinstance(source, SourceFile) else source.key
        for scenelet in plan.scenelets:
            shots = [shot.shot_index for shot in scenelet.shots if copy in (shot.image, shot.audio)]
            if shots or copy == scenelet.branch_audio:
                scenelet_id, label = scenelet.id, scenelet.label
                shot_index = shots[0] if shots else None
                break
    return error(
        "media-changed", str(exc), path=path, scenelet_id=scenelet_id, scenelet_label=label, shot_index=shot_index
    )


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """What a bundle file was copied from, stored in the file's extended attribute.

    ``identity`` is a digest of the source as it was when it was read: its
    resolved path, size, mtime, ctime, inode and device (ctime cannot be set
    by programs, so a rewrite that restores the old mtime is still noticed).
    ``sha256`` is the hash of the copied bytes and ``copy_mtime_ns`` the bundle
    file's own mtime; a bundle file whose ctime is later than its bundle's seal
    (``seal_bundle``) is re-hashed, so one edited after the fact is never reused.
    Binary and 57 bytes, so that file systems keep it inside the inode (ext4
    does up to 64 bytes under this name) instead of allocating a block per file.
    """

    sha256: str
    copy_mtime_ns: int
    identity: bytes

    def to_bytes(self) -> bytes:
        return _RECORD.pack(RECORD_VERSION, bytes.fromhex(self.sha256), self.copy_mtime_ns, self.identity)

    @classmethod
    def from_bytes(cls, data: bytes) -> SourceRecord | None:
        if len(data) != _RECORD.size:
            return None
        version, sha, copy_mtime, identity = _RECORD.unpack(data)
        if version != RECORD_VERSION:
            return None
        return cls(sha.hex(), copy_mtime, identity)

    def matches_source(self, source: str, current: os.stat_result) -> bool:
        return self.identity == source_identity(source, current)


def source_identity(source: str, info: os.stat_result) -> bytes:
    fields = (source, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev)
    text = "\0".join(map(str, fields)).encode("utf-8", "surrogateescape")
    return hashlib.blake2b(text, digest_size=16).digest()


def _disk_file(copy: FileCopy) -> SourceFile:
    """The local file ``copy`` comes from (this module copies from disk only)."""
    if not isinstance(copy.source, SourceFile):
        raise TypeError(f"{copy.target} does not come from a local file")
    return copy.source


class NotRegularFile(Exception):
    """What is at a path is not (any more) a regular file; the message says what it is."""


# Sources are opened as the media check saw them: never blocking (a FIFO swapped in since would
# wait for a writer forever) and never through a symlink at the last step (their paths are resolved).
_READ_FLAGS = OPEN_FLAGS | getattr(os, "O_NOFOLLOW", 0)


def _open_regular(path: Path | str) -> tuple[int, os.stat_result]:
    """An fd of the regular file at ``path``, opened without blocking, and its ``fstat``.

    Raises ``FileNotFoundError``, ``NotRegularFile`` or another ``OSError``.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink
            raise NotRegularFile("is a symbolic link") from None
        raise
    try:
        info = os.fstat(fd)
        why = not_regular(info.st_mode)
        if why:
            raise NotRegularFile(why)
        os.set_blocking(fd, True)  # local file systems ignore O_NONBLOCK on regular files; others may not
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def _buffer() -> bytearray:
    buffer: bytearray | None = getattr(_local, "buffer", None)
    if buffer is None:
        buffer = _local.buffer = bytearray(CHUNK)
    return buffer


def write_all(fd: int, data: memoryview, path: Path) -> None:
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError as exc:  # os.write names no file: a full disk must say where
        raise OSError(exc.errno, exc.strerror, os.fspath(path)) from None


def _identity(info: os.stat_result) -> tuple[int, int, int, int, int]:
    """Which file this is and what it holds, as far as ``stat`` tells without its ctime."""
    return info.st_ino, info.st_dev, info.st_mode, info.st_size, info.st_mtime_ns


def _same_file(before: os.stat_result, after: os.stat_result) -> bool:
    """Nothing about the file changed between the two ``stat`` calls (its ctime included)."""
    return _identity(before) == _identity(after) and before.st_ctime_ns == after.st_ctime_ns


def _settled(source: os.stat_result, read_started_ns: int) -> bool:
    """Was the source last changed well before we started reading it (not "racy")?"""
    return max(source.st_mtime_ns, source.st_ctime_ns) + RACY_MARGIN_NS < read_started_ns


def _store_record(fd: int, record: SourceRecord) -> None:
    global _records_supported
    if not _records_supported:
        return
    try:
        os.setxattr(fd, RECORD_ATTRIBUTE, record.to_bytes())
    except OSError as exc:
        if exc.errno in _NO_RECORDS:
            _records_supported = False  # this file system keeps no records: stop trying
        # any other failure (ENOSPC, say): this one file is simply copied again next time


def read_record(path: Path | str) -> SourceRecord | None:
    """The source record of a bundle file, or None (no record, unreadable, not a regular file)."""
    if not hasattr(os, "getxattr"):
        return None
    try:
        return SourceRecord.from_bytes(os.getxattr(path, RECORD_ATTRIBUTE, follow_symlinks=False))
    except OSError:
        return None


def copy_and_hash(copy: FileCopy, destination: Path, progress: Progress | None = None) -> FileEntry:
    """Stream one file: copy and hash in the same pass, never the whole file in memory.

    The bytes hashed are exactly the bytes written. When the source did not
    change while it was read (and had not just been written), the new file gets
    a ``SourceRecord`` so that the next assemble can reuse it.
    """
    buffer = _buffer()
    view = memoryview(buffer)
    digest = hashlib.sha256()
    size = 0
    read_started = time.time_ns()
    source = _disk_file(copy).path
    try:
        source_fd, before = _open_regular(source)
    except FileNotFoundError:
        raise MediaChangedError(f"{source} was removed while bundling ({copy.target}).", copy) from None
    except NotRegularFile as exc:
        raise MediaChangedError(f"{source} was replaced while bundling: it {exc} ({copy.target}).", copy) from None
    try:
        if before.st_size != copy.source.size:  # no need to read it to know
            raise _changed_size(copy, before.st_size)
        target_fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            while True:
                count = os.readv(source_fd, [buffer])
                if not count:
                    break
                if size == 0 and not sniff(bytes(view[:16]), copy.kind):
                    raise MediaChangedError(f"{source} changed format while bundling ({copy.target}).", copy)
                chunk = view[:count]
                digest.update(chunk)
                write_all(target_fd, chunk, destination)
                size += count
                if progress:
                    progress(count)
            if size != copy.source.size:
                raise _changed_size(copy, size)
            sha = digest.hexdigest()
            after = os.fstat(source_fd)
            if _records_supported and _same_file(before, after) and _settled(after, read_started):
                written = os.fstat(target_fd)
                _store_record(target_fd, _record(copy, after, sha, written.st_mtime_ns))
        finally:
            os.close(target_fd)
    finally:
        os.close(source_fd)
    return FileEntry(copy.target, size, sha, copy.media_type)


def _changed_size(copy: FileCopy, size: int) -> MediaChangedError:
    return MediaChangedError(
        f"{_disk_file(copy).path} changed size while bundling ({copy.source.size} -> {size} bytes; {copy.target}).",
        copy,
    )


def _record(copy: FileCopy, source: os.stat_result, sha: str, copy_mtime_ns: int) -> SourceRecord:
    return SourceRecord(sha, copy_mtime_ns, source_identity(_disk_file(copy).path, source))


def hash_file(path: Path | str) -> tuple[str, os.stat_result, os.stat_result, int] | None:
    """SHA-256 of a file without copying it; returns (hex, stat before, stat after, read start ns),
    or None when ``path`` is gone or is not a regular file now (then it is not reused: copying it
    reports what became of it)."""
    buffer = _buffer()
    view = memoryview(buffer)
    digest = hashlib.sha256()
    started = time.time_ns()
    try:
        fd, before = _open_regular(path)
    except (FileNotFoundError, NotRegularFile):
        return None
    try:
        while count := os.readv(fd, [buffer]):
            digest.update(view[:count])
        after = os.fstat(fd)
    finally:
        os.close(fd)
    return digest.hexdigest(), before, after, started


def _links_to(link: Path | str, checked: os.stat_result) -> bool:
    """Is ``link`` the very file that was checked? If not, it is removed (the caller copies anew).

    Its ctime cannot tell (making the link changes it); the inode number alone cannot either
    (a file system may give a freed number to the next new file at once), so the type, size
    and mtime must match too.
    """
    try:
        linked = os.lstat(link)
    except OSError:
        linked = None
    if linked is not None and _identity(linked) == _identity(checked):
        return True
    with contextlib.suppress(FileNotFoundError):
        os.unlink(link)
    return False


def seal_bundle(bundle: Path, sealed_ns: int | None = None) -> None:
    """Mark a published bundle folder with a time no later than any change of its files made by
    this run (writes, links, records, unlinking the old bundle's links), ``sealed_ns`` or now.

    Whatever changes a bundle file afterwards (an edit, even one that puts the
    mtime back, a chmod, a new link) sets its ctime later than the seal, which no
    program can undo; such a file is re-hashed before it is trusted (``_recorded``).
    The kernel stamps ctimes from a clock that lags by up to a tick, so this
    returns only once that clock has surely passed the seal. (An edit in the
    moments between the swap and the seal is the one change it cannot tell.)
    """
    if not _records_supported:
        return
    sealed = time.time_ns() if sealed_ns is None else sealed_ns
    try:
        os.setxattr(bundle, SEAL_ATTRIBUTE, _SEAL.pack(sealed), follow_symlinks=False)
    except OSError:
        return  # no seal: every file of this bundle is re-hashed before it is reused
    wait = sealed + CTIME_TICK_NS - time.time_ns()
    if wait > 0:
        time.sleep(wait / 1e9)


def read_seal(bundle: Path) -> int | None:
    try:
        data = os.getxattr(bundle, SEAL_ATTRIBUTE, follow_symlinks=False)
    except OSError:
        return None
    return int(_SEAL.unpack(data)[0]) if len(data) == _SEAL.size else None


def _recorded(copy: FileCopy, old: str, seal: int | None) -> tuple[SourceRecord, os.stat_result, os.stat_result] | None:
    """The record of the previous bundle's file ``old``, the source's current stat and ``old``'s stat,
    when ``old`` is still the very file that was written and as large as the source is now."""
    record = read_record(old)
    if record is None:
        return None
    try:
        current = os.stat(_disk_file(copy).path)
        old_stat = os.lstat(old)
    except OSError:
        return None
    # the plan's view of the source (from the media check) must still hold, or the copy path reports it
    if current.st_size != copy.source.size or current.st_mtime_ns != _disk_file(copy).mtime_ns:
        return None
    if (
        not stat.S_ISREG(old_stat.st_mode)
        or old_stat.st_mtime_ns != record.copy_mtime_ns
        or old_stat.st_size != current.st_size
    ):
        return None
    if seal is None or old_stat.st_ctime_ns > seal:
        # touched since the bundle was sealed (perhaps rewritten with its mtime put back): the
        # record proves nothing about these bytes until they hash to it again
        hashed = hash_file(old)
        if hashed is None or hashed[0] != record.sha256 or not _same_file(hashed[1], hashed[2]):
            return None
    return record, current, old_stat


def current_entry(copy: FileCopy, old: str, seal: int | None) -> FileEntry | None:
    """The previous bundle's file for ``copy`` as it is, when its record matches the source exactly."""
    found = _recorded(copy, old, seal)
    if found is None or not found[0].matches_source(_disk_file(copy).path, found[1]):
        return None
    return FileEntry(copy.target, found[2].st_size, found[0].sha256, copy.media_type)


def reuse_previous(copy: FileCopy, previous: Path | str, destination: Path | str, seal: int | None) -> FileEntry | None:
    """Hard-link ``copy`` from the previous bundle when its record proves it current, else None.

    * the source's path, size, mtime, ctime, inode and device as recorded: reuse as is;
    * anything else about the source changed but not its size (touched, restored
      from a backup, rewritten, another path): re-hash the source; reuse only if
      the hash is the recorded one (and then record the source as it is now);
    * a previous file that is gone, not a regular file, or was modified after it
      was written, or any other change: None, and the caller copies anew.
    """
    old = f"{os.fspath(previous)}/{copy.target}"
    found = _recorded(copy, old, seal)
    if found is None:
        return None
    record, current, old_stat = found
    refreshed: SourceRecord | None = None
    if not record.matches_source(_disk_file(copy).path, current):
        hashed = hash_file(_disk_file(copy).path)
        if hashed is None:
            return None
        sha, before, after, started = hashed
        if sha != record.sha256 or not _same_file(before, after) or after.st_size != old_stat.st_size:
            return None
        if _settled(after, started):
            refreshed = _record(copy, after, sha, record.copy_mtime_ns)
    try:
        os.link(old, destination, follow_symlinks=False)
    except OSError:
        return None  # no hard links here (or too many): copy instead
    if not _links_to(destination, old_stat):
        return None  # ``old`` was replaced between its check and the link: copy instead
    if refreshed is not None and _records_supported:
        # metadata only: the file's bytes are untouched, and the record stays true for them
        try:
            fd, _ = _open_regular(destination)
        except (OSError, NotRegularFile):
            pass
        else:
            try:
                _store_record(fd, refreshed)
            finally:
                os.close(fd)
    return FileEntry(copy.target, old_stat.st_size, record.sha256, copy.media_type)
