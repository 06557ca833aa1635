"""Media files in a local assets root: resolved inside the root, regular, of the right format.

``check_source`` is the rule book (docs/design.md §3); ``probe.Prober`` is its fast path.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from bundler.errors import EnvError
from bundler.media.structure import MediaKind, structure_problem, windowed
from bundler.storage.ports import assets_root_setting


def resolve_assets_root(value: str | None, *, create: bool = False) -> Path:
    """``--assets-root``, else ``BUNDLER_ASSETS_ROOT``, else ``./generated``; must be a folder."""
    root = Path(assets_root_setting(value)).expanduser()
    if create:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EnvError(f"Cannot create the assets root {root}: {exc.strerror}.") from None
    if not root.is_dir():
        raise EnvError(
            f"Assets root {root} does not exist or is not a folder (set --assets-root or BUNDLER_ASSETS_ROOT)."
        )
    return root.resolve()


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A media file that passed every check: inside the root, right format.

    ``path`` is its resolved absolute path, a plain string: a story of 100,000 shots
    holds tens of thousands of these through planning and build, and a ``Path``
    each costs measurably more memory at peak (bench/results.md).
    """

    path: str
    size: int
    mtime_ns: int

    @property
    def location(self) -> str:
        return self.path


class MediaProblem(Exception):
    """A media file that cannot be used; ``code`` is the problem code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


HEAD_BYTES = 4096  # read at once from the start of a media file: every header of a typical file

# never block: a FIFO opened for reading without O_NONBLOCK waits for a writer forever
OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0)


def not_regular(mode: int) -> str | None:
    """Why a file of this mode cannot be media ("is a FIFO"...), or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file"
    return "is not a regular file"


def check_open_file(fd: int, kind: MediaKind) -> os.stat_result:
    """Judge an open file by ``fstat`` and its headers; raise ``MediaProblem`` when it cannot be used."""
    info = os.fstat(fd)
    why = not_regular(info.st_mode)
    if why:
        raise MediaProblem("not-a-regular-file", why)
    size = info.st_size
    read_at = windowed(lambda offset, length: os.pread(fd, length, offset), size, HEAD_BYTES)
    problem = structure_problem(kind, size, read_at)
    if problem:
        raise MediaProblem("wrong-media-format", problem)
    return info


def check_source(root: Path, relative: str, kind: MediaKind) -> SourceFile:
    """Resolve ``relative`` under ``root`` (symlinks included) and check its content.

    Raises ``MediaProblem`` with code ``unsafe-asset-path``, ``missing-media``,
    ``not-a-regular-file`` or ``wrong-media-format``. Only regular files are
    ever opened, and never in a way that blocks.
    """
    candidate = root / relative
    try:
        resolved = candidate.resolve(strict=True)
    except FileNotFoundError:
        raise MediaProblem("missing-media", "is missing (no such file under the assets root)") from None
    except (OSError, RuntimeError) as exc:  # symlink loops and the like
        raise MediaProblem("missing-media", f"cannot be resolved: {exc.__class__.__name__}") from None
    if not resolved.is_relative_to(root):
        raise MediaProblem("unsafe-asset-path", "resolves outside the assets root (symlink)")
    try:
        why = not_regular(os.stat(resolved).st_mode)
        if why:  # decided before any open: opening a FIFO or a device can block or have side effects
            raise MediaProblem("not-a-regular-file", why)
        fd = os.open(resolved, OPEN_FLAGS)
    except FileNotFoundError:
        raise MediaProblem("missing-media", "is missing (no such file under the assets root)") from None
    except PermissionError:
        raise MediaProblem("missing-media", "cannot be read (permission denied)") from None
    except OSError as exc:
        raise MediaProblem("missing-media", f"cannot be opened ({exc.strerror})") from None
    try:
        info = check_open_file(fd, kind)  # fstat again: it may have been swapped since the stat
    except OSError as exc:
        raise MediaProblem("missing-media", f"cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
    return SourceFile(os.fspath(resolved), info.st_size, info.st_mtime_ns)
