"""Hostile text and structure from the database: hidden bad rows, cue names, deep JSON, escapes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bundler.db.connect import DatabaseTarget
from bundler.pipeline.plan.music import sanitize_cue_file_name, unique_file_names
from tests.builders import ShotSpec, StoryBuilder, without_shots
from tests.bundle_factory import RIGHT, edit_manifest, make_bundle
from tests.cli_helpers import BUNDLER, json_of

TIMEOUT = 60


def bundler(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GITHUB_ACTIONS", "SOURCE_DATE_EPOCH")}
    return subprocess.run(
        [*BUNDLER, *map(str, args)],
        capture_output=True,
        text=True,
        env=base | {"NO_COLOR": "1"} | (env or {}),
        timeout=TIMEOUT,
        check=False,
    )


def db_args(database: DatabaseTarget, assets_root: Path) -> list[str]:
    return ["--database-url", database.conninfo, "--assets-root", str(assets_root)]


# ------------------------------------------------------------------ bad rows behind an unplayable scenelet


def test_traversal_path_under_an_unplayable_subtree_fails_check(
    conn: Any, database: DatabaseTarget, assets_root: Path
) -> None:
    b = StoryBuilder()
    root = b.scenelet()
    hollow = b.scenelet(root)
    without_shots(b, hollow)
    hidden = b.scenelet(hollow, terminal=True, shots=[ShotSpec(1, image="../../etc/passwd")])
    b.write_media(assets_root)
    b.insert(conn)

    result = bundler("check", b.story_id, *db_args(database, assets_root), "--json")

    assert result.returncode == 1, result.stderr
    problems = json.loads(result.stdout)["problems"]
    assert {
        "severity": "error",
        "code": "unsafe-asset-path",
        "sceneletId": hidden,
        "sceneletLabel": "scenelet-3",
        "shotIndex": 1,
        "path": "../../etc/passwd",
    }.items() <= next(p for p in problems if p["code"] == "unsafe-asset-path").items()


# ------------------------------------------------------------------ music cue names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Storm%20", "Storm-20"),
        ("Act #1?", "Act -1-"),
        ("Bell\x07\x1b[2J", "Bell--[2J"),
        ("Two\nlines\r", "Two-lines-"),
        ("C1\x85\x9b end", "C1-- end"),
        ("DEL\x7f", "DEL-"),
        ("  %  ", "-"),
        ("   ", "music-cue"),
    ],
)
def test_cue_file_names_are_url_and_terminal_safe(name: str, expected: str) -> None:
    assert sanitize_cue_file_name(name) == expected


def test_cue_names_that_sanitize_alike_get_suffixes() -> None:
    assert unique_file_names(["A#B", "A%B", "A?B"]) == ["A-B", "A-B-2", "A-B-3"]


def test_cue_with_url_characters_bundles_and_verifies(
    conn: Any, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    b = StoryBuilder()
    b.scenelet(terminal=True)
    b.music(("Storm%20 #1?", ["scenelet-1"]))
    b.write_media(assets_root)
    b.insert(conn)

    made = bundler("assemble", b.story_id, *db_args(database, assets_root), "--out", tmp_path / "out", "--json")
    assert made.returncode == 0, made.stderr
    manifest = json.loads((tmp_path / "out" / b.story_id / "manifest.json").read_text())
    assert manifest["music"]["cues"][0]["audioPath"] == "assets/music/Storm-20 -1-.m4a"
    checked = bundler("verify", tmp_path / "out" / b.story_id)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("bad", ["assets/music/Storm%20.m4a", "assets/a#b.png", "assets/q?.png", "assets/\x1b.png"])
def test_verify_rejects_paths_unsafe_in_urls(tmp_path: Path, bad: str) -> None:
    bundle = make_bundle(tmp_path)

    def change(manifest: dict[str, Any]) -> None:
        scenelet = next(s for s in manifest["scenelets"] if s["id"] == RIGHT)
        scenelet["shots"][0]["imagePath"] = bad

    edit_manifest(bundle, change)
    result = bundler("verify", bundle, "--json")

    assert result.returncode == 1, result.stderr
    assert ("unsafe-path", bad) in {(p["code"], p["path"]) for p in json.loads(result.stdout)["problems"]}


# ------------------------------------------------------------------ deep JSON


def test_deeply_nested_manifest_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    (bundle / "manifest.json").write_text("[" * 5000 + "]" * 5000)

    result = bundler("verify", bundle, "--json")

    assert result.returncode == 3, result.stderr
    assert "nested too deeply" in result.stderr and "Traceback" not in result.stderr
    assert json.loads(result.stdout)["ok"] is False


@pytest.mark.parametrize("column", ["audio_design_document", "content", "storyboard_payload"])
def test_deeply_nested_json_in_the_database_is_never_an_internal_error(
    conn: Any, database: DatabaseTarget, assets_root: Path, tmp_path: Path, column: str
) -> None:
    b = StoryBuilder()
    root = b.scenelet(terminal=True)
    b.write_media(assets_root)
    b.insert(conn)
    deep = "[" * 3000 + "]" * 3000
    table, key = {"audio_design_document": ("stories", "id"), "content": ("scenelets", "id")}.get(
        column, ("shots", "scenelet_ref")
    )
    value = deep if column != "content" else '{"description": "Deep", "extra": ' + deep + "}"
    conn.execute(
        f"update {table} set {column} = %s::jsonb where {key} = %s", (value, b.story_id if table == "stories" else root)
    )
    # where the value is: the story itself, the scenelet, or its (only) shot
    where = {
        "audio_design_document": (None, None, None),
        "content": (root, "scenelet-1", None),
        "storyboard_payload": (root, "scenelet-1", 1),
    }[column]
    # bundling parses only the story's audio design document in Python; export reads every column
    bundling_fails = column == "audio_design_document"

    commands = {
        "check": ["check", b.story_id, *db_args(database, assets_root), "--json"],
        "assemble": ["assemble", b.story_id, *db_args(database, assets_root), "--out", str(tmp_path / "out"), "--json"],
        "export": ["export", b.story_id, "--database-url", database.conninfo, "--json"],
        "stories": ["stories", "--database-url", database.conninfo],
    }
    for name, command in commands.items():
        result = bundler(*command)
        expected = 1 if name == "export" or (bundling_fails and name in ("check", "assemble")) else 0
        assert result.returncode == expected, (command, result.stderr)
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        if expected == 0:
            continue
        document = json_of(result)  # valid against the published report schema
        [problem] = document["problems"]
        assert problem["code"] == "json-too-deep" and problem["severity"] == "error"
        assert (problem["sceneletId"], problem["sceneletLabel"], problem["shotIndex"]) == where
        assert b.story_id in problem["message"] and column in problem["message"]
        assert "nested too deeply" in problem["message"]
        if name != "export":  # a story problem, not a failure to run: listed in problems, no "error"
            assert "error" not in document and document["ok"] is False
        lines = [line for line in result.stderr.splitlines() if "nested too deeply" in line]
        assert len(lines) == 1, result.stderr
        assert b.story_id in lines[0] and column in lines[0] and (root in lines[0]) == (where[0] is not None)
