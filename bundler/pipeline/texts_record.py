"""The bundle's own record: proof that its ``index.html``, ``manifest.json`` and
``SHA256SUMS`` are what rendering the current plan would give, so an unchanged
re-assemble need not render them again.

Rendering the manifest and the player is most of an unchanged re-assemble
(bench/results.md, "Why the code is shaped this way"). The texts are a pure function of the plan,
the media file entries and the code and files that render them. So the
bundle folder carries, in an extended attribute (``user.bundler.texts``):

* a *key*: SHA-256 of the manifest document with its media entries (compact
  JSON) and of the renderer (bundler version, the source of the rendering
  modules, the player's template, script and style);
* the SHA-256 of each of the three texts as written.

A later assemble computes the key from its own plan; when it is the recorded
one, it reads the three files back and hashes them (a few MB, no rendering).
Only when every hash is the recorded one are the texts kept. The record
proves nothing on its own: bytes are always checked, so a text edited in
place, replaced or truncated (whatever its timestamps say) is rendered again,
and a record that does not parse or match simply means "render". Media files
are never judged here: their own records (``bundler.storage.local.records``) do that first.

The record sits on the folder, not on a file: setting it changes no text
file's ``ctime``, and it moves with the folder when staging is renamed into
place. Archives, checksums and ``verify`` never see it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import sys
from collections.abc import Sequence
from contextlib import suppress
from functools import cache
from importlib.resources import files
from pathlib import Path

from bundler.bundle.manifest import MANIFEST_NAME, PLAYER_NAME, SUMS_NAME, FileEntry, manifest_document
from bundler.pipeline.plan.types import BundlePlan

ATTRIBUTE = "user.bundler.texts"
TEXTS = {PLAYER_NAME: "text/html", MANIFEST_NAME: "application/json", SUMS_NAME: "text/plain"}
_VERSION = 1
_RECORD = struct.Struct("<B32s" + "32s" * len(TEXTS))  # version, key, then each text's SHA-256


_RENDERING_MODULES = (
    "bundler.pipeline.build",
    "bundler.bundle.manifest",
    "bundler.player",
    "bundler.pipeline.plan.types",
    __name__,
)
_PLAYER_FILES = ("player.html", "player.js", "player.css")
_JSON_LIBRARIES = ("orjson",)


def _library_version(name: str) -> bytes:
    module = sys.modules.get(name)
    if module is None:
        try:
            module = __import__(name)
        except ImportError:
            return b"-"
    return f"{name} {getattr(module, '__version__', '?')}".encode()


@cache
def _renderer() -> bytes | None:
    """Digest of everything besides the plan that the texts depend on; None if it cannot be read.

    The source of the rendering modules is part of it, so an edited checkout (same version
    number, different output) never keeps texts rendered by the old code; so are the Python
    version (its ``json`` module writes the player's data) and any JSON library's version.
    """
    from importlib import import_module

    from bundler import __version__

    digest = hashlib.sha256(__version__.encode())
    try:
        parts = [sys.version.encode(), *(_library_version(name) for name in _JSON_LIBRARIES)]
        parts += [Path(import_module(name).__file__ or "").read_bytes() for name in _RENDERING_MODULES]
        parts += [files("bundler.player").joinpath(name).read_bytes() for name in _PLAYER_FILES]
    except (OSError, TypeError, ValueError):
        return None
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.digest()


_BATCH = 1024  # list items per JSON text hashed


def texts_key(plan: BundlePlan, media: Sequence[FileEntry]) -> bytes | None:
    """What the three texts of a bundle of ``plan`` with these media files are a function of.

    The manifest document (with the media entries) is hashed as compact JSON, its long
    lists a batch of items at a time: at 100,000 shots one JSON text of it all would be
    tens of MB held at once. Each text is self-delimiting and every list's length is
    hashed, so different documents give different input to the hash.
    """
    renderer = _renderer()
    if renderer is None:
        return None
    digest = hashlib.sha256(renderer)
    encode = json.JSONEncoder(separators=(",", ":")).encode  # ASCII, the C encoder
    try:
        for name, value in manifest_document(plan, media).items():
            if isinstance(value, list):
                digest.update(f"{encode(name)}[{len(value)}\n".encode())
                for start in range(0, len(value), _BATCH):
                    digest.update(encode(value[start : start + _BATCH]).encode("ascii") + b"\n")
            else:
                digest.update(f"{encode(name)}:{encode(value)}\n".encode("ascii"))
    except (TypeError, ValueError):
        return None
    return digest.digest()


def store(folder: Path, key: bytes | None, texts: Sequence[FileEntry]) -> None:
    """Record ``key`` and the texts as written in ``folder``; where that fails, nothing is cached."""
    by_name = {entry.path: entry.sha256 for entry in texts}
    if key is None or set(by_name) != set(TEXTS) or not hasattr(os, "setxattr"):
        return
    record = _RECORD.pack(_VERSION, key, *(bytes.fromhex(by_name[name]) for name in TEXTS))
    with suppress(OSError):  # no extended attributes here (or no room): the next assemble renders again
        os.setxattr(folder, ATTRIBUTE, record, follow_symlinks=False)


def cached(folder: Path, key: bytes | None) -> list[FileEntry] | None:
    """The texts of ``folder`` when its record has ``key`` and every text still hashes to the record."""
    if key is None or not hasattr(os, "getxattr"):
        return None
    try:
        record = os.getxattr(folder, ATTRIBUTE, follow_symlinks=False)
    except OSError:
        return None
    if len(record) != _RECORD.size:
        return None
    version, recorded_key, *hashes = _RECORD.unpack(record)
    if version != _VERSION or recorded_key != key:
        return None
    entries = []
    for (name, media_type), recorded in zip(TEXTS.items(), hashes, strict=True):
        found = _hash_file(folder / name)
        if found is None or found[0] != recorded:
            return None
        entries.append(FileEntry(name, found[1], recorded.hex(), media_type))
    return entries


def _hash_file(path: Path) -> tuple[bytes, int] | None:
    """SHA-256 and size of a regular file (a symlink is not followed), or None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        digest = hashlib.sha256()
        size = 0
        while chunk := os.read(fd, 1 << 20):
            digest.update(chunk)
            size += len(chunk)
        return digest.digest(), size
    except OSError:
        return None
    finally:
        os.close(fd)
