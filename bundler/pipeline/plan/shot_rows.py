"""Checks of the shot rows themselves, before any media is looked at (docs/design.md §3)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping

from bundler.problems import Problem, error
from bundler.records import ShotRecord


def duplicate_shot_indexes(shots_by_ref: Mapping[str, tuple[ShotRecord, ...]]) -> Iterator[Problem]:
    """Two shots of one scenelet at one index would write one key frame over the other (docs/design.md §3)."""
    for ref, shots in shots_by_ref.items():
        for before, after in itertools.pairwise(shots):  # sorted by shot_index: equal ones are neighbours
            if before.shot_index == after.shot_index:
                yield error(
                    "duplicate-shot-index",
                    f"Two shots of scenelet {ref} have shot_index {after.shot_index}: the row stored as "
                    f"{before.scenelet_label!r} and the row stored as {after.scenelet_label!r}.",
                    scenelet_ref=ref,
                    shot_index=after.shot_index,
                )
