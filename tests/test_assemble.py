"""``assemble`` end to end: real PostgreSQL, real files, the real CLI."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from bundler import api
from bundler.db.connect import DatabaseTarget
from bundler.errors import EnvError
from tests.builders import ShotSpec, StoryBuilder
from tests.cli_helpers import json_of, run_cli
from tests.test_manifest_paths import referenced_paths


def branching_story() -> StoryBuilder:
    b = StoryBuilder(title="The Lantern")
    root = b.scenelet(shots=2, prompt="Open the door?")
    yes = b.scenelet(root, choice_label="Open it")
    b.scenelet(yes, terminal=True)
    b.scenelet(root, choice_label="Walk away", terminal=True, shots=[ShotSpec(1, audio="N/A")])
    b.music(("Night Theme", ["scenelet-1", "scenelet-2"]))
    return b


def tree_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def story(conn, assets_root: Path) -> StoryBuilder:  # type: ignore[no-untyped-def]
    builder = branching_story()
    builder.write_media(assets_root)
    builder.insert(conn)
    return builder


def test_bundle_has_exactly_the_expected_files(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    report = api.assemble(story.story_id, database=database, assets_root=assets_root, out_dir=tmp_path / "out")
    assert report.ok, report.problems
    root, yes, yes_end, walk = (s.id for s in story.scenelets)
    bundle = tmp_path / "out" / story.story_id
    assert sorted(tree_files(bundle)) == sorted(
        [
            "SHA256SUMS",
            "index.html",
            "manifest.json",
            f"assets/branches/{root}/branch_audio.wav",
            "assets/music/Night Theme.m4a",
            *(f"assets/shots/{root}/{i}_{kind}" for i in (1, 2) for kind in ("key_frame.png", "audio.wav")),
            *(f"assets/shots/{s}/1_{kind}" for s in (yes, yes_end) for kind in ("key_frame.png", "audio.wav")),
            f"assets/shots/{walk}/1_key_frame.png",
        ]
    )
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format"] == "story-bundle" and manifest["formatVersion"] == 1
    assert manifest["metadata"] == {
        "storyId": story.story_id,
        "title": "The Lantern",
        "exportedAt": "2026-03-01T12:00:00.000Z",
    }
    assert manifest["rootSceneletId"] == root
    assert [s["label"] for s in manifest["scenelets"]] == ["scenelet-1", "scenelet-2", "scenelet-3", "scenelet-4"]
    assert manifest["scenelets"][0]["next"]["choices"] == [
        {"sceneletId": yes, "label": "Open it"},
        {"sceneletId": walk, "label": "Walk away"},
    ]
    assert manifest["music"]["sceneletCueMap"] == {root: "Night Theme", yes: "Night Theme"}
    listed = {f["path"] for f in manifest["files"]}
    assert listed == set(tree_files(bundle)) - {"manifest.json", "SHA256SUMS"}
    assert referenced_paths(manifest) <= listed
    for entry in manifest["files"]:
        data = (bundle / entry["path"]).read_bytes()
        assert entry["bytes"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest()
    text = (bundle / "manifest.json").read_text()
    assert text.endswith("}\n") and text.startswith('{\n  "format"')
    check = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=bundle, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "manifest.json" in (bundle / "SHA256SUMS").read_text()


def test_two_runs_are_byte_identical(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    for name in ("a", "b"):
        assert api.assemble(story.story_id, database=database, assets_root=assets_root, out_dir=tmp_path / name).ok
    assert tree_files(tmp_path / "a" / story.story_id) == tree_files(tmp_path / "b" / story.story_id)


def test_exported_at_sources(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def exported(**kwargs: object) -> str:
        out = tmp_path / str(len(list(tmp_path.iterdir())))
        api.assemble(story.story_id, database=database, assets_root=assets_root, out_dir=out, **kwargs)  # type: ignore[arg-type]
        return json.loads((out / story.story_id / "manifest.json").read_text())["metadata"]["exportedAt"]

    assert exported(exported_at="2030-01-02T03:04:05+02:00") == "2030-01-02T01:04:05.000Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    assert exported() == "1970-01-02T00:00:00.000Z"


def test_existing_bundle_needs_overwrite(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert api.assemble(story.story_id, database=database, assets_root=assets_root, out_dir=out).ok
    bundle = out / story.story_id
    (bundle / "marker").write_text("old")
    result = run_cli(
        "assemble", story.story_id, "--database-url", database.conninfo, "--assets-root", assets_root, "--out", out
    )
    assert result.returncode == 3
    assert "already exists" in result.stderr and "--overwrite" in result.stderr
    assert (bundle / "marker").read_text() == "old"
    result = run_cli(
        "assemble",
        story.story_id,
        "--database-url",
        database.conninfo,
        "--assets-root",
        assets_root,
        "--out",
        out,
        "--overwrite",
    )
    assert result.returncode == 0, result.stderr
    assert not (bundle / "marker").exists() and (bundle / "manifest.json").exists()
    assert sorted(p.name for p in out.iterdir()) == [story.story_id]  # no staging debris


def test_failure_mid_copy_keeps_old_bundle(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert api.assemble(story.story_id, database=database, assets_root=assets_root, out_dir=out).ok
    before = tree_files(out / story.story_id)

    from bundler.storage.local.source import LocalSource

    real_copy = LocalSource.copy
    calls = {"n": 0}

    def failing_copy(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real_copy(*args, **kwargs)

    monkeypatch.setattr(LocalSource, "copy", failing_copy)
    monkeypatch.setattr(LocalSource, "reuse", lambda *args: None)  # copy every file anew
    with pytest.raises(EnvError, match="No space left on device"):
        api.assemble(story.story_id, database=database, assets_root=assets_root, out_dir=out, overwrite=True, jobs=1)
    assert tree_files(out / story.story_id) == before
    assert sorted(p.name for p in out.iterdir()) == [story.story_id]


def test_check_writes_nothing_and_reports(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    result = run_cli(
        "check",
        story.story_id,
        "--database-url",
        database.conninfo,
        "--assets-root",
        assets_root,
        "--json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    document = json_of(result)
    assert document["ok"] is True and document["bundlePath"] is None
    assert document["stats"]["scenelets"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assets"]  # nothing but the test's own media


def test_json_on_failure_lists_every_problem(conn, database: DatabaseTarget, assets_root: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    b = StoryBuilder(title="Broken")
    root = b.scenelet(shots=[ShotSpec(1, image=None, audio="N/A")])
    b.scenelet(root, shots=[ShotSpec(1, image="../../etc/passwd")])
    b.scenelet(None, terminal=True)  # a second root
    b.write_media(assets_root)
    b.insert(conn)
    result = run_cli(
        "assemble",
        b.story_id,
        "--database-url",
        database.conninfo,
        "--assets-root",
        assets_root,
        "--out",
        tmp_path / "out",
        "--json",
    )
    assert result.returncode == 1, result.stderr
    document = json_of(result)
    assert document["ok"] is False and document["storyId"] == b.story_id and document["bundlePath"] is None
    # the traversal path sits behind the unplayable root: still reported (path safety covers every scenelet)
    assert {p["code"] for p in document["problems"]} == {"multiple-roots", "unsafe-asset-path"}
    for problem in document["problems"]:
        assert set(problem) == {"severity", "code", "message", "sceneletId", "sceneletLabel", "shotIndex", "path"}
    assert not (tmp_path / "out" / b.story_id).exists()
    assert "multiple-roots" in result.stderr


def test_strict_turns_warnings_into_failure(conn, database: DatabaseTarget, assets_root: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    b = StoryBuilder()
    b.scenelet(shots=[ShotSpec(1), ShotSpec(2, write_image=False)])  # incomplete + missing media
    b.write_media(assets_root)
    b.insert(conn)
    ok = api.assemble(b.story_id, database=database, assets_root=assets_root, out_dir=tmp_path / "a")
    assert ok.ok and sorted(p.code for p in ok.problems) == ["incomplete-path", "missing-media"]
    strict = api.assemble(b.story_id, database=database, assets_root=assets_root, out_dir=tmp_path / "b", strict=True)
    assert not strict.ok and strict.exit_code == 1
    assert not (tmp_path / "b" / b.story_id).exists()


def test_wrong_format_and_symlink_escape_are_errors(
    conn, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    b = StoryBuilder()
    root = b.scenelet(shots=[ShotSpec(1), ShotSpec(2), ShotSpec(3, write_image=False)])
    b.scenelet(root, terminal=True)
    b.write_media(assets_root)
    b.insert(conn)
    jpeg = assets_root / b.story_id / "shots" / root / "shot-1_key_frame.png"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64)
    secret = tmp_path / "secret.png"
    secret.write_bytes((assets_root / b.story_id / "shots" / root / "shot-2_key_frame.png").read_bytes())
    (assets_root / b.story_id / "shots" / root / "shot-2_key_frame.png").unlink()
    (assets_root / b.story_id / "shots" / root / "shot-2_key_frame.png").symlink_to(secret)
    report = api.check(b.story_id, database=database, assets_root=assets_root)
    found = {(p.code, p.shot_index) for p in report.problems}
    assert ("wrong-media-format", 1) in found and ("unsafe-asset-path", 2) in found and ("missing-media", 3) in found
    assert not report.ok
    line = next(p for p in report.problems if p.code == "wrong-media-format").one_line()
    assert line.startswith(f"error wrong-media-format scenelet-1 ({root}) shot 1 {b.story_id}/shots/")
    assert "not a PNG image" in line


def test_script_breaking_text_is_escaped(conn, database: DatabaseTarget, assets_root: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    nasty = "</script><script>window.__pwned=1</script> \u2028 & <b>"
    b = StoryBuilder(title=nasty)
    root = b.scenelet(prompt=nasty)
    b.scenelet(root, choice_label=nasty, terminal=True)
    b.scenelet(root, choice_label="ok", terminal=True)
    b.write_media(assets_root)
    b.insert(conn)
    assert api.assemble(b.story_id, database=database, assets_root=assets_root, out_dir=tmp_path).ok
    html = (tmp_path / b.story_id / "index.html").read_text()
    assert "<script>window.__pwned" not in html
    data = re.search(r'<script[^>]*type="application/json"[^>]*>(.*?)</script>', html, re.S)
    assert data is not None
    embedded = data.group(1)
    assert not any(ch in embedded for ch in "<>&\u2028\u2029")
    assert json.loads(embedded)["metadata"]["title"] == nasty.strip()
    manifest = json.loads((tmp_path / b.story_id / "manifest.json").read_text())
    assert manifest["metadata"]["title"] == nasty.strip()


def test_exit_codes(database: DatabaseTarget, assets_root: Path, tmp_path: Path) -> None:
    db = ["--database-url", database.conninfo]
    missing = "00000000-0000-4000-8000-000000000000"
    assert run_cli("assemble", "not-a-uuid", *db, "--assets-root", assets_root).returncode == 2
    result = run_cli("assemble", missing, *db, "--assets-root", assets_root, "--out", tmp_path / "o", "--json")
    assert result.returncode == 1 and "was not found" in result.stderr
    assert json_of(result)["ok"] is False
    result = run_cli("assemble", missing, *db, "--assets-root", tmp_path / "nope", "--json")
    assert result.returncode == 3 and "Assets root" in result.stderr and json_of(result)["ok"] is False
    (tmp_path / "file").write_text("x")
    result = run_cli("assemble", missing, *db, "--assets-root", assets_root, "--out", tmp_path / "file")
    assert result.returncode == 3 and "not a folder" in result.stderr
    url = "postgresql://bundler:s3cret-pw@127.0.0.1:9/none"
    result = run_cli("check", missing, "--database-url", url, "--assets-root", assets_root, "--json")
    assert result.returncode == 3
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert json_of(result)["error"]["exitCode"] == 3


def test_batch_with_one_broken_story(conn, database: DatabaseTarget, assets_root: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = branching_story()
    broken = StoryBuilder(title="Broken")
    broken.scenelet(shots=[ShotSpec(1, image=None, audio=None)])
    for b in (good, broken):
        b.write_media(assets_root)
        b.insert(conn)
    result = run_cli(
        "assemble",
        "--all",
        "--database-url",
        database.conninfo,
        "--assets-root",
        assets_root,
        "--out",
        tmp_path,
        "--json",
        "--jobs",
        "2",
    )
    assert result.returncode == 1, result.stderr
    document = json_of(result)
    status = {s["storyId"]: s["ok"] for s in document["stories"]}
    assert status == {good.story_id: True, broken.story_id: False} and document["ok"] is False
    assert (tmp_path / good.story_id / "manifest.json").exists() and not (tmp_path / broken.story_id).exists()
    assert "Assembled 2 stories" in result.stderr


def test_github_format_escapes(conn, database: DatabaseTarget, assets_root: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    b = StoryBuilder()
    b.scenelet(shots=[ShotSpec(1), ShotSpec(2, image="x/100%\nodd.png", write_image=False)])
    b.write_media(assets_root)
    b.insert(conn)
    result = run_cli(
        "check",
        b.story_id,
        "--database-url",
        database.conninfo,
        "--assets-root",
        assets_root,
        env={"GITHUB_ACTIONS": "true"},
    )
    assert result.returncode == 0
    lines = [line for line in result.stdout.splitlines() if line.startswith("::warning")]
    assert len(lines) == 2
    # the newline from the database is shown escaped (not a line break in the annotation); % is workflow-escaped
    assert any("100%25\\x0aodd.png" in line for line in lines)


def test_interrupt_signal_leaves_no_debris(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    """SIGTERM arrives while copying; the staging folder is removed and the old bundle kept."""
    out = tmp_path / "out"
    assert api.assemble(story.story_id, database=database, assets_root=assets_root, out_dir=out).ok
    before = tree_files(out / story.story_id)
    big = assets_root / story.story_id / "music" / "Night Theme.m4a"
    with open(big, "ab") as handle:  # a large file keeps the copy busy long enough to interrupt
        handle.truncate(400 * 1024 * 1024)
    process = subprocess.Popen(
        [
            *__import__("tests.cli_helpers", fromlist=["BUNDLER"]).BUNDLER,
            "assemble",
            story.story_id,
            "--database-url",
            database.conninfo,
            "--assets-root",
            str(assets_root),
            "--out",
            str(out),
            "--overwrite",
            "--jobs",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )
    import time

    deadline = time.monotonic() + 30
    while not any(p.name.startswith(f".{story.story_id}.partial-") for p in out.iterdir()):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    process.terminate()
    process.wait(timeout=30)
    assert process.returncode != 0
    assert tree_files(out / story.story_id) == before
    assert sorted(p.name for p in out.iterdir()) == [story.story_id]
