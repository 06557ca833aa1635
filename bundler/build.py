"""Stage 3: copy and hash the planned media in parallel into a staging folder,
then write the player, ``manifest.json`` and ``SHA256SUMS``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bundler.assets import sniff
from bundler.errors import InputError
from bundler.manifest import MANIFEST_NAME, PLAYER_NAME, SUMS_NAME, FileEntry, dumps, manifest_document, sha256sums
from bundler.plan.types import BundlePlan, FileCopy

CHUNK = 1 << 20
Progress = Callable[[int], None]  # called with the bytes just copied


class MediaChangedError(InputError):
    """A source file changed between the check and the copy."""


def copy_and_hash(copy: FileCopy, destination: Path, progress: Progress | None = None) -> FileEntry:
    """Stream one file: copy and hash in the same pass, never the whole file in memory."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(copy.source.path, "rb") as source, open(destination, "xb") as target:
        while True:
            count = source.readinto(buffer)
            if not count:
                break
            if size == 0 and not sniff(bytes(view[:16]), copy.kind):
                raise MediaChangedError(f"{copy.source.path} changed format while bundling ({copy.target}).")
            digest.update(view[:count])
            target.write(view[:count])
            size += count
            if progress:
                progress(count)
    if size != copy.source.size:
        raise MediaChangedError(
            f"{copy.source.path} changed size while bundling ({copy.source.size} -> {size} bytes; {copy.target})."
        )
    return FileEntry(copy.target, size, digest.hexdigest(), copy.media_type)


def write_text(root: Path, name: str, text: str, media_type: str) -> FileEntry:
    data = text.encode("utf-8")
    (root / name).write_bytes(data)
    return FileEntry(name, len(data), hashlib.sha256(data).hexdigest(), media_type)


def build_bundle(plan: BundlePlan, staging: Path, jobs: int, progress: Progress | None = None) -> list[FileEntry]:
    """Fill ``staging`` (an empty folder); returns every file except manifest.json and SHA256SUMS."""
    copies = plan.files()
    for folder in sorted({str(Path(c.target).parent) for c in copies}):
        (staging / folder).mkdir(parents=True, exist_ok=True)

    def one(copy: FileCopy) -> FileEntry:
        return copy_and_hash(copy, staging / copy.target, progress)

    if jobs <= 1 or len(copies) < 2:
        media = [one(copy) for copy in copies]
    else:
        pool = ThreadPoolExecutor(max_workers=jobs)
        try:
            media = list(pool.map(one, copies))
        finally:
            # on Ctrl-C or a failed copy, drop the queued copies instead of finishing them
            pool.shutdown(wait=True, cancel_futures=True)

    from bundler.player import render_player

    # the player embeds the manifest, so it cannot list its own hash: it carries the media files
    player_view: dict[str, Any] = manifest_document(plan, media)
    files = [*media, write_text(staging, PLAYER_NAME, render_player(player_view), "text/html")]
    document = manifest_document(plan, files)
    manifest_entry = write_text(staging, MANIFEST_NAME, dumps(document), "application/json")
    (staging / SUMS_NAME).write_text(sha256sums([*files, manifest_entry]), encoding="utf-8")
    return files
