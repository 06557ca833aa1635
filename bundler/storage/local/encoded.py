"""Records of encoded files (``assemble --web``): what a WebP key frame or M4A narration was made from.

Encoding is the expensive step, so a re-assemble must never repeat it for a source whose
bytes did not change. Like a copy's ``SourceRecord`` (``records``), the record lives in an
extended attribute of the encoded file itself (``user.bundler.web``), published atomically
with it and never one of the bundle's files. It holds the reuse key and its value:

* the source's SHA-256 and identity (path, size, times, inode: ``records.source_identity``);
* a digest of the recipe (``Encoding.recipe()``: format, settings key, encoder versions);
* the encoded file's SHA-256 and its own mtime when written.

The previous bundle's file is reused (hard-linked) when the recipe is the same and the source
is provably the same bytes: the same identity, or, when only its metadata changed, a re-hash
equal to the recorded SHA-256. A changed source, other settings or other encoder libraries
mean a new encoding; a file touched since its bundle was sealed is re-hashed first.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import struct
import time
from dataclasses import dataclass, replace

from bundler.bundle.manifest import FileEntry
from bundler.errors import MediaChangedError
from bundler.media.stream import fd_chunks, stream
from bundler.pipeline.plan.types import FileCopy
from bundler.storage.local.copying import disk_file, hash_file, open_checked_source
from bundler.storage.local.records import records_supported, same_file, settled, source_identity
from bundler.storage.local.reuse import link_checked
from bundler.storage.ports import SourceRead

WEB_RECORD_ATTRIBUTE = "user.bundler.web"
WEB_RECORD_VERSION = 1
# version, source SHA-256, source identity, encoded SHA-256, recipe digest, encoded file mtime (ns)
_RECORD = struct.Struct("<B32s16s32s16sq")


@dataclass(frozen=True, slots=True)
class EncodedRecord:
    source_sha256: str
    source_identity: bytes
    sha256: str
    recipe: bytes
    mtime_ns: int

    def to_bytes(self) -> bytes:
        return _RECORD.pack(
            WEB_RECORD_VERSION,
            bytes.fromhex(self.source_sha256),
            self.source_identity,
            bytes.fromhex(self.sha256),
            self.recipe,
            self.mtime_ns,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> EncodedRecord | None:
        if len(data) != _RECORD.size:
            return None
        version, source_sha, identity, sha, recipe, mtime = _RECORD.unpack(data)
        if version != WEB_RECORD_VERSION:
            return None
        return cls(source_sha.hex(), identity, sha.hex(), recipe, mtime)


@dataclass(frozen=True, slots=True)
class LocalProof:
    """The source file as it was just before and after it was read, and when the read began."""

    before: os.stat_result
    after: os.stat_result
    started_ns: int


def recipe_digest(copy: FileCopy) -> bytes:
    assert copy.encoding is not None
    return hashlib.blake2b(copy.encoding.recipe().encode("utf-8"), digest_size=16).digest()


def read_source(copy: FileCopy) -> SourceRead:
    """The source's bytes whole, hashed as read; ``MediaChangedError`` when it is not what was checked."""
    started = time.time_ns()
    path = disk_file(copy).path
    fd, before, check_head = open_checked_source(copy)
    try:
        done = stream(fd_chunks(fd), keep=True, check_head=check_head)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if done.size != copy.source.size or done.content is None:
        message = f"{path} changed size while bundling ({copy.source.size} -> {done.size} bytes; {copy.target})."
        raise MediaChangedError(message, copy.target)
    return SourceRead(done.content, done.sha256, LocalProof(before, after, started))


def remember(copy: FileCopy, fd: int, read: SourceRead, made: FileEntry) -> None:
    """Record on the encoded file what it was made from, when the source did not change while it was
    read and had not just been written (a "racy" file could change without its stat showing it)."""
    proof = read.proof
    if not isinstance(proof, LocalProof) or not records_supported():
        return
    if not same_file(proof.before, proof.after) or not settled(proof.after, proof.started_ns):
        return
    identity = source_identity(disk_file(copy).path, proof.after)
    record = EncodedRecord(read.sha256, identity, made.sha256, recipe_digest(copy), os.fstat(fd).st_mtime_ns)
    _store(fd, record)


def _store(fd: int, record: EncodedRecord) -> None:
    with contextlib.suppress(OSError):  # no record: this file is simply encoded again next time
        os.setxattr(fd, WEB_RECORD_ATTRIBUTE, record.to_bytes())


def read_record(path: str) -> EncodedRecord | None:
    if not hasattr(os, "getxattr"):
        return None
    try:
        return EncodedRecord.from_bytes(os.getxattr(path, WEB_RECORD_ATTRIBUTE, follow_symlinks=False))
    except OSError:
        return None


def _recorded(
    copy: FileCopy, old: str, seal: int | None, rehash_source: bool
) -> tuple[EncodedRecord, os.stat_result, EncodedRecord | None] | None:
    """The record of ``old`` when it proves ``old`` is ``copy`` encoded from the source's current bytes;
    with a refreshed record when the source's metadata changed but its bytes did not."""
    record = read_record(old)
    if record is None or record.recipe != recipe_digest(copy):
        return None
    path = disk_file(copy).path
    try:
        current = os.stat(path)
        old_stat = os.lstat(old)
    except OSError:
        return None
    # the plan's view of the source (from the media check) must still hold, or encoding reports it
    if current.st_size != copy.source.size or current.st_mtime_ns != disk_file(copy).mtime_ns:
        return None
    if not stat.S_ISREG(old_stat.st_mode) or old_stat.st_mtime_ns != record.mtime_ns:
        return None
    if seal is None or old_stat.st_ctime_ns > seal:  # touched since sealed: its bytes must hash to the record
        hashed = hash_file(old)
        if hashed is None or hashed[0] != record.sha256 or not same_file(hashed[1], hashed[2]):
            return None
    if record.source_identity == source_identity(path, current):
        return record, old_stat, None
    if not rehash_source:
        return None
    hashed = hash_file(path)
    if hashed is None:
        return None
    sha, before, after, started = hashed
    if sha != record.source_sha256 or not same_file(before, after):
        return None
    refreshed = replace(record, source_identity=source_identity(path, after)) if settled(after, started) else None
    return record, old_stat, refreshed


def current_encoded(copy: FileCopy, old: str, seal: int | None) -> FileEntry | None:
    """The previous bundle's encoded file as it is, when its record matches the source exactly."""
    found = _recorded(copy, old, seal, rehash_source=False)
    if found is None:
        return None
    return FileEntry(copy.target, found[1].st_size, found[0].sha256, copy.media_type)


def reuse_encoded(copy: FileCopy, previous: str, destination: str, seal: int | None) -> FileEntry | None:
    """Hard-link the previous bundle's encoding of ``copy`` when its record proves it current, else None."""
    old = f"{previous}/{copy.target}"
    found = _recorded(copy, old, seal, rehash_source=True)
    if found is None:
        return None
    record, old_stat, refreshed = found
    # the record's mtime is the file's own (linking does not change it); it now names the source as it is
    stored = refreshed
    if not link_checked(old, destination, old_stat, None if stored is None else lambda fd: _store(fd, stored)):
        return None
    return FileEntry(copy.target, old_stat.st_size, record.sha256, copy.media_type)
