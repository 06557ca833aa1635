"""``check`` predicts ``assemble``, and what ``assemble`` writes passes ``verify`` (DESIGN §3, issue 19 §4)."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from pathlib import Path

import psycopg
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from bundler import api
from bundler.api import verify as verify_bundle
from bundler.db.connect import DatabaseTarget
from bundler.db.repository import RepositoryError
from bundler.errors import BundlerError
from bundler.pipeline.plan.music import sanitize_cue_file_name, unique_file_names
from tests.builders import ShotSpec, StoryBuilder

EXPORTED_AT = "2025-01-02T03:04:05Z"


def _run(story: StoryBuilder, database: DatabaseTarget, assets_root: Path, out: Path) -> tuple[int, int]:
    """(check's exit code, assemble's), after asserting that a written bundle verifies."""
    checked = api.check(story.story_id, database=database, assets_root=assets_root)
    try:
        report = api.assemble(
            story.story_id, database=database, assets_root=assets_root, out_dir=out, exported_at=EXPORTED_AT
        )
        assembled = report.exit_code
    except BundlerError as exc:
        return checked.exit_code, exc.exit_code
    if report.ok:
        verified = verify_bundle(out / story.story_id)
        assert verified.ok, [p.message for p in verified.problems]
    return checked.exit_code, assembled


def test_a_cue_name_over_255_bytes_once_sanitized_is_shortened(
    conn: psycopg.Connection, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    story = StoryBuilder()
    story.scenelet(terminal=True)
    cue = "/".join(["Night theme " + "x" * 180] * 3)  # folders on disk, one 580-byte file name in a bundle
    story.music((cue, ["scenelet-1"]))
    story.write_media(assets_root)
    story.insert(conn)
    assert _run(story, database, assets_root, tmp_path / "out") == (0, 0)
    music = list((tmp_path / "out" / story.story_id / "assets" / "music").iterdir())
    assert len(music) == 1 and len(music[0].name.encode()) <= 100 + 9 + 4


def test_cue_file_names_replace_format_characters_and_stay_distinct() -> None:
    assert sanitize_cue_file_name("Theme\u202egnp.exe\u2066") == "Theme-gnp.exe-"
    assert sanitize_cue_file_name("zero\u200bwidth") == "zero-width"
    long_a, long_b = "é" * 200 + "a", "é" * 200 + "b"
    short_a, short_b = unique_file_names([long_a, long_b])
    assert short_a != short_b and len(short_a.encode()) <= 109  # the hash tells them apart
    assert short_a.encode()[:100].decode(errors="ignore") == "é" * 50  # cut at a character boundary


def test_two_shots_at_one_index_are_an_error_naming_both_rows(
    conn: psycopg.Connection, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    story = StoryBuilder()
    scenelet = story.scenelet(shots=[ShotSpec(1), ShotSpec(1, stored_label="scenelet-7")], terminal=True)
    story.write_media(assets_root)
    story.insert(conn)
    assert _run(story, database, assets_root, tmp_path / "out") == (1, 1)
    report = api.check(story.story_id, database=database, assets_root=assets_root)
    [problem] = [p for p in report.problems if p.code == "duplicate-shot-index"]
    assert problem.severity == "error" and problem.scenelet_ref == scenelet and problem.shot_index == 1
    assert "'scenelet-1'" in problem.message and "'scenelet-7'" in problem.message
    assert not (tmp_path / "out" / story.story_id).exists()


# --- the property: any titles, labels, cue names, stored paths and shot layouts -----------------

texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40) | st.sampled_from(
    ["", " ", "\u200b", "\u202e", "a/b", "x" * 300, "#%?\\", "..", "\x1b[2J"]
)
stored_paths = st.sampled_from([..., None, "N/A", "../escape.png", "/abs.png", "./generated/odd name #1.png"]) | (
    texts.map(lambda t: f"media/{t}.png")
)


@st.composite
def stories(draw: st.DrawFn) -> StoryBuilder:
    story = StoryBuilder(title=draw(texts), story_id=str(uuid.uuid4()))
    ids: list[str] = []
    for n in range(draw(st.integers(1, 4))):
        indexes = draw(st.lists(st.integers(1, 3), max_size=3))
        shots = []
        for position, index in enumerate(indexes):
            image = draw(stored_paths)
            shot = ShotSpec(index, stored_label=f"scenelet-{50 + position}" if indexes.count(index) > 1 else None)
            if image is not ...:
                shot.image = image
            shots.append(shot)
        parent = None if n == 0 else ids[draw(st.integers(0, n - 1))]
        ids.append(
            story.scenelet(
                parent,
                shots=shots,
                choice_label=draw(texts),
                prompt=draw(st.sampled_from([None, "Choose?", " ", "\u2800"])),
                terminal=draw(st.booleans()),
            )
        )
    cues = draw(st.lists(texts, max_size=2))
    if cues:
        story.music(*((cue, ["scenelet-1", "scenelet-2"]) for cue in cues))
    return story


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(story=stories())
def test_check_predicts_assemble_and_every_written_bundle_verifies(
    story: StoryBuilder, conn: psycopg.Connection, database: DatabaseTarget, tmp_path: Path
) -> None:
    work = tmp_path / story.story_id
    assets_root = work / "assets"
    assets_root.mkdir(parents=True)
    try:
        with contextlib.suppress(OSError, ValueError):  # a name no file system can hold is simply missing
            story.write_media(assets_root)
        try:
            story.insert(conn)
        except (psycopg.Error, RepositoryError):
            reject()  # rows the pipeline's own writer refuses (a blank title, a NUL character)
        checked, assembled = _run(story, database, assets_root, work / "out")
        assert 70 not in (checked, assembled)
        assert checked == assembled, (checked, assembled)
    finally:
        shutil.rmtree(work, ignore_errors=True)
