"""Build's half of the ``--web`` profile: make one encoded file (DESIGN §3).

The source's bytes come through the ``MediaSource`` port (a local file or a stored object,
read whole and hashed), are encoded by ``media.encode`` (a pure function of those bytes and
the settings; its C code releases the GIL, so ``--jobs`` threads encode in parallel), and
are written into staging while hashed: the bytes hashed are the bytes written. The source
then records what the file was made from, so that the next assemble reuses it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bundler.bundle.manifest import FileEntry
from bundler.errors import MediaChangedError
from bundler.media import encode  # the module, not its functions: tests count calls through it
from bundler.media.stream import Progress, stream
from bundler.pipeline.plan.types import FileCopy

if TYPE_CHECKING:
    from bundler.storage.ports import MediaSource


class EncodeFailed(MediaChangedError):
    """A source passed its structure check but its body cannot be decoded: a story problem
    (``wrong-media-format``, see ``build.media_changed_problem``)."""


@dataclass
class WebTally:
    """How many encoded files a build made anew and how many it reused (thread-safe counts)."""

    encoded: int = 0
    reused: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, *, encoded: int = 0, reused: int = 0) -> None:
        with self._lock:
            self.encoded += encoded
            self.reused += reused


def make_encoded(
    copy: FileCopy, source: MediaSource, destination: Path, progress: Progress | None
) -> tuple[FileEntry, str]:
    """Encode ``copy``'s source into ``destination`` (a new file) and record what it was made from.

    Returns the new file's entry and the SHA-256 of the source bytes it was encoded from."""

    assert copy.encoding is not None
    read = source.read(copy)
    encoder = encode.encode_key_frame if copy.encoding.format == "webp" else encode.encode_narration
    try:
        data = encoder(read.data, copy.encoding.settings)
    except encode.MediaEncodeError as exc:
        raise EncodeFailed(f"{copy.source.location} cannot be encoded: {exc} ({copy.target}).", copy.target) from None
    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        done = stream((data,), into=(fd, os.fspath(destination)))
        made = FileEntry(copy.target, done.size, done.sha256, copy.media_type)
        source.remember(copy, fd, read, made)
    finally:
        os.close(fd)
    if progress:
        progress(copy.source.size)  # progress counts source bytes, as the total does
    return made, read.sha256
