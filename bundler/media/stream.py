"""The one read → hash → write loop: copies into a bundle, uploads, re-hashes and ``verify``
all stream bytes through ``stream`` (never a whole file in memory)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

CHUNK = 1 << 20
HEAD = 16  # enough for ``structure.sniff``
Progress = Callable[[int], None]  # called with the bytes just moved

_buffers = threading.local()  # one read buffer per thread, reused across files


@dataclass(frozen=True, slots=True)
class Streamed:
    size: int
    sha256: str
    head: bytes  # the first ``HEAD`` bytes
    content: bytes | None  # every byte, only when asked to keep them


def _buffer(size: int) -> bytearray:
    buffer: bytearray | None = getattr(_buffers, "buffer", None)
    if buffer is None or len(buffer) < size:
        buffer = _buffers.buffer = bytearray(size)
    return buffer


def chunks(read_into: Callable[[memoryview], int | None], size: int = CHUNK) -> Iterator[memoryview]:
    """Slices of this thread's buffer filled by ``read_into`` (``os.readv``-like or ``readinto``);
    each slice is consumed before the next read overwrites it."""
    view = memoryview(_buffer(size))[:size]
    while count := read_into(view):
        yield view[:count]


def fd_chunks(fd: int) -> Iterator[memoryview]:
    return chunks(lambda view: os.readv(fd, [view]))


def write_all(fd: int, data: memoryview | bytes, path: str) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:  # os.write names no file: a full disk must say where
        raise OSError(exc.errno, exc.strerror, path) from None


def stream(
    source: Iterable[bytes | memoryview],
    *,
    into: tuple[int, str] | None = None,
    progress: Progress | None = None,
    keep: bool = False,
    check_head: Callable[[bytes], None] | None = None,
) -> Streamed:
    """Hash ``source`` chunk by chunk; write each chunk to ``into`` (fd, path for messages) as it
    is hashed, so the bytes hashed are exactly the bytes written. ``check_head`` sees the first
    bytes before anything is written and raises to refuse them."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    kept = bytearray() if keep else None
    for chunk in source:
        if len(head) < HEAD:
            head += bytes(chunk[: HEAD - len(head)])
            if check_head is not None and size == 0:
                check_head(head)
        digest.update(chunk)
        if into is not None:
            write_all(into[0], chunk, into[1])
        if kept is not None:
            kept += chunk
        size += len(chunk)
        if progress:
            progress(len(chunk))
    return Streamed(size, digest.hexdigest(), head, None if kept is None else bytes(kept))
