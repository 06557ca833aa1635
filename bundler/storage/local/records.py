"""Source records and seals: what proves a previous bundle's file still holds the source's bytes.

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

import errno
import hashlib
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

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


class _Support:
    """Whether this file system keeps records; turned off at the first refusal."""

    records = hasattr(os, "setxattr") and hasattr(os, "getxattr")


def records_supported() -> bool:
    return _Support.records


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


def identity(info: os.stat_result) -> tuple[int, int, int, int, int]:
    """Which file this is and what it holds, as far as ``stat`` tells without its ctime."""
    return info.st_ino, info.st_dev, info.st_mode, info.st_size, info.st_mtime_ns


def same_file(before: os.stat_result, after: os.stat_result) -> bool:
    """Nothing about the file changed between the two ``stat`` calls (its ctime included)."""
    return identity(before) == identity(after) and before.st_ctime_ns == after.st_ctime_ns


def settled(source: os.stat_result, read_started_ns: int) -> bool:
    """Was the source last changed well before we started reading it (not "racy")?"""
    return max(source.st_mtime_ns, source.st_ctime_ns) + RACY_MARGIN_NS < read_started_ns


def store_record(fd: int, record: SourceRecord) -> None:
    if not _Support.records:
        return
    try:
        os.setxattr(fd, RECORD_ATTRIBUTE, record.to_bytes())
    except OSError as exc:
        if exc.errno in _NO_RECORDS:
            _Support.records = False  # this file system keeps no records: stop trying
        # any other failure (ENOSPC, say): this one file is simply copied again next time


def read_record(path: Path | str) -> SourceRecord | None:
    """The source record of a bundle file, or None (no record, unreadable, not a regular file)."""
    if not hasattr(os, "getxattr"):
        return None
    try:
        return SourceRecord.from_bytes(os.getxattr(path, RECORD_ATTRIBUTE, follow_symlinks=False))
    except OSError:
        return None


def seal_bundle(bundle: Path, sealed_ns: int | None = None) -> None:
    """Mark a published bundle folder with a time no later than any change of its files made by
    this run (writes, links, records, unlinking the old bundle's links), ``sealed_ns`` or now.

    Whatever changes a bundle file afterwards (an edit, even one that puts the
    mtime back, a chmod, a new link) sets its ctime later than the seal, which no
    program can undo; such a file is re-hashed before it is trusted (``reuse._recorded``).
    The kernel stamps ctimes from a clock that lags by up to a tick, so this
    returns only once that clock has surely passed the seal. (An edit in the
    moments between the swap and the seal is the one change it cannot tell.)
    """
    if not _Support.records:
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
