"""Reuse a previous bundle's file (a hard link, not a copy) when its source record proves it
holds exactly the bytes the source has now (``records``); anything else is copied anew."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

from bundler.bundle.manifest import FileEntry
from bundler.pipeline.plan.types import FileCopy
from bundler.storage.local.copying import NotRegularFile, disk_file, hash_file, open_regular, source_record
from bundler.storage.local.records import (
    SourceRecord,
    identity,
    read_record,
    records_supported,
    same_file,
    settled,
    store_record,
)


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
    if linked is not None and identity(linked) == identity(checked):
        return True
    with contextlib.suppress(FileNotFoundError):
        os.unlink(link)
    return False


def _recorded(copy: FileCopy, old: str, seal: int | None) -> tuple[SourceRecord, os.stat_result, os.stat_result] | None:
    """The record of the previous bundle's file ``old``, the source's current stat and ``old``'s stat,
    when ``old`` is still the very file that was written and as large as the source is now."""
    record = read_record(old)
    if record is None:
        return None
    try:
        current = os.stat(disk_file(copy).path)
        old_stat = os.lstat(old)
    except OSError:
        return None
    # the plan's view of the source (from the media check) must still hold, or the copy path reports it
    if current.st_size != copy.source.size or current.st_mtime_ns != disk_file(copy).mtime_ns:
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
        if hashed is None or hashed[0] != record.sha256 or not same_file(hashed[1], hashed[2]):
            return None
    return record, current, old_stat


def current_entry(copy: FileCopy, old: str, seal: int | None) -> FileEntry | None:
    """The previous bundle's file for ``copy`` as it is, when its record matches the source exactly."""
    found = _recorded(copy, old, seal)
    if found is None or not found[0].matches_source(disk_file(copy).path, found[1]):
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
    if not record.matches_source(disk_file(copy).path, current):
        hashed = hash_file(disk_file(copy).path)
        if hashed is None:
            return None
        sha, before, after, started = hashed
        if sha != record.sha256 or not same_file(before, after) or after.st_size != old_stat.st_size:
            return None
        if settled(after, started):
            refreshed = source_record(copy, after, sha, record.copy_mtime_ns)
    stored = refreshed
    if not link_checked(old, destination, old_stat, None if stored is None else lambda fd: store_record(fd, stored)):
        return None
    return FileEntry(copy.target, old_stat.st_size, record.sha256, copy.media_type)


def link_checked(
    old: str, destination: Path | str, old_stat: os.stat_result, refresh: Callable[[int], None] | None
) -> bool:
    """Hard-link ``old`` (the file that was checked, ``old_stat``) to ``destination``; False when it
    cannot be linked or was replaced meanwhile (the caller copies instead). ``refresh`` then writes
    a new record onto the link: metadata only, the file's bytes are untouched."""
    try:
        os.link(old, destination, follow_symlinks=False)
    except OSError:
        return False  # no hard links here (or too many)
    if not _links_to(destination, old_stat):
        return False  # ``old`` was replaced between its check and the link
    if refresh is not None and records_supported():
        try:
            fd, _ = open_regular(destination)
        except (OSError, NotRegularFile):
            return True
        try:
            refresh(fd)
        finally:
            os.close(fd)
    return True
