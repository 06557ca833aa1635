"""Documents read from outside: one way in, with a size cap, as a regular file, parsed depth-safely.

DESIGN §4: nothing a user can type or store is exit 70. A YAML story, a bundle's
``manifest.json``, an S3 ``current.json`` pointer or a source record may be
huge (``/dev/zero``, a 3 GB sparse file), not a file at all (a FIFO would block
``open`` forever) or nested thousands deep (``RecursionError``). Every reader
goes through here and gets a ``DocumentError`` with one clear reason instead;
callers turn it into their own error type (exit 1 or 3).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

MAX_DOCUMENT_BYTES = 256 * 1024 * 1024  # a manifest of ~100,000 scenelets is far below this
MAX_POINTER_BYTES = 64 * 1024  # current.json is a few hundred bytes
_READ_CHUNK = 1 << 20


class DocumentError(Exception):
    """The document cannot be read or parsed; ``str()`` is the reason, without the path."""


def read_capped(path: str | os.PathLike[str], limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them.

    Opened non-blocking, so a FIFO or device is refused without waiting for a
    writer; the cap is enforced on what is read, not on what ``stat`` says,
    so a file that grows (or lies about its size) still cannot exhaust memory.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise DocumentError("no such file") from None
    except OSError as exc:
        raise DocumentError(f"cannot be opened ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise DocumentError("is not a regular file")
        if info.st_size > limit:
            raise DocumentError(f"is too large ({_size(info.st_size)}; at most {_size(limit)})")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(_READ_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise DocumentError(f"is too large (more than {_size(limit)})")
        return b"".join(chunks)
    except OSError as exc:
        raise DocumentError(f"cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)


def read_head(path: str | os.PathLike[str], size: int) -> bytes:
    """The first ``size`` bytes of the regular file at ``path`` (opened without blocking), however
    large the file is: for telling what a document is without reading all of it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise DocumentError("no such file" if isinstance(exc, FileNotFoundError) else "cannot be opened") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DocumentError("is not a regular file")
        return os.pread(fd, size, 0)
    except OSError as exc:
        raise DocumentError(f"cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)


def check_size(data: bytes, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """``data`` (already fetched, e.g. from a bucket) when it fits the cap."""
    if len(data) > limit:
        raise DocumentError(f"is too large ({_size(len(data))}; at most {_size(limit)})")
    return data


def parse_json(data: bytes | str) -> Any:
    """Strict UTF-8 JSON; too deep a nesting is a ``DocumentError``, never a ``RecursionError``."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text)
    except UnicodeDecodeError as exc:
        raise DocumentError(f"is not UTF-8 (byte {exc.start})") from None
    except RecursionError:
        raise DocumentError("is nested too deeply to read") from None
    except ValueError as exc:
        raise DocumentError(f"is not valid JSON ({exc})") from None


def load_json_file(path: str | os.PathLike[str], limit: int = MAX_DOCUMENT_BYTES) -> Any:
    return parse_json(read_capped(path, limit))


def read_text_file(path: Path, limit: int = MAX_DOCUMENT_BYTES) -> str:
    """A capped regular text file as UTF-8 (for YAML, whose parser guards its own depth)."""
    data = read_capped(path, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"is not UTF-8 text (byte {exc.start})") from None


def _size(count: int) -> str:
    return f"{count / (1024 * 1024):.0f} MiB" if count >= 1024 * 1024 else f"{count:,} bytes"
