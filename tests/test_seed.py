"""``bundler db seed``: the example story, every documented failure, all-or-nothing, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from bundler.db.connect import DatabaseTarget
from bundler.db.repository import Repository
from bundler.errors import EnvError, InputError
from bundler.story_yaml.format import StoryFileError
from bundler.story_yaml.seed import SeedResult, StoryExistsError, seed_file
from tests.cli_helpers import REPORT_META
from tests.conftest import new_database

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "lantern-keeper" / "story.yaml"
EXAMPLE_ID = "7d3f5a2e-4b1c-4e8a-9f60-2c5d8e1a0b11"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "seed"
MINIMAL = FIXTURES / "valid-minimal.yaml"
MINIMAL_ID = "11111111-2222-4333-8444-555555555555"
BUNDLER = str(Path(sys.executable).with_name("bundler"))

# uuid -> (label, parent label, choice label) of the example, in script order
EXAMPLE_TREE = [
    ("059380f5-402b-4cf9-b8cd-2056fcd4bd82", "scenelet-1", None, None),
    ("3f2bbf56-c79f-4138-95e3-0264e0c66b25", "scenelet-2", "scenelet-1", None),
    ("51a9b42c-d7aa-4e08-bd7d-6ba8ca526f7b", "scenelet-3", "scenelet-2", "Row out toward the light"),
    ("03234877-7c4d-4ee0-9e4e-2137cb76e25a", "scenelet-4", "scenelet-3", None),
    ("ae26e730-dfd9-4bdf-bbf6-eb30806dd7ff", "scenelet-5", "scenelet-4", "Follow the fireflies"),
    ("e7cc46b4-27d9-4b01-9231-6a2dd1472bae", "scenelet-6", "scenelet-4", "Light a signal flare"),
    ("851eb164-80c3-49ef-b4f5-6eb7fc45f350", "scenelet-7", "scenelet-2", "Relight the great lantern"),
    ("9f907673-b594-42f7-beb8-e5ac0de7bfa9", "scenelet-8", "scenelet-7", None),
    ("40abe513-a625-4e8d-a526-fb37b303d291", "scenelet-9", "scenelet-8", None),
    ("a4fd85b1-d1ee-42b5-b0da-fd47e2f49a6e", "scenelet-10", "scenelet-9", None),
]


def counts(conn: psycopg.Connection) -> tuple[int, int, int]:
    row = conn.execute(
        "select (select count(*) from stories), (select count(*) from scenelets), (select count(*) from shots)"
    ).fetchone()
    assert row is not None
    return (row[0], row[1], row[2])


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# --------------------------------------------------------------------------- the example story


def test_example_story_seeds_with_recomputed_labels_and_sequences(conn: psycopg.Connection, assets_root: Path) -> None:
    result = seed_file(conn, EXAMPLE, assets_root)

    assert result == SeedResult(EXAMPLE_ID, "The Lantern Keeper", 10, 18, 36, skipped=False)
    repo = Repository(conn)
    scenelets = {s.id: s for s in repo.list_scenelets(EXAMPLE_ID)}
    label_of = {uuid: label for uuid, label, _, _ in EXAMPLE_TREE}
    for uuid, _, parent_label, choice in EXAMPLE_TREE:
        scenelet = scenelets[uuid]
        assert (label_of.get(scenelet.parent_id or ""), scenelet.choice_label_from_parent) == (parent_label, choice)
    shots = repo.get_shots_by_story(EXAMPLE_ID)
    for uuid, label, _, _ in EXAMPLE_TREE:
        assert {(s.scenelet_label, s.scenelet_sequence) for s in shots[uuid]} == {(label, int(label.split("-")[1]))}
    # ordered by sequence: scenelet-10 sorts after scenelet-9, not after scenelet-1
    assert list(shots) == [uuid for uuid, *_ in EXAMPLE_TREE]
    assert scenelets["3f2bbf56-c79f-4138-95e3-0264e0c66b25"].choice_prompt == "What should Mara do?"
    assert [s.audio_file_path for s in shots["9f907673-b594-42f7-beb8-e5ac0de7bfa9"]][1] == "N/A"
    assert all(s.key_frame_image_path is None for s in shots["a4fd85b1-d1ee-42b5-b0da-fd47e2f49a6e"])


def test_example_media_lands_under_stored_paths_minus_generated(conn: psycopg.Connection, assets_root: Path) -> None:
    seed_file(conn, EXAMPLE, assets_root)

    media = EXAMPLE.parent / "media"
    expected = sorted(str(p.relative_to(media)) for p in media.rglob("*") if p.is_file())
    assert sorted(str(p.relative_to(assets_root)) for p in assets_root.rglob("*") if p.is_file()) == expected
    shots = Repository(conn).get_shots_by_story(EXAMPLE_ID)
    first = shots["059380f5-402b-4cf9-b8cd-2056fcd4bd82"][0]
    assert first.audio_file_path == f"generated/{EXAMPLE_ID}/shots/scenelet-1/1_audio.wav"
    copied = assets_root / EXAMPLE_ID / "shots" / "scenelet-1" / "1_audio.wav"
    assert copied.read_bytes() == (media / EXAMPLE_ID / "shots" / "scenelet-1" / "1_audio.wav").read_bytes()
    assert (assets_root / EXAMPLE_ID / "music" / "Storm at the Lamp.m4a").read_bytes()[4:8] == b"ftyp"


def test_example_timestamps_and_audio_design_are_stored_as_written(conn: psycopg.Connection, assets_root: Path) -> None:
    seed_file(conn, EXAMPLE, assets_root)

    story = Repository(conn).get_story(EXAMPLE_ID)
    assert story is not None
    assert story.created_at == datetime(2024, 11, 2, 19, 4, 11, tzinfo=UTC)
    cues = story.audio_design_document["audio_design_document"]["music_and_ambience_cues"]
    assert [c["cue_name"] for c in cues] == ["Storm at the Lamp", "Into the Dark Water", "The Beam Returns"]


def test_derived_timestamps_make_file_order_the_script_order(conn: psycopg.Connection, assets_root: Path) -> None:
    seed_file(conn, MINIMAL, assets_root)

    scenelets = {s.id[-1]: s for s in Repository(conn).list_scenelets(MINIMAL_ID)}
    base = datetime(2024, 1, 1, tzinfo=UTC)
    # parent first; then its children last-first, so the first-listed child (2) is the newest
    assert scenelets["1"].created_at == base + timedelta(seconds=1)
    assert scenelets["3"].created_at == base + timedelta(seconds=2)
    assert scenelets["2"].created_at == base + timedelta(seconds=3)
    shots = Repository(conn).get_shots_by_story(MINIMAL_ID)
    assert [
        (s.scenelet_label, s.scenelet_sequence, s.shot_index) for s in shots["00000000-0000-4000-8000-000000000001"]
    ] == [
        ("scenelet-1", 1, 1),
        ("scenelet-1", 1, 2),
    ]


def test_stored_label_overrides_the_recomputed_label(conn: psycopg.Connection, tmp_path: Path) -> None:
    text = MINIMAL.read_text().replace("media: media\n", "")
    text = text.replace("  - index: 1\n", "  - index: 1\n    stored_label: scenelet-7\n    stored_sequence: 7\n")
    text = text.replace("  - index: 2\n", "  - index: 2\n    stored_label: scenelet-7\n    stored_sequence: 7\n")
    story = tmp_path / "drift.yaml"
    story.write_text(text)

    seed_file(conn, story, tmp_path / "assets")

    shots = Repository(conn).get_shots_by_story(MINIMAL_ID)["00000000-0000-4000-8000-000000000001"]
    assert {(s.scenelet_label, s.scenelet_sequence) for s in shots} == {("scenelet-7", 7)}


def test_without_media_key_nothing_is_copied_and_paths_are_stored_verbatim(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    text = MINIMAL.read_text().replace("media: media\n", "")
    text = text.replace("audio: generated/", "audio: ./generated/")
    story = tmp_path / "no-media.yaml"
    story.write_text(text)
    assets = tmp_path / "assets"
    assets.mkdir()

    result = seed_file(conn, story, assets)

    assert result.media_files == 0 and files_under(assets) == []
    first = Repository(conn).get_shots_by_scenelet_ref("00000000-0000-4000-8000-000000000001")[0]
    assert first.audio_file_path == f"./generated/{MINIMAL_ID}/shots/scenelet-1/1_audio.wav"


# --------------------------------------------------------------------------- failures

FAILURES = [
    # fixture, line, expected message fragment
    ("malformed.yaml", None, "malformed YAML at line 25, column 10"),
    ("not-a-mapping.yaml", 1, "document: must be a mapping, not a list"),
    ("unknown-key.yaml", 31, "scenelets[1].choise_label: unknown key (did you mean 'choice_label'?)"),
    ("duplicate-key.yaml", None, "malformed YAML at line 33, column 3: duplicate key 'description'"),
    ("missing-field.yaml", 34, "scenelets[2].description: missing required field"),
    ("wrong-format-tag.yaml", 2, "format: unsupported format 'bundler-story/2'"),
    ("bad-uuid.yaml", 14, "scenelets[0].id: must be a UUID"),
    (
        "parent-not-in-file.yaml",
        35,
        "scenelets[2].parent: 00000000-0000-4000-8000-0000000000ff is not a scenelet in this file",
    ),
    ("duplicate-id.yaml", 34, "scenelets[2].id: 00000000-0000-4000-8000-000000000002 is already used by scenelets[1]"),
    ("two-roots.yaml", 35, "scenelets[2].parent: null makes a second root"),
    ("parent-cycle.yaml", 30, "scenelets[1].parent: Scenelets form a parent cycle"),
    ("out-of-order.yaml", 37, "scenelets[3].id: listed out of pre-order: the tree puts it at scenelets[2]"),
    ("label-mismatch.yaml", 35, "scenelets[2].label: 'scenelet-2' does not match its pre-order position (scenelet-3)"),
    ("role-mismatch.yaml", 35, "scenelets[2].role: 'linear' does not match the tree (branch)"),
    ("mixed-created-at.yaml", 14, "scenelets[0].created_at: missing; give every scenelet a created_at, or none"),
    ("no-timezone.yaml", 8, "story.created_at: needs a time zone"),
    ("unquoted-date.yaml", 28, "scenelets[0].shots[1].storyboard.shotDate: is a YAML timestamp; quote it"),
    ("bad-shot-index.yaml", 25, "scenelets[0].shots[1].index: must be a positive integer, not 0"),
    ("duplicate-shot-index.yaml", 25, "scenelets[0].shots[1].index: 1 is used twice in this scenelet"),
    ("null-storyboard.yaml", 28, "scenelets[0].shots[1].storyboard: must not be null"),
    ("missing-media.yaml", 22, "shots/scenelet-1/shot-9_key_frame.png is missing from the media folder"),
    ("unsafe-path.yaml", 22, "scenelets[0].shots[0].key_frame: unsafe path 'generated/../../../outside.png'"),
    ("wrong-media-format.yaml", 22, "shots/scenelet-1/not-a-png.png is not a PNG image"),
    ("missing-media-folder.yaml", None, "media: folder"),
    ("blank-title.yaml", 6, "story.title: must not be blank"),
]


@pytest.fixture(scope="module")
def empty_conn(pg_admin_uri: str) -> Iterator[psycopg.Connection]:
    """One database for all refusals: each test checks that it is still empty afterwards."""
    with psycopg.connect(new_database(pg_admin_uri).conninfo, autocommit=True) as connection:
        yield connection


@pytest.mark.parametrize(("fixture", "line", "fragment"), FAILURES, ids=[f[0] for f in FAILURES])
def test_bad_file_is_refused_by_name_and_writes_nothing(
    empty_conn: psycopg.Connection, assets_root: Path, fixture: str, line: int | None, fragment: str
) -> None:
    conn = empty_conn
    path = FIXTURES / fixture

    with pytest.raises(StoryFileError) as caught:
        seed_file(conn, path, assets_root)

    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: " if line else f"{path}: "), message
    assert fragment in message
    assert "\n" not in message
    assert caught.value.exit_code == 1
    assert counts(conn) == (0, 0, 0)
    assert files_under(assets_root) == []


def test_every_failure_fixture_is_covered() -> None:
    on_disk = {p.name for p in FIXTURES.glob("*.yaml")} - {"valid-minimal.yaml"}
    assert on_disk == {f[0] for f in FAILURES}


def test_missing_file_is_an_input_error(conn: psycopg.Connection, assets_root: Path) -> None:
    with pytest.raises(StoryFileError, match=r"no-such\.yaml: no such file"):
        seed_file(conn, FIXTURES / "no-such.yaml", assets_root)


def test_second_seed_is_refused_and_if_missing_is_a_no_op(conn: psycopg.Connection, assets_root: Path) -> None:
    seed_file(conn, MINIMAL, assets_root)
    before = counts(conn)

    with pytest.raises(StoryExistsError, match=f"Story {MINIMAL_ID} already exists"):
        seed_file(conn, MINIMAL, assets_root)
    skipped = seed_file(conn, MINIMAL, assets_root, if_missing=True)

    assert skipped == SeedResult(MINIMAL_ID, "Minimal", 0, 0, 0, skipped=True)
    assert skipped.to_json()["skipped"] is True and "already exists" in skipped.summary()
    assert counts(conn) == before == (1, 3, 2)


def test_scenelet_id_of_another_story_rolls_everything_back(
    conn: psycopg.Connection, assets_root: Path, tmp_path: Path
) -> None:
    seed_file(conn, MINIMAL, assets_root)
    other = tmp_path / "other.yaml"
    other.write_text(
        MINIMAL.read_text()
        .replace("media: media\n", "")
        .replace(MINIMAL_ID, "99999999-2222-4333-8444-555555555555")
        .replace("00000000-0000-4000-8000-000000000003", "00000000-0000-4000-8000-000000000009")
    )

    with pytest.raises(InputError, match="Scenelet 00000000-0000-4000-8000-000000000001 already exists in story"):
        seed_file(conn, other, assets_root)

    assert counts(conn) == (1, 3, 2)


def test_copy_failure_rolls_back_rows_and_removes_copied_files(conn: psycopg.Connection, assets_root: Path) -> None:
    # a folder where the key frame must go: every other file is copied first, then the rename fails
    blocker = assets_root / MINIMAL_ID / "shots" / "scenelet-1" / "shot-1_key_frame.png"
    blocker.mkdir(parents=True)
    (blocker / "keep.txt").write_text("not ours")
    before = files_under(assets_root)

    with pytest.raises(EnvError, match="Cannot copy media into the assets root"):
        seed_file(conn, MINIMAL, assets_root)

    assert counts(conn) == (0, 0, 0)
    assert files_under(assets_root) == before


def test_copy_refuses_a_symlinked_folder_that_leaves_the_assets_root(
    conn: psycopg.Connection, assets_root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (assets_root / MINIMAL_ID).symlink_to(outside, target_is_directory=True)

    with pytest.raises(EnvError, match="resolves outside the assets root"):
        seed_file(conn, MINIMAL, assets_root)

    assert list(outside.iterdir()) == []
    assert counts(conn) == (0, 0, 0)


def test_identical_files_already_in_place_are_kept(conn: psycopg.Connection, assets_root: Path) -> None:
    seed_file(conn, MINIMAL, assets_root)
    conn.execute("delete from stories")
    copied = assets_root / MINIMAL_ID / "music" / "Theme.m4a"
    stamp = copied.stat().st_mtime_ns

    seed_file(conn, MINIMAL, assets_root)

    assert copied.stat().st_mtime_ns == stamp
    assert counts(conn) == (1, 3, 2)


# --------------------------------------------------------------------------- command line


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, with no database or CI settings leaking in from the caller."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GITHUB_ACTIONS")} | {"NO_COLOR": "1"}
    return subprocess.run([BUNDLER, *args], capture_output=True, text=True, env=env, timeout=120, check=False)


def test_cli_seed_exit_codes(database: DatabaseTarget, tmp_path: Path) -> None:
    db = ["--database-url", database.conninfo, "--assets-root", str(tmp_path / "assets")]

    first = run("db", "seed", str(MINIMAL), *db, "--json")
    again = run("db", "seed", str(MINIMAL), *db)
    skipped = run("db", "seed", str(MINIMAL), *db, "--if-missing", "--json")
    bad = run("db", "seed", str(FIXTURES / "unknown-key.yaml"), *db)

    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {
        "ok": True,
        "storyId": MINIMAL_ID,
        "title": "Minimal",
        "scenelets": 3,
        "shots": 2,
        "mediaFiles": 4,
        "skipped": False,
        **REPORT_META,
    }
    assert again.returncode == 1 and f"Story {MINIMAL_ID} already exists" in again.stderr
    assert skipped.returncode == 0 and json.loads(skipped.stdout)["skipped"] is True
    assert bad.returncode == 1
    assert "unknown-key.yaml:31: scenelets[1].choise_label: unknown key" in " ".join(bad.stderr.split())


def test_cli_seed_unreachable_database_is_exit_3(tmp_path: Path) -> None:
    result = run(
        "db", "seed", str(MINIMAL), "--assets-root", str(tmp_path), "--database-url",
        "postgresql://nobody:secret@127.0.0.1:1/nothing?connect_timeout=2", "--json",
    )  # fmt: skip

    assert result.returncode == 3
    assert json.loads(result.stdout)["ok"] is False
    assert "secret" not in result.stderr + result.stdout


def test_replace_reseeds_rows_and_restores_media(conn: psycopg.Connection, assets_root: Path) -> None:
    first = seed_file(conn, MINIMAL, assets_root)
    before = counts(conn)
    media = sorted(p.relative_to(assets_root) for p in assets_root.rglob("*") if p.is_file())
    assert media, "the minimal fixture has media"
    import shutil

    shutil.rmtree(assets_root)  # e.g. `make clean` removed the demo folder but not the database
    assets_root.mkdir()
    again = seed_file(conn, MINIMAL, assets_root, replace=True)
    assert (again.scenelets, again.shots, again.skipped) == (first.scenelets, first.shots, False)
    assert counts(conn) == before
    assert sorted(p.relative_to(assets_root) for p in assets_root.rglob("*") if p.is_file()) == media
