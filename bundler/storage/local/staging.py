"""Local publishing: staging folders beside the target, run locks, and the atomic swap.

An existing bundle is replaced only by a complete new one; a failed or
interrupted run removes its staging folder and leaves the old bundle as it was.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import glob
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bundler.errors import EnvError, OutputExistsError
from bundler.support.documents import DocumentError, read_head, read_text_file

STAGING_MARK = ".partial-"
LOCK_SUFFIX = ".lock"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def prepare_out_dir(out_dir: Path) -> Path:
    """Create ``--out`` if missing; a regular file or unwritable folder is an environment error."""
    if out_dir.exists() and not out_dir.is_dir():
        raise EnvError(f"Output path {out_dir} exists and is not a folder.")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvError(f"Cannot create the output folder {out_dir}: {exc.strerror}.") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise EnvError(f"Output folder {out_dir} is not writable.")
    return out_dir.resolve()


def ensure_target_free(target: Path, overwrite: bool) -> None:
    if target.exists() or target.is_symlink():
        if not overwrite:
            raise OutputExistsError(f"Bundle {target} already exists; pass --overwrite to replace it.")
        ensure_replaceable(target)


def ensure_replaceable(target: Path) -> None:
    """``--overwrite`` replaces only a bundle of this very story (docs/design.md §4); anything else
    stays as it is."""
    if target.is_symlink() or not target.is_dir():
        raise OutputExistsError(f"{target} exists and is not a bundle folder; refusing to replace it.")
    head = _manifest_head(target / "manifest.json")
    if head == ("story-bundle", target.name) or (head is None and _damaged_bundle(target)):
        return
    raise OutputExistsError(
        f"{target} exists and is not a bundle of story {target.name} (no story-bundle manifest.json for it); "
        "refusing to replace it."
    )


# A manifest starts with its format and story in contract order (docs/design.md §3), so its first
# bytes tell whose bundle a folder holds: a 50 MB manifest is never parsed whole just to know that.
_HEAD_BYTES = 64 * 1024
_MANIFEST_HEAD = re.compile(
    r'\{\s*"format"\s*:\s*"([^"\\]*)"\s*,\s*"formatVersion"\s*:\s*\d+\s*,'
    r'\s*"generator"\s*:\s*"(?:[^"\\]|\\.)*"\s*,\s*"metadata"\s*:\s*\{\s*"storyId"\s*:\s*"([^"\\]*)"'
)


def _manifest_head(path: Path) -> tuple[str, str] | None:
    """(format, storyId) from the start of a manifest, or None when it is unreadable or no manifest."""
    try:
        head = read_head(path, _HEAD_BYTES).decode("utf-8", "replace")
    except DocumentError:
        return None
    found = _MANIFEST_HEAD.match(head)
    return (found.group(1), found.group(2)) if found else None


_SUMS_LINE = re.compile(r"[0-9a-f]{64}  \S[^\n]*")


def _damaged_bundle(target: Path) -> bool:
    """A bundle whose manifest.json was damaged (so ``--overwrite`` can repair it): its SHA256SUMS,
    in sha256sum format, lists manifest.json and index.html, which no folder of sources does."""
    try:
        lines = read_text_file(target / "SHA256SUMS").splitlines()
    except DocumentError:
        return False
    names = {line[66:] for line in lines if _SUMS_LINE.fullmatch(line)}
    return len(names) == len(lines) and {"manifest.json", "index.html"} <= names


def refuse_sources(target: Path, assets_root: Path) -> None:
    """An ``--out`` whose target folder is, or holds, the assets root would replace the sources."""
    target = target.resolve()
    if target == assets_root or target in assets_root.parents:
        raise EnvError(f"The bundle folder {target} would hold the assets root {assets_root}; choose another --out.")


def remove_stale_staging(out_dir: Path, name: str) -> None:
    """Remove what earlier runs for ``name`` left behind when they were killed.

    Every run holds an exclusive ``flock`` on its own lock file for as long as
    its staging folder and temp files exist; whatever belongs to a lock that
    can be taken (or to no lock at all) is debris. A process id is no proof
    either way: two containers sharing ``--out`` see different PID namespaces.
    """
    runs: dict[str, list[Path]] = {}
    for candidate in out_dir.glob(f".{glob.escape(name)}{STAGING_MARK}*"):
        run = _RUN_NAME.match(candidate.name[len(name) + 1 :])
        if run:
            runs.setdefault(candidate.name[: len(name) + 1 + run.end()], []).append(candidate)
    for run_name, entries in runs.items():
        lock = out_dir / f"{run_name}{LOCK_SUFFIX}"
        with _lock_if_free(lock) as free:
            if free:
                for entry in entries:
                    if entry != lock:
                        _remove(entry)
                _remove(lock)  # last: until then a cleaner running beside us sees it taken
    # archive temp files of versions before run locks: nothing writes these names any more
    for fmt in ("zip", "tar.gz"):
        for candidate in out_dir.glob(f".{glob.escape(name)}.{fmt}.*.tmp"):
            _remove(candidate)


_RUN_NAME = re.compile(re.escape(STAGING_MARK) + r"\d+-[0-9a-f]{8}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


@contextmanager
def _lock_if_free(lock: Path) -> Iterator[bool]:
    """Hold ``lock`` exclusively while the caller cleans up; False when a live run holds it."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        yield True  # no lock (an older version's run, or one removing its last files)
        return
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


@contextmanager
def run_scratch(out_dir: Path, name: str) -> Iterator[Path]:
    """A fresh private name ``<out>/.<name>.partial-<pid>-<hex>`` for one run's temporary files.

    The run's lock is taken before any of them exists and released after all are
    gone, so another run (``remove_stale_staging``) never removes live files.
    Whatever starts with the yielded name is removed on the way out.
    """
    remove_stale_staging(out_dir, name)
    scratch = out_dir / f".{name}{STAGING_MARK}{os.getpid()}-{secrets.token_hex(4)}"
    lock = scratch.with_name(scratch.name + LOCK_SUFFIX)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise EnvError(f"Cannot create {lock}: {exc.strerror}.") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield scratch
    finally:
        for entry in out_dir.glob(f"{glob.escape(scratch.name)}*"):
            if entry != lock:
                _remove(entry)
        _remove(lock)
        os.close(fd)


@contextmanager
def staging_dir(out_dir: Path, name: str) -> Iterator[Path]:
    """A fresh hidden folder beside the target, removed on any exit unless published."""
    with run_scratch(out_dir, name) as path:
        try:
            path.mkdir()
        except OSError as exc:
            raise EnvError(f"Cannot create the staging folder {path}: {exc.strerror}.") from None
        yield path


def scratch_file(scratch: Path, suffix: str) -> Path:
    """A temp file name that belongs to the run owning ``scratch`` (removed with it)."""
    return scratch.with_name(f"{scratch.name}{suffix}")


def publish(
    staging: Path, target: Path, overwrite: bool, archive: tuple[Path, Path] | None = None, *, unchanged: bool = False
) -> None:
    """Move the complete ``staging`` folder to ``target``.

    ``unchanged``: the build found ``target`` already byte for byte the new bundle
    (staging is empty): it is kept as it is.
    ``archive`` is (complete temp file, final path): it is moved into place right
    after the bundle, and if that fails the bundle move is undone, so bundle and
    archive are published together or not at all.
    """
    if target.exists() or target.is_symlink():
        if not overwrite:
            raise OutputExistsError(f"Bundle {target} already exists; pass --overwrite to replace it.")
        ensure_replaceable(target)  # checked again: it may have changed since the run began
        if unchanged:
            _place_archive(archive)
            shutil.rmtree(staging, ignore_errors=True)
            return
        try:
            _swap(staging, target)
        except OSError as exc:
            raise EnvError(f"Cannot replace the bundle {target}: {exc.strerror or exc}.") from None
        try:
            _place_archive(archive)
        except EnvError:
            _swap(staging, target)  # the old bundle back: neither is published
            raise
        shutil.rmtree(staging, ignore_errors=True)  # it now holds the old bundle
        return
    if unchanged:  # the bundle found current was removed meanwhile: there is nothing to publish
        raise EnvError(f"Bundle {target} was removed while it was being assembled; run again.")
    try:
        os.rename(staging, target)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise OutputExistsError(f"Bundle {target} appeared while building; not replacing it.") from None
        raise EnvError(f"Cannot move the bundle into place at {target}: {exc.strerror}.") from None
    try:
        _place_archive(archive)
    except EnvError:
        os.rename(target, staging)
        raise


def _place_archive(archive: tuple[Path, Path] | None) -> None:
    if archive is None:
        return
    temp, final = archive
    try:
        os.replace(temp, final)
    except OSError as exc:
        raise EnvError(f"Cannot move the archive into place at {final}: {exc.strerror or exc}.") from None


def _swap(staging: Path, target: Path) -> None:
    """Exchange two folders atomically (renameat2 RENAME_EXCHANGE), else via a backup name."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        renameat2 = None
    if renameat2 is not None:
        result = renameat2(_AT_FDCWD, os.fsencode(staging), _AT_FDCWD, os.fsencode(target), _RENAME_EXCHANGE)
        if result == 0:
            return
    # fallback: a brief moment without a bundle, but never a mix of old and new
    backup = staging.with_name(staging.name + "-old")
    os.rename(target, backup)
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(backup, target)
        raise
    os.rename(backup, staging)
