"""Stage 4: staging folders beside the target and the atomic swap (DESIGN §4).

An existing bundle is replaced only by a complete new one; a failed or
interrupted run removes its staging folder and leaves the old bundle as it was.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bundler.errors import EnvError, OutputExistsError

STAGING_MARK = ".partial-"
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
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise OutputExistsError(f"Bundle {target} already exists; pass --overwrite to replace it.")


def remove_stale_staging(out_dir: Path, name: str) -> None:
    """Remove staging folders of earlier runs of ``name`` that were killed (their pid is gone)."""
    for candidate in out_dir.glob(f".{name}{STAGING_MARK}*"):
        pid_text = candidate.name.rsplit(STAGING_MARK, 1)[-1].split("-", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            shutil.rmtree(candidate, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def staging_dir(out_dir: Path, name: str) -> Iterator[Path]:
    """A fresh hidden folder beside the target, removed on any exit unless published."""
    remove_stale_staging(out_dir, name)
    path = out_dir / f".{name}{STAGING_MARK}{os.getpid()}-{secrets.token_hex(4)}"
    path.mkdir()
    try:
        yield path
    finally:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)


def publish(staging: Path, target: Path, overwrite: bool) -> None:
    """Move the complete ``staging`` folder to ``target``.

    A staging folder holding only ``UNCHANGED_MARK`` means the build found
    ``target`` already byte for byte the new bundle: it is kept as it is.
    """
    from bundler.build import UNCHANGED_MARK

    unchanged = (staging / UNCHANGED_MARK).is_file()
    if target.exists() or target.is_symlink():
        if not overwrite:
            raise OutputExistsError(f"Bundle {target} already exists; pass --overwrite to replace it.")
        if target.is_symlink() or not target.is_dir():
            raise OutputExistsError(f"{target} exists and is not a bundle folder; refusing to replace it.")
        if unchanged:
            shutil.rmtree(staging, ignore_errors=True)
            return
        _swap(staging, target)
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
