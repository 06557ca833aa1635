"""``db seed`` against hostile files: alias bombs, deep nesting, and media it must not overwrite."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import psycopg
import pytest

from bundler.db.connect import DatabaseTarget
from bundler.errors import EnvError, InputError
from bundler.story_yaml.format import StoryFileError
from bundler.story_yaml.seed import seed_file
from tests.media_files import m4a_bytes, wav_bytes
from tests.test_hostile_data import bundler
from tests.test_seed import counts

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "seed"
MINIMAL = FIXTURES / "valid-minimal.yaml"
MINIMAL_ID = "11111111-2222-4333-8444-555555555555"
BRANCH_AUDIO = f"{MINIMAL_ID}/branches/scenelet-1/branch_audio.wav"
MUSIC = f"{MINIMAL_ID}/music/Theme.m4a"
KEY_FRAME = f"{MINIMAL_ID}/shots/scenelet-1/shot-1_key_frame.png"


def everything_under(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))}


# ------------------------------------------------------------------ YAML alias bomb and nesting


def alias_bomb(levels: int = 9) -> str:
    lines = ["format: bundler-story/1", "x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for n in range(1, levels + 1):
        lines.append(f"x{n}: &x{n} [{', '.join([f'*x{n - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_fast_with_one_line(database: DatabaseTarget, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())  # 10**10 strings once expanded

    started = time.monotonic()
    result = bundler("db", "seed", bomb, "--database-url", database.conninfo, "--assets-root", tmp_path / "a")

    assert time.monotonic() - started < 20
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "bomb.yaml" in line and "alias" in line


def test_a_few_aliases_and_merge_keys_are_fine(conn: psycopg.Connection, tmp_path: Path) -> None:
    text = MINIMAL.read_text().replace(
        "storyboard: {framingAndAngle: Wide}", "storyboard: &wide {framingAndAngle: Wide}"
    )
    text = text.replace("storyboard: {framingAndAngle: Close}", "storyboard: {<<: *wide, extra: *wide}")
    story = tmp_path / "story.yaml"
    story.write_text(text.replace("media: media\n", ""))
    assert seed_file(conn, story, tmp_path / "assets").shots == 2


def test_recursive_alias_is_refused(tmp_path: Path, conn: psycopg.Connection) -> None:
    story = tmp_path / "story.yaml"
    story.write_text("format: bundler-story/1\nloop: &a [*a]\n")
    with pytest.raises(StoryFileError, match=r"story\.yaml"):
        seed_file(conn, story, tmp_path)


def test_deeply_nested_yaml_is_a_clear_error(tmp_path: Path, conn: psycopg.Connection) -> None:
    story = tmp_path / "story.yaml"
    deep = "[" * 3000 + "]" * 3000
    story.write_text(MINIMAL.read_text().replace("media: media\n", "").replace("{framingAndAngle: Wide}", deep))
    with pytest.raises(StoryFileError, match=r"nesting depth|nested too deeply"):
        seed_file(conn, story, tmp_path)


# ------------------------------------------------------------------ files already in the assets root


def test_a_different_file_in_the_assets_root_is_not_overwritten(
    database: DatabaseTarget, conn: psycopg.Connection, assets_root: Path
) -> None:
    theirs = assets_root / MUSIC
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(m4a_bytes() + b"their edit")
    before = everything_under(assets_root)

    result = bundler("db", "seed", MINIMAL, "--database-url", database.conninfo, "--assets-root", assets_root)

    assert result.returncode == 1, result.stderr
    assert "Theme.m4a" in result.stderr and "--replace" in result.stderr
    assert everything_under(assets_root) == before
    assert counts(conn) == (0, 0, 0)


def test_replace_overwrites_differing_files(conn: psycopg.Connection, assets_root: Path) -> None:
    theirs = assets_root / MUSIC
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(m4a_bytes() + b"their edit")

    seed_file(conn, MINIMAL, assets_root, replace=True)

    assert theirs.read_bytes() == (FIXTURES / "media" / MUSIC).read_bytes()


def test_failed_replace_restores_what_it_replaced(conn: psycopg.Connection, assets_root: Path) -> None:
    seed_file(conn, MINIMAL, assets_root)
    (assets_root / BRANCH_AUDIO).write_bytes(wav_bytes(frames=7))  # edited since: differs from the file
    (assets_root / MUSIC).write_bytes(m4a_bytes() + b"older")
    # the last file to go in cannot: a folder with content sits where the key frame goes
    (assets_root / KEY_FRAME).unlink()
    (assets_root / KEY_FRAME).mkdir()
    (assets_root / KEY_FRAME / "keep.txt").write_text("not ours")
    before = everything_under(assets_root)
    rows = counts(conn)

    with pytest.raises(EnvError, match="Cannot copy media"):
        seed_file(conn, MINIMAL, assets_root, replace=True)

    assert everything_under(assets_root) == before  # replaced files are back, no staging debris
    assert counts(conn) == rows


def test_identical_files_need_no_replace(conn: psycopg.Connection, assets_root: Path) -> None:
    shutil.copytree(FIXTURES / "media" / MINIMAL_ID, assets_root / MINIMAL_ID)
    assert seed_file(conn, MINIMAL, assets_root).media_files == 4


def test_refusal_is_an_input_error(conn: psycopg.Connection, assets_root: Path) -> None:
    (assets_root / BRANCH_AUDIO).parent.mkdir(parents=True)
    (assets_root / BRANCH_AUDIO).write_bytes(wav_bytes(frames=3))
    with pytest.raises(InputError, match=r"branch_audio\.wav"):
        seed_file(conn, MINIMAL, assets_root)
