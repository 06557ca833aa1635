"""Local scratch space of S3 runs (downloads being checked, bundles being published).

It lives in one private folder under the system temp directory, each run's part
under a run lock (``storage.local.staging.run_scratch``), so a run killed outright
leaves debris that the next run finds and removes.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bundler.errors import EnvError
from bundler.storage.local.staging import run_scratch

RUN_NAME = "run"  # one name for every run: each removes what any dead run left


def private_temp() -> Path:
    """``<tmp>/bundler-s3-<uid>``: this user's, and nobody else's (not a symlink, mode 0700)."""
    folder = Path(tempfile.gettempdir()) / f"bundler-s3-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(folder)
    except OSError as exc:
        raise EnvError(f"Cannot create the scratch folder {folder}: {exc.strerror}.") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise EnvError(f"Scratch folder {folder} is not a private folder of this user; remove it.")
    return folder


@contextmanager
def scratch_folder() -> Iterator[Path]:
    """A new empty folder for one run, removed on the way out (or by a later run if this one is killed)."""
    with run_scratch(private_temp(), RUN_NAME) as path:
        try:
            path.mkdir()
        except OSError as exc:
            raise EnvError(f"Cannot create the scratch folder {path}: {exc.strerror}.") from None
        yield path
