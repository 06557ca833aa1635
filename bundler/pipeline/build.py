"""Stage 3: copy and hash the planned media in parallel into a staging folder,
then write the player, ``manifest.json`` and ``SHA256SUMS``.

Unchanged media of the bundle being replaced is reused instead of copied, when
the source says it provably is (``MediaSource.reuse``). When nothing changed at
all (every file current, the rendered texts byte-identical and the bundle holding
nothing else) the previous bundle already is the new one: ``Built.unchanged_since``
says so and publishing keeps it as it is (no folders, links or deletions). The
texts need not even be rendered for that when the bundle's own record proves them
current (``texts_record``).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bundler.bundle.manifest import (
    MANIFEST_NAME,
    PLAYER_NAME,
    SUMS_NAME,
    FileEntry,
    dump_bytes,
    manifest_document,
    sha256sums,
)
from bundler.errors import MediaChangedError
from bundler.media.stream import Progress
from bundler.pipeline import texts_record
from bundler.pipeline.encoding import EncodeFailed, WebTally, make_encoded
from bundler.pipeline.plan.types import BundlePlan, FileCopy, PlannedScenelet
from bundler.player import render_player
from bundler.problems import Problem, error
from bundler.support.workers import run_adaptive, run_tuned

if TYPE_CHECKING:
    from bundler.storage.ports import MediaSource, PreviousBundle, Provenance


@dataclass(frozen=True, slots=True)
class Built:
    """What ``build_bundle`` made: every file but manifest.json and SHA256SUMS, and whether the
    previous bundle already was this one (then staging is empty; the time it was found current).

    ``held``: files left out of staging because the destination holds their bytes
    (``PreviousBundle.held``); ``sources``: where each media file came from (its source record)."""

    files: list[FileEntry]
    unchanged_since: int | None = None
    held: frozenset[str] = frozenset()
    sources: dict[str, Provenance] = field(default_factory=dict)
    web: WebTally | None = None  # --web: files encoded anew and reused


def make_folders(staging: Path, copies: Sequence[FileCopy]) -> None:
    for folder in sorted({c.target.rpartition("/")[0] for c in copies} - {""}):
        try:
            os.mkdir(staging / folder)
        except FileNotFoundError:
            (staging / folder).mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            pass


def exact_tree(bundle: Path, files: set[str]) -> bool:
    """Does ``bundle`` hold exactly ``files`` (and their folders): no other file, folder or symlink?"""
    folders = {name.rpartition("/")[0] for name in files} - {""}
    for folder in list(folders):
        while "/" in folder:
            folder = folder.rpartition("/")[0]
            folders.add(folder)
    seen_files = seen_folders = 0
    pending = [""]
    while pending:
        relative = pending.pop()
        try:
            entries = list(os.scandir(f"{bundle}/{relative}" if relative else bundle))
        except OSError:
            return False
        for entry in entries:
            name = f"{relative}/{entry.name}" if relative else entry.name
            if entry.is_dir(follow_symlinks=False):
                if name not in folders:
                    return False
                seen_folders += 1
                pending.append(name)
            elif entry.is_file(follow_symlinks=False) and name in files:
                seen_files += 1
            else:
                return False
    return seen_files == len(files) and seen_folders == len(folders)


def _same_content(path: Path, data: bytes) -> bool:
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size != len(data):
                return False
            return handle.read() == data
    except OSError:
        return False


class _Texts:
    """``index.html``, ``manifest.json`` and ``SHA256SUMS``: written to staging as they are rendered,
    or, when checking whether the previous bundle is already current, compared with its files and
    kept (as bytes, or as "same as before") until it is known whether a new bundle is needed."""

    def __init__(self, staging: Path, previous: Path | None) -> None:
        self.staging = staging
        self.previous = previous
        self.pending: dict[str, bytes | None] = {}  # name -> bytes to write, or None: link the old file
        self.entries: list[FileEntry] = []

    @property
    def unchanged(self) -> bool:
        return all(data is None for data in self.pending.values())

    def put(self, name: str, text: str | bytes, media_type: str) -> FileEntry:
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        del text  # the caller's temporary: at most one copy of a large document alive
        entry = FileEntry(name, len(data), hashlib.sha256(data).hexdigest(), media_type)
        self.entries.append(entry)
        if self.previous is None:
            (self.staging / name).write_bytes(data)
        else:
            self.pending[name] = None if _same_content(self.previous / name, data) else data
        return entry

    def flush(self) -> None:
        """Write what was kept into staging (identical files are linked from the previous bundle)."""
        previous = self.previous
        assert previous is not None
        for name, data in self.pending.items():
            if data is None and _link_or_false(previous / name, self.staging / name):
                continue
            (self.staging / name).write_bytes(data if data is not None else (previous / name).read_bytes())
        self.pending.clear()


def _link_or_false(source: Path, destination: Path) -> bool:
    try:
        os.link(source, destination, follow_symlinks=False)
    except OSError:
        return False
    return True


def _render(plan: BundlePlan, media: list[FileEntry], texts: _Texts) -> list[FileEntry]:
    # The player embeds the manifest without `files` (its own hash cannot be in it, and big stories
    # load faster); manifest.json lists every file.
    # Each document is built, handed over and dropped in turn: at 100,000 shots they are tens of MB.
    player = texts.put(PLAYER_NAME, render_player(manifest_document(plan, None)), "text/html")
    files = [*media, player]
    manifest_entry = texts.put(MANIFEST_NAME, dump_bytes(manifest_document(plan, files)), "application/json")
    texts.put(SUMS_NAME, sha256sums([*files, manifest_entry]), "text/plain")
    return files


def build_bundle(
    plan: BundlePlan,
    staging: Path,
    jobs: int,
    progress: Progress | None = None,
    *,
    source: MediaSource,
    previous: PreviousBundle | None = None,
    record_sources: bool = False,
) -> Built:
    """Fill ``staging`` (an empty folder) with media copied (or encoded) from ``source``.

    Files of the bundle being replaced (``previous``: a folder on the same file system, and its seal)
    are hard-linked instead of copied when their source record proves them current.
    When every file of it is current and it holds nothing else, and the new
    ``index.html``, ``manifest.json`` and ``SHA256SUMS`` are byte for byte its
    own, the previous bundle already *is* the new one: staging is left empty
    and ``Built.unchanged_since`` tells ``publish`` to keep the bundle as it is
    (no folders made, no links, no old bundle to delete).
    """
    copies = plan.files()
    checked_ns = time.time_ns()  # before any file of the previous bundle is looked at
    tally = WebTally() if plan.web is not None else None
    texts = _Texts(staging, None)
    rendered: list[FileEntry] | None = None
    if previous is not None and previous.folder is not None:
        texts, rendered, kept = _previous_if_current(plan, staging, previous.folder, previous.seal, source, jobs)
        if kept is not None:
            if progress:
                progress(sum(c.source.size for c in copies))
            if tally is not None:
                tally.add(reused=sum(1 for c in copies if c.encoding is not None))
            # every file was proven current after checked_ns: the time to seal the bundle with again
            return Built(kept, unchanged_since=checked_ns, web=tally)

    make_folders(staging, copies)
    maker = _FileMaker(source, staging, previous, progress, tally)
    media = run_tuned(copies, maker.make, source.copy_jobs(jobs), lambda copy: copy.source.size)
    # only a destination that keeps source records (a bucket) needs them: one object per file otherwise
    sources = _provenance(copies, media, source, maker.origins) if record_sources else {}
    if rendered is not None and rendered[: len(media)] == media:
        texts.flush()  # rendered from these very entries already
    else:
        texts = _Texts(staging, None)
        rendered = _render(plan, media, texts)
    texts_record.store(staging, texts_record.texts_key(plan, media), texts.entries)
    return Built(rendered, held=frozenset(maker.held), sources=sources, web=tally)


def _provenance(
    copies: Sequence[FileCopy], media: Sequence[FileEntry], source: MediaSource, origins: dict[str, str]
) -> dict[str, Provenance]:
    """The source record of each media file. It keeps a source's own size and SHA-256, never an
    encoded file's: an encoded file is recorded (with its recipe, SHA-256 and size beside) only
    when the SHA-256 of the source it was made from is known (``origins``)."""
    sources: dict[str, Provenance] = {}
    for copy, entry in zip(copies, media, strict=True):
        if copy.encoding is None:
            sources[copy.target] = source.provenance(copy, entry)
        elif copy.target in origins:
            sources[copy.target] = source.encoded_provenance(copy, entry, origins[copy.target])
    return sources


def _previous_if_current(
    plan: BundlePlan, staging: Path, folder: Path, seal: int | None, source: MediaSource, jobs: int
) -> tuple[_Texts, list[FileEntry] | None, list[FileEntry] | None]:
    """Is the bundle in ``folder`` already this one? Its files (media and player) when it is; else
    the texts rendered while finding out (kept to be written once the media are in staging)."""
    copies = plan.files()
    texts = _Texts(staging, None)
    current = run_adaptive(copies, lambda c: source.current(c, f"{os.fspath(folder)}/{c.target}", seal), jobs)
    if not (all(current) and exact_tree(folder, {c.target for c in copies} | set(texts_record.TEXTS))):
        return texts, None, None
    media = [entry for entry in current if entry is not None]
    key = texts_record.texts_key(plan, media)
    kept = texts_record.cached(folder, key)  # the texts, proven current without rendering them
    rendered = None
    if kept is None:
        texts = _Texts(staging, folder)
        rendered = _render(plan, media, texts)
        if texts.unchanged:
            kept = texts.entries
            texts_record.store(folder, key, kept)
    return texts, rendered, None if kept is None else [*media, kept[0]]  # kept[0]: the player


class _FileMaker:
    """How each file of the new bundle is made: left where the destination holds its bytes, linked
    from the previous bundle, encoded (``--web``) or copied."""

    def __init__(
        self,
        source: MediaSource,
        staging: Path,
        previous: PreviousBundle | None,
        progress: Progress | None,
        tally: WebTally | None,
    ) -> None:
        self.source, self.staging, self.progress, self.tally = source, staging, progress, tally
        self.stored = previous.held if previous is not None else frozenset()
        self.folder = os.fspath(previous.folder) if previous is not None and previous.folder else None
        self.seal = previous.seal if previous is not None else None
        self.encodings = previous.encoded if previous is not None else {}
        self.held: set[str] = set()  # files left out of staging: the destination copies them in place
        self.origins: dict[str, str] = {}  # encoded file -> SHA-256 of the source bytes it is made from

    def make(self, copy: FileCopy) -> FileEntry:
        source, progress, tally, encoded = self.source, self.progress, self.tally, copy.encoding is not None
        if encoded and self.encodings:
            held = self._held_encoding(copy)
            if held is not None:
                return held
        if self.stored and not encoded:  # an encoded file is never its source's bytes
            trusted = source.trusted(copy)
            if trusted is not None and trusted.sha256 in self.stored:
                self.held.add(copy.target)
                if progress:
                    progress(trusted.bytes)
                return trusted
        if self.folder is not None:
            reused = source.reuse(copy, self.folder, f"{os.fspath(self.staging)}/{copy.target}", self.seal)
            if reused is not None:
                if progress:
                    progress(copy.source.size)
                if tally is not None and encoded:
                    tally.add(reused=1)
                return reused
        if tally is not None and encoded:
            tally.add(encoded=1)
            made, self.origins[copy.target] = make_encoded(copy, source, self.staging / copy.target, progress)
            return made
        return source.copy(copy, self.staging / copy.target, progress)

    def _held_encoding(self, copy: FileCopy) -> FileEntry | None:
        """The entry of an encoded file the destination holds, made by this recipe from bytes with the
        SHA-256 of ``copy``'s source: left out of staging, nothing read beyond that SHA-256 or encoded."""
        assert copy.encoding is not None
        source_sha = self.source.source_sha256(copy)
        made = self.encodings.get((source_sha, copy.encoding.recipe())) if source_sha else None
        if source_sha is None or made is None or made[0] not in self.stored:
            return None
        self.held.add(copy.target)
        self.origins[copy.target] = source_sha
        if self.progress:
            self.progress(copy.source.size)
        if self.tally is not None:
            self.tally.add(reused=1)
        return FileEntry(copy.target, made[1], made[0], copy.media_type)


def media_changed_problem(plan: BundlePlan, exc: MediaChangedError) -> Problem:
    """The problem for ``exc``, naming the scenelet (UUID and label), shot and file it concerns: a
    source that changed since its check, or (``EncodeFailed``) one that would not decode."""
    where: dict[str, Any] = {}
    for copy, scenelet, shot_index in _placed_files(plan):
        if copy.target == exc.target:
            where = {
                "path": copy.source.location,
                "scenelet_ref": scenelet.id if scenelet else None,
                "scenelet_label": scenelet.label if scenelet else None,
                "shot_index": shot_index,
            }
            break
    if isinstance(exc, EncodeFailed):
        return error("wrong-media-format", str(exc), **where)
    return error("media-changed", str(exc), **where)


def _placed_files(plan: BundlePlan) -> Iterator[tuple[FileCopy, PlannedScenelet | None, int | None]]:
    """Every file of the plan with the scenelet and shot it belongs to (none for music)."""
    for scenelet in plan.scenelets:
        for shot in scenelet.shots:
            for copy in (shot.image, shot.audio):
                if copy:
                    yield copy, scenelet, shot.shot_index
        if scenelet.branch_audio:
            yield scenelet.branch_audio, scenelet, None
    for cue in plan.cues:
        yield cue.file, None, None
