"""Check the media the planner asked about, in parallel (file system only).

``files.check_source`` is the rule book: resolve the stored path under the
assets root (symlinks included), refuse what leaves it, and sniff the content.
Doing that literally costs a ``realpath`` per file, which is one ``lstat`` per
path component: for tens of thousands of files that dominates ``check``. The
fast path here gives the same answer for the common case with far fewer system
calls, and hands every other case to ``check_source`` itself:

* folders are resolved once each and remembered: a folder whose path below the
  root contains no symlink resolves to the root's real path plus that path;
* the file is opened with ``O_NOFOLLOW``, so a symlinked file fails the fast
  path (and ``check_source`` follows and judges it);
* the open never blocks (``O_NONBLOCK``: a FIFO is seen by ``fstat``, not waited on);
* not found, not a regular file, unreadable, truncated or the wrong format all
  go to ``check_source``, which produces the problem code and message.
"""

from __future__ import annotations

import operator
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from bundler.pipeline.plan.types import MediaRequest, MediaStatus
from bundler.storage.local.files import OPEN_FLAGS, MediaProblem, SourceFile, check_open_file, check_source
from bundler.support.workers import run_adaptive

_OPEN_FLAGS = OPEN_FLAGS | getattr(os, "O_NOFOLLOW", 0)


class Prober:
    """Checks requests under one assets root; safe to share between threads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # folder below the root ("a/b") -> its real path, or None when it needs the slow path;
        # a root that is not its own real path (check_source expects a resolved one) gets no fast path
        top = os.fspath(root) if root.is_absolute() and os.path.realpath(root) == os.fspath(root) else None
        self.folders: dict[str, str | None] = {"": top}

    def folder(self, relative: str) -> str | None:
        known = self.folders.get(relative, False)
        if known is not False:
            return known  # type: ignore[return-value]
        parent, _, name = relative.rpartition("/")
        base = self.folder(parent)
        real: str | None = None
        if base is not None and name not in ("", ".", ".."):
            candidate = f"{base}/{name}"
            try:
                if stat.S_ISDIR(os.lstat(candidate).st_mode):  # a symlink is not S_ISDIR under lstat
                    real = candidate
            except OSError:
                real = None
        self.folders[relative] = real
        return real

    def probe(self, request: MediaRequest) -> MediaStatus:
        source = self.fast(request)
        if source is not None:
            return MediaStatus(source=source)
        try:
            return MediaStatus(source=check_source(self.root, request.relative, request.kind))
        except MediaProblem as problem:
            return MediaStatus(code=problem.code, detail=str(problem))

    def fast(self, request: MediaRequest) -> SourceFile | None:
        """The checked file when every step is the ordinary case; None means "ask check_source"."""
        parent, _, name = request.relative.rpartition("/")
        folder = self.folder(parent)
        if folder is None or name in ("", ".", ".."):
            return None
        path = f"{folder}/{name}"
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError:
            return None
        try:
            info = check_open_file(fd, request.kind)
        except (OSError, MediaProblem):
            return None
        finally:
            os.close(fd)
        return SourceFile(path, info.st_size, info.st_mtime_ns)


_by_path = operator.attrgetter("relative", "kind")


def probe_media(requests: Iterable[MediaRequest], root: Path, jobs: int) -> dict[MediaRequest, MediaStatus]:
    ordered = sorted(requests, key=_by_path)  # a folder's files together: its real path is looked up once
    # a few short system calls per file: threads only where the file system is slow (see run_adaptive)
    return dict(zip(ordered, run_adaptive(ordered, Prober(root).probe, jobs), strict=True))
