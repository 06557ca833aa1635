"""Media on disk: the assets root, stored-path rules and content sniffing (DESIGN §3).

``normalize_stored_path`` is pure; the rest touches the file system.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bundler.errors import EnvError

MediaKind = Literal["image", "audio", "music"]
SKIPPED_PLACEHOLDER = "N/A"
DEFAULT_ASSETS_ROOT = "generated"


def resolve_assets_root(value: str | None, *, create: bool = False) -> Path:
    """``--assets-root``, else ``BUNDLER_ASSETS_ROOT``, else ``./generated``; must be a folder."""
    raw = value or os.environ.get("BUNDLER_ASSETS_ROOT") or DEFAULT_ASSETS_ROOT
    root = Path(raw).expanduser()
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


def is_skipped(stored: str | None) -> bool:
    """True when no media is stored: NULL, blank or the ``N/A`` placeholder (trimmed, any case)."""
    if stored is None:
        return True
    text = stored.strip()
    return not text or text.upper() == SKIPPED_PLACEHOLDER


class UnsafePath(ValueError):
    """A stored path that could leave the assets root."""


def normalize_stored_path(stored: str) -> str:
    """Relative POSIX path under the assets root for a usable stored path.

    Strips a leading ``./``, then one leading ``/generated/`` or ``generated/``
    (and otherwise a leading ``/``). Raises ``UnsafePath`` for what remains
    absolute, contains ``..``, backslashes, NUL bytes or is empty. Empty and
    ``.`` segments are dropped (``a//./b`` is ``a/b``), as POSIX resolves them.
    """
    text = stored.strip()
    if "\x00" in text or "\\" in text:
        raise UnsafePath("contains a backslash or NUL byte")
    if text.startswith("./"):
        text = text[2:]
    for prefix in ("/generated/", "generated/"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    else:
        if text.startswith("/") and not text.startswith("//"):
            text = text[1:]
    if text.startswith("/"):
        raise UnsafePath("is an absolute path")
    parts = [part for part in text.split("/") if part and part != "."]
    if ".." in parts:
        raise UnsafePath("contains a '..' segment")
    if not parts:
        raise UnsafePath("names no file")
    return "/".join(parts)


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A media file that passed every check: inside the root, right format."""

    path: Path
    size: int
    mtime_ns: int


class MediaProblem(Exception):
    """A media file that cannot be used; ``code`` is the problem code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


SNIFF_BYTES = 16
MIN_SIZES = {"image": 33, "audio": 44, "music": 16}  # smallest well-formed headers


def sniff(head: bytes, kind: MediaKind) -> bool:
    """Does ``head`` (the first 16 bytes) start a file of ``kind``?"""
    if kind == "image":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if kind == "audio":
        return head[:4] == b"RIFF" and head[8:12] == b"WAVE"
    return head[4:8] == b"ftyp"


FORMAT_NAMES = {"image": "a PNG image", "audio": "a RIFF/WAVE file", "music": "an MP4/M4A file"}


def check_source(root: Path, relative: str, kind: MediaKind) -> SourceFile:
    """Resolve ``relative`` under ``root`` (symlinks included) and check its content.

    Raises ``MediaProblem`` with code ``unsafe-asset-path``, ``missing-media`` or
    ``wrong-media-format``.
    """
    candidate = root / relative
    try:
        resolved = candidate.resolve(strict=True)
    except FileNotFoundError:
        raise MediaProblem("missing-media", "is missing (no such file under the assets root)") from None
    except (OSError, RuntimeError) as exc:  # symlink loops and the like
        raise MediaProblem("missing-media", f"cannot be resolved: {exc}") from None
    if not resolved.is_relative_to(root):
        raise MediaProblem("unsafe-asset-path", "resolves outside the assets root (symlink)")
    try:
        with open(resolved, "rb") as handle:
            stat = os.fstat(handle.fileno())
            if not _is_regular(stat.st_mode):
                raise MediaProblem("missing-media", "is not a regular file")
            head = handle.read(SNIFF_BYTES)
    except IsADirectoryError:
        raise MediaProblem("missing-media", "is a folder, not a file") from None
    except PermissionError:
        raise MediaProblem("missing-media", "cannot be read (permission denied)") from None
    if stat.st_size < MIN_SIZES[kind] or not sniff(head, kind):
        what = "empty" if stat.st_size == 0 else f"not {FORMAT_NAMES[kind]}"
        raise MediaProblem("wrong-media-format", f"is {what}")
    return SourceFile(resolved, stat.st_size, stat.st_mtime_ns)


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)
