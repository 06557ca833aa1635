"""Music file names (docs/design.md §3): safe as a URL path segment once percent-encoded."""

from __future__ import annotations

import pytest

from bundler.pipeline.plan.music import sanitize_cue_file_name


@pytest.mark.parametrize(
    ("cue", "name"),
    [
        ("Storm #1", "Storm -1"),
        ("100% Calm", "100- Calm"),
        ("Bell\x07Tower\x85", "Bell-Tower-"),
        ('a\\b/c:d*e?f"g<h>i|j', "a-b-c-d-e-f-g-h-i-j"),
        ("  Into   the  Dark  ", "Into the Dark"),
        ("   ", "music-cue"),
    ],
)
def test_cue_file_names(cue: str, name: str) -> None:
    assert sanitize_cue_file_name(cue) == name
