"""``--shard K/N``: which stories one of N independent jobs takes (docs/design.md §4).

A story belongs to shard ``int(sha256(id)) mod N + 1``, where ``id`` is the
canonical (lowercase, hyphenated) UUID text: stable across machines, runs and
database order, so N jobs with K = 1..N cover every story exactly once with no
coordinator. ``auto/N`` takes K from ``JOB_COMPLETION_INDEX`` (0-based, set by
a Kubernetes Indexed Job), so K = JOB_COMPLETION_INDEX + 1.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

from bundler.errors import UsageError

INDEX_VARIABLE = "JOB_COMPLETION_INDEX"


@dataclass(frozen=True, slots=True)
class Shard:
    index: int  # K, 1-based
    count: int  # N

    @classmethod
    def parse(cls, value: str, environ: Mapping[str, str] | None = None) -> Shard:
        environ = os.environ if environ is None else environ
        k_text, slash, n_text = value.strip().partition("/")
        if k_text == "auto":
            index_text = environ.get(INDEX_VARIABLE, "").strip()
            if not (index_text.isascii() and index_text.isdigit()):
                raise UsageError(f"--shard auto/N needs {INDEX_VARIABLE} (0-based), which is {index_text or 'unset'}.")
            k_text = str(int(index_text) + 1)
        if not (slash and _number(k_text) and _number(n_text)):
            raise UsageError(f"--shard {value!r} is not K/N (e.g. 2/8) or auto/N.")
        shard = cls(int(k_text), int(n_text))
        if not 1 <= shard.index <= shard.count:
            raise UsageError(f"--shard {value!r}: K must be between 1 and N.")
        return shard

    def takes(self, story_id: str) -> bool:
        return shard_of(story_id, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(story_id: str, count: int) -> int:
    """The 1-based shard of ``story_id`` (canonical UUID text) among ``count``."""
    return int(hashlib.sha256(story_id.encode("ascii")).hexdigest(), 16) % count + 1


def _number(text: str) -> bool:
    # str.isdigit() accepts superscripts and other digits int() refuses: ASCII only
    return text.isascii() and text.isdigit()
