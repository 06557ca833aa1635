"""``db seed``, the media half: the files a story YAML's ``media`` folder provides, checked like
bundle media, installed into the assets root inside the seed's transaction, and undone when
the seed fails (``Installed``)."""

from __future__ import annotations

import filecmp
import os
import shutil
import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from bundler.errors import EnvError, InputError
from bundler.media.paths import UnsafePath, is_skipped, normalize_stored_path
from bundler.pipeline.plan.music import parse_cues
from bundler.storage.local.files import MediaProblem, check_source
from bundler.story_yaml.format import StoryDoc, StoryFileError, stored_paths


@dataclass(frozen=True)
class MediaCopy:
    source: Path  # checked file inside the media folder
    relative: str  # destination, relative to the assets root


def plan_media(doc: StoryDoc, path: Path) -> list[MediaCopy]:
    """The files to copy from the ``media`` folder; every referenced one must be there and well-formed.

    Music files are not referenced by a stored path (the cue name implies it),
    so a missing cue file is allowed: music is placed by hand in the pipeline too.
    """
    if doc.media is None:
        return []
    folder = path.parent / doc.media
    if not folder.is_dir():
        raise StoryFileError(f"{path}: media: folder {folder} does not exist")
    media_root = folder.resolve()
    copies: dict[str, MediaCopy] = {}
    for where, line, stored, kind in stored_paths(doc):
        if is_skipped(stored):
            continue
        try:
            relative = normalize_stored_path(stored)
            copies[relative] = MediaCopy(Path(check_source(media_root, relative, kind).path), relative)
        except UnsafePath as exc:
            raise StoryFileError(f"{path}:{line}: {where}: unsafe path {stored!r}: {exc}") from None
        except MediaProblem as exc:
            raise StoryFileError(f"{path}:{line}: {where}: {_media_problem(exc, folder / relative)}") from None
    cues, _ = parse_cues(doc.audio_design_document)
    for cue in cues:
        try:
            relative = normalize_stored_path(f"{doc.id}/music/{cue.cue_name}.m4a")
            if not (media_root / relative).exists():
                continue
            copies[relative] = MediaCopy(Path(check_source(media_root, relative, "music").path), relative)
        except UnsafePath as exc:
            raise StoryFileError(f"{path}: story.audio_design_document: music cue {cue.cue_name!r}: {exc}") from None
        except MediaProblem as exc:
            problem = _media_problem(exc, folder / relative)
            raise StoryFileError(
                f"{path}: story.audio_design_document: music cue {cue.cue_name!r}: {problem}"
            ) from None
    return [copies[key] for key in sorted(copies)]


def _media_problem(exc: MediaProblem, file: Path) -> str:
    # check_source speaks of "the assets root"; here the root is the media folder
    if exc.code == "missing-media" and "no such file" in str(exc):
        return f"{file} is missing from the media folder"
    if exc.code == "unsafe-asset-path":
        return f"{file} resolves outside the media folder (symlink)"
    return f"{file} {exc}"


@dataclass
class Installed:
    """What ``install_media`` changed in the assets root, so that a failed seed can undo it."""

    added: list[Path] = field(default_factory=list)  # files and folders it created
    replaced: list[tuple[Path, Path]] = field(default_factory=list)  # (target, hard link to the old file)

    def undo(self) -> None:
        for target, backup in reversed(self.replaced):
            with suppress(OSError):
                os.replace(backup, target)
        remove_added(self.added)

    def commit(self) -> None:
        for _, backup in self.replaced:
            with suppress(OSError):
                backup.unlink()


def install_media(copies: Sequence[MediaCopy], root: Path, installed: Installed, *, replace: bool = False) -> None:
    """Copy into the assets root: stage every file first, then rename each into place.

    A different file already at a target is someone's work: refused unless
    ``replace``, and then kept (hard-linked) until the caller commits, so a seed
    that fails later puts it back. ``installed`` records every change.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for copy in copies:
            target = root / copy.relative
            _make_parents(target.parent, root, installed.added)
            # a symlinked folder inside the root must not carry the copy outside it
            if not target.parent.resolve().is_relative_to(root):
                raise EnvError(f"Refusing to copy {copy.relative}: its folder resolves outside the assets root {root}.")
            occupied = target.is_symlink() or target.exists()
            if occupied and target.is_file() and not target.is_symlink() and filecmp.cmp(copy.source, target, False):
                continue
            if occupied and not replace and (target.is_symlink() or not target.is_dir()):
                raise InputError(
                    f"{target} already exists in the assets root and differs from {copy.source}; "
                    "nothing was changed (--replace overwrites it)."
                )
            temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.seeding")
            staged.append((temporary, target))
            shutil.copyfile(copy.source, temporary)
        for temporary, target in staged:
            existed = target.exists() or target.is_symlink()
            if existed and (target.is_symlink() or not target.is_dir()):
                backup = target.with_name(f".{target.name}.{uuid.uuid4().hex}.replaced")
                os.link(target, backup, follow_symlinks=False)
                installed.replaced.append((target, backup))
            os.replace(temporary, target)
            if not existed:
                installed.added.append(target)
    except OSError as exc:
        raise EnvError(f"Cannot copy media into the assets root {root}: {exc}") from None
    finally:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)


def remove_added(added: Sequence[Path]) -> None:
    """Undo ``install_media``: files first, then the folders it created (newest first)."""
    for path in reversed(added):
        try:
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)
        except OSError:
            pass  # best effort: a folder someone else filled meanwhile stays


def _make_parents(folder: Path, root: Path, added: list[Path]) -> None:
    """``mkdir -p`` that records what it created (the assets root too, if missing)."""
    missing: list[Path] = []
    current = folder
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for created in reversed(missing):
        created.mkdir()
        added.append(created)
