"""Text from the database never drives the terminal: control characters escaped, markup literal."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bundler.db.connect import DatabaseTarget
from tests.builders import ShotSpec, StoryBuilder
from tests.test_hostile_data import bundler, db_args

EVIL_TITLE = "Evil\x1b]0;pwned\x07 [bold]X[/bold]\r\nsecond line\x9b2J\x7f"
EVIL_PATH = "frames/\x1b[2J\rgone\nnext.png"
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # anything but the newline that ends each line


def evil_story(conn: Any, assets_root: Path) -> StoryBuilder:
    b = StoryBuilder(title=EVIL_TITLE)
    b.scenelet(terminal=True, shots=[ShotSpec(1), ShotSpec(2, image=EVIL_PATH, write_image=False)])
    b.music(("Cue\x1b[31m\x07", ["scenelet-1", "scenelet-9"]), write=False)
    b.write_media(assets_root)
    b.insert(conn)
    return b


def assert_terminal_safe(text: str) -> None:
    assert not RAW_CONTROL.search(text), repr(text)


def test_problem_lines_escape_control_characters(conn: Any, database: DatabaseTarget, assets_root: Path) -> None:
    b = evil_story(conn, assets_root)

    result = bundler("check", b.story_id, *db_args(database, assets_root))

    assert result.returncode == 0, result.stderr
    assert_terminal_safe(result.stderr)
    [missing] = [line for line in result.stderr.splitlines() if "missing-media" in line and "shot 2" in line]
    assert "frames/\\x1b[2J\\x0dgone\\x0anext.png" in missing
    assert "Cue\\x1b[31m\\x07" in result.stderr


def test_github_format_escapes_too(conn: Any, database: DatabaseTarget, assets_root: Path) -> None:
    b = evil_story(conn, assets_root)

    result = bundler("check", b.story_id, *db_args(database, assets_root), "--format", "github")

    assert_terminal_safe(result.stdout + result.stderr)
    commands = [line for line in result.stdout.splitlines() if line.startswith("::")]
    assert any("missing-media" in line and "\\x1b[2J" in line for line in commands)


def test_json_keeps_raw_values(conn: Any, database: DatabaseTarget, assets_root: Path) -> None:
    b = evil_story(conn, assets_root)

    result = bundler("check", b.story_id, *db_args(database, assets_root), "--json")

    paths = {p["path"] for p in json.loads(result.stdout)["problems"]}
    assert any(path and EVIL_PATH in path for path in paths)


def test_stories_table_escapes_titles_and_markup(conn: Any, database: DatabaseTarget, assets_root: Path) -> None:
    evil_story(conn, assets_root)

    result = bundler("stories", "--database-url", database.conninfo, env={"COLUMNS": "400"})

    assert result.returncode == 0, result.stderr
    assert_terminal_safe(result.stdout + result.stderr)
    assert "Evil\\x1b]0;pwned\\x07 [bold]X[/bold]\\x0d\\x0asecond line\\x9b2J\\x7f" in result.stdout


def test_batch_summary_and_seed_summary_escape(
    conn: Any, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    evil_story(conn, assets_root)
    story = tmp_path / "story.yaml"
    minimal = Path(__file__).resolve().parent / "fixtures" / "seed" / "valid-minimal.yaml"
    story.write_text(
        minimal.read_text().replace("media: media\n", "").replace("title: Minimal", 'title: "T\\e[2J\\a[red]x"')
    )

    seeded = bundler("db", "seed", story, *db_args(database, tmp_path / "assets"))
    checked = bundler("check", "--all", *db_args(database, assets_root))

    assert seeded.returncode == 0, seeded.stderr
    assert "T\\x1b[2J\\x07[red]x" in seeded.stderr
    assert_terminal_safe(seeded.stderr + checked.stderr + checked.stdout)
