"""Copy one media file into a bundle, hashing it on the way (``media.stream``), and record
where it came from (``records``) so that the next assemble can reuse it.

Sources are opened as the media check saw them: never blocking (a FIFO swapped in
since would wait for a writer forever) and never through a symlink at the last step.
Nothing ever writes into a reused (hard-linked) file: new files are created with ``O_EXCL``.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

from bundler.bundle.manifest import FileEntry
from bundler.errors import MediaChangedError
from bundler.media.stream import Progress, fd_chunks, stream
from bundler.media.structure import sniff
from bundler.pipeline.plan.types import FileCopy
from bundler.storage.local.files import OPEN_FLAGS, SourceFile, not_regular
from bundler.storage.local.records import (
    SourceRecord,
    records_supported,
    same_file,
    settled,
    source_identity,
    store_record,
)


def disk_file(copy: FileCopy) -> SourceFile:
    """The local file ``copy`` comes from (this backend copies from disk only)."""
    if not isinstance(copy.source, SourceFile):
        raise TypeError(f"{copy.target} does not come from a local file")
    return copy.source


class NotRegularFile(Exception):
    """What is at a path is not (any more) a regular file; the message says what it is."""


_READ_FLAGS = OPEN_FLAGS | getattr(os, "O_NOFOLLOW", 0)


def open_regular(path: Path | str) -> tuple[int, os.stat_result]:
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


def open_checked_source(copy: FileCopy) -> tuple[int, os.stat_result, Callable[[bytes], None]]:
    """The source of ``copy`` opened as its check saw it, its ``fstat``, and the test its first bytes
    must pass; ``MediaChangedError`` (naming the file and its bundle path) for what became of it."""
    source = disk_file(copy).path
    try:
        fd, before = open_regular(source)
    except FileNotFoundError:
        raise MediaChangedError(f"{source} was removed while bundling ({copy.target}).", copy.target) from None
    except NotRegularFile as exc:
        message = f"{source} was replaced while bundling: it {exc} ({copy.target})."
        raise MediaChangedError(message, copy.target) from None

    def check_head(head: bytes) -> None:
        if not sniff(head, copy.kind):
            raise MediaChangedError(f"{source} changed format while bundling ({copy.target}).", copy.target)

    return fd, before, check_head


def copy_and_hash(copy: FileCopy, destination: Path, progress: Progress | None = None) -> FileEntry:
    """Stream one file: copy and hash in the same pass, never the whole file in memory.

    The bytes hashed are exactly the bytes written. When the source did not
    change while it was read (and had not just been written), the new file gets
    a ``SourceRecord`` so that the next assemble can reuse it.
    """
    read_started = time.time_ns()
    source_fd, before, check_head = open_checked_source(copy)
    try:
        if before.st_size != copy.source.size:  # no need to read it to know
            raise _changed_size(copy, before.st_size)
        target_fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            into = (target_fd, os.fspath(destination))
            done = stream(fd_chunks(source_fd), into=into, progress=progress, check_head=check_head)
            if done.size != copy.source.size:
                raise _changed_size(copy, done.size)
            after = os.fstat(source_fd)
            if records_supported() and same_file(before, after) and settled(after, read_started):
                written = os.fstat(target_fd)
                store_record(target_fd, source_record(copy, after, done.sha256, written.st_mtime_ns))
        finally:
            os.close(target_fd)
    finally:
        os.close(source_fd)
    return FileEntry(copy.target, done.size, done.sha256, copy.media_type)


def _changed_size(copy: FileCopy, size: int) -> MediaChangedError:
    return MediaChangedError(
        f"{disk_file(copy).path} changed size while bundling ({copy.source.size} -> {size} bytes; {copy.target}).",
        copy.target,
    )


def source_record(copy: FileCopy, source: os.stat_result, sha: str, copy_mtime_ns: int) -> SourceRecord:
    return SourceRecord(sha, copy_mtime_ns, source_identity(disk_file(copy).path, source))


def hash_file(path: Path | str) -> tuple[str, os.stat_result, os.stat_result, int] | None:
    """SHA-256 of a file without copying it; returns (hex, stat before, stat after, read start ns),
    or None when ``path`` is gone or is not a regular file now (then it is not reused: copying it
    reports what became of it)."""
    started = time.time_ns()
    try:
        fd, before = open_regular(path)
    except (FileNotFoundError, NotRegularFile):
        return None
    try:
        done = stream(fd_chunks(fd))
        after = os.fstat(fd)
    finally:
        os.close(fd)
    return done.sha256, before, after, started
