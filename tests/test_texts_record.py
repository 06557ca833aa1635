"""An unchanged re-assemble keeps index.html, manifest.json and SHA256SUMS without rendering them,
and only when their bytes prove them current (``bundler.pipeline.texts_record``). Real PostgreSQL, real files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

import bundler.pipeline.build
from bundler.pipeline import texts_record
from tests import test_reuse
from tests.builders import StoryBuilder

story = test_reuse.story
assemble = test_reuse.assemble
settle = test_reuse.settle
TEXTS = ["index.html", "manifest.json", "SHA256SUMS"]


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the texts were rendered (the real renderer still runs)."""
    calls: list[int] = []
    real = bundler.pipeline.build._render

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(bundler.pipeline.build, "_render", counted)
    return calls


def test_unchanged_reassemble_does_not_render_the_texts_again(
    story: StoryBuilder, assemble: Callable[..., Path], settle: Callable[[], None], renders: list[int]
) -> None:
    settle()
    bundle = assemble(story.story_id)
    assert len(renders) == 1
    before_inodes, before_bytes = test_reuse.all_inodes(bundle), test_reuse.tree_bytes(bundle)

    assemble(story.story_id)
    assert len(renders) == 1  # proven current by the bundle's record: nothing rendered
    assert test_reuse.all_inodes(bundle) == before_inodes
    assert test_reuse.tree_bytes(bundle) == before_bytes


@pytest.mark.parametrize("name", TEXTS)
def test_a_text_edited_in_place_with_its_times_restored_is_rendered_again(
    story: StoryBuilder, assemble: Callable[..., Path], settle: Callable[[], None], renders: list[int], name: str
) -> None:
    settle()
    bundle = assemble(story.story_id)
    before = test_reuse.tree_bytes(bundle)
    edited = bundle / name
    times = edited.stat()
    test_reuse.rewrite_same_size(edited)
    os.utime(edited, ns=(times.st_atime_ns, times.st_mtime_ns))

    assemble(story.story_id)
    assert len(renders) == 2
    assert test_reuse.tree_bytes(bundle) == before  # the edit is gone
    assert (bundle / name).stat().st_ino != times.st_ino  # a new bundle, never an in-place fix


def test_a_record_from_another_renderer_is_not_trusted(
    story: StoryBuilder,
    assemble: Callable[..., Path],
    settle: Callable[[], None],
    renders: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settle()
    bundle = assemble(story.story_id)
    before = test_reuse.tree_bytes(bundle)
    monkeypatch.setattr(texts_record, "_renderer", lambda: b"another bundler version")

    assemble(story.story_id)
    assert len(renders) == 2
    assert test_reuse.tree_bytes(bundle) == before  # rendered again, and found the same


def test_a_damaged_record_means_render(
    story: StoryBuilder, assemble: Callable[..., Path], settle: Callable[[], None], renders: list[int]
) -> None:
    settle()
    bundle = assemble(story.story_id)
    before = test_reuse.tree_bytes(bundle)
    os.setxattr(bundle, texts_record.ATTRIBUTE, b"\x01" + b"\x00" * 20)

    assemble(story.story_id)
    assert len(renders) == 2
    assert test_reuse.tree_bytes(bundle) == before
    assemble(story.story_id)
    assert len(renders) == 2  # the proven bundle got a fresh record


def test_a_changed_story_never_keeps_the_old_texts(
    story: StoryBuilder, assemble: Callable[..., Path], settle: Callable[[], None], renders: list[int], conn
) -> None:  # type: ignore[no-untyped-def]
    settle()
    bundle = assemble(story.story_id)
    conn.execute("update stories set display_name = 'Renamed' where id = %s", (story.story_id,))

    assemble(story.story_id)
    assert len(renders) == 2
    assert b"Renamed" in (bundle / "index.html").read_bytes()
    assert b'"title": "Renamed"' in (bundle / "manifest.json").read_bytes()
