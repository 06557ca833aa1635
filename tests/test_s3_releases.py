"""``bundler releases``, ``rollback`` and ``prune`` on a real S3 server, and archives of versions
already published (DESIGN §4). Each CLI run in a fresh working directory and TMPDIR."""

from __future__ import annotations

import json
import time
from pathlib import Path

import obstore
import psycopg
import pytest

from bundler.db.connect import DatabaseTarget
from tests.builders import StoryBuilder
from tests.cli_helpers import json_of, run_cli
from tests.media_files import png_bytes
from tests.s3_server import S3Server
from tests.test_s3_incremental import EXPORTED_AT, Runner, long_story, one_key_frame, writes


@pytest.fixture
def runner(tmp_path: Path, database: DatabaseTarget) -> Runner:
    return Runner(tmp_path, database)


def publish_versions(
    conn: psycopg.Connection, runner: Runner, assets_root: Path, out: str, count: int
) -> tuple[StoryBuilder, list[str]]:
    """``count`` versions of one story, each with another key frame; their versions, oldest first."""
    b = long_story(conn, assets_root, scenelets=3)
    versions = []
    for n in range(count):
        if n:
            time.sleep(1.1)  # the store dates objects to the second: one version per second
        (assets_root / one_key_frame(b)).write_bytes(png_bytes(rgb=(n, n, n)))
        result = runner.assemble(b.story_id, "--assets-root", str(assets_root), "--out", out)
        assert result.returncode == 0, result.stderr
        versions.append(json_of(result)["bundlePath"].rsplit("/", 1)[-1])
    return b, versions


def cli(runner: Runner, *args: str) -> tuple[int, dict[str, object], str]:
    home, env = runner.fresh()
    result = run_cli(*args, "--json", env=env, cwd=home)
    return result.returncode, json.loads(result.stdout or "{}"), result.stderr


def test_releases_rollback_and_prune(
    conn: psycopg.Connection, runner: Runner, assets_root: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    out = f"s3://{s3_bucket}/pub"
    b, versions = publish_versions(conn, runner, assets_root, out, 3)
    story = f"{out}/{b.story_id}"

    code, listed, stderr = cli(runner, "releases", story)
    assert code == 0, stderr
    releases = listed["releases"]
    assert isinstance(releases, list)
    assert [r["version"] for r in releases] == versions[::-1]  # most recently published first
    assert [r["current"] for r in releases] == [True, False, False] and listed["current"] == versions[-1]
    assert all(
        r["complete"] and r["files"] == 3 * 2 * 2 + 3 and str(r["exportedAt"]).startswith(EXPORTED_AT[:19])
        for r in releases
    )
    assert all(r["bytes"] > 0 and r["publishedAt"].endswith("Z") for r in releases)

    code, _, stderr = cli(runner, "rollback", story, "0123456789abcdef")
    assert code == 3 and "no published version" in stderr
    code, _, stderr = cli(runner, "rollback", story, "not-a-version")
    assert code == 2
    # a version with a file missing is not rolled back to
    damaged = f"pub/{b.story_id}/{versions[1]}/index.html"
    saved = s3_server.get(s3_bucket, damaged) or b""
    obstore.delete(s3_server.store(s3_bucket), damaged)
    code, _, stderr = cli(runner, "rollback", story, versions[1])
    assert code == 3 and "incomplete" in stderr
    s3_server.put(s3_bucket, damaged, saved)

    etag = s3_server.etag(s3_bucket, f"pub/{b.story_id}/current.json")
    mark = s3_server.mark()
    code, moved, stderr = cli(runner, "rollback", story, versions[0])
    assert code == 0 and moved["moved"] is True, stderr
    pointer_writes = [r for r in writes(s3_server.since(mark)) if r.path.endswith("/current.json")]
    assert [r.if_match for r in pointer_writes] == [etag]  # over the pointer as read, only
    pointer = json.loads(s3_server.get(s3_bucket, f"pub/{b.story_id}/current.json") or b"")
    assert pointer["version"] == versions[0] and pointer["formatVersion"] == 1
    assert pointer["manifestSha256"].startswith(versions[0])
    assert run_cli("verify", story).returncode == 0
    assert cli(runner, "rollback", story, versions[0])[1]["moved"] is False

    mark = s3_server.mark()
    code, plan, stderr = cli(runner, "prune", story, "--keep", "0", "--min-age", "0", "--dry-run")
    assert code == 0, stderr
    assert sorted(plan["deleted"]) == sorted(versions[1:])  # type: ignore[arg-type]
    assert writes(s3_server.since(mark)) == []  # --dry-run deletes nothing
    code, plan, _ = cli(runner, "prune", story, "--keep", "0")  # default --min-age 3600: all too young
    assert code == 0 and plan["deleted"] == []
    before = set(s3_server.keys(s3_bucket, f"pub/{b.story_id}/"))

    code, plan, stderr = cli(runner, "prune", story, "--keep", "1", "--min-age", "0")
    assert code == 0, stderr
    assert plan["deleted"] == [versions[1]]  # the newest kept, and the current one (never deleted)
    after = set(s3_server.keys(s3_bucket, f"pub/{b.story_id}/"))
    gone = before - after
    assert gone and all(versions[1] in key for key in gone)
    assert f"pub/{b.story_id}/{versions[1]}.sources.json" in gone
    assert not [k for k in after if versions[1] in k]
    code, plan, _ = cli(runner, "prune", story, "--keep", "0", "--min-age", "0")
    assert plan["deleted"] == [versions[2]]  # everything but the current one
    assert run_cli("verify", story).returncode == 0
    code, listed, _ = cli(runner, "releases", story)
    assert [r["version"] for r in listed["releases"]] == [versions[0]]  # type: ignore[union-attr]


def test_an_archive_of_a_published_version_is_neither_rebuilt_nor_listed(
    conn: psycopg.Connection, runner: Runner, assets_root: Path, s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    b = long_story(conn, assets_root, scenelets=3)
    s3_server.upload_tree(assets_root, s3_bucket, "media")
    args = ("--assets-root", f"s3://{s3_bucket}/media", "--out", f"s3://{s3_bucket}/a", "--archive", "zip")
    first = runner.assemble(b.story_id, *args)
    assert first.returncode == 0, first.stderr
    (assets_root / one_key_frame(b)).write_bytes(png_bytes(rgb=(7, 7, 7)))
    s3_server.upload_tree(assets_root, s3_bucket, "media")
    second = runner.assemble(b.story_id, *args)  # a new version: its other files copied in the store
    assert second.returncode == 0, second.stderr
    archive_key = json_of(second)["archivePath"].split("/", 3)[3]
    (tmp_path / "v.zip").write_bytes(s3_server.get(s3_bucket, archive_key) or b"")
    verified = run_cli("verify", tmp_path / "v.zip")
    assert verified.returncode == 0, verified.stderr  # every file in it, the copied ones too

    mark = s3_server.mark()
    third = runner.assemble(b.story_id, *args)
    assert third.returncode == 0, third.stderr
    requests = s3_server.since(mark)
    assert writes(requests) == []
    assert [r.method for r in requests if r.path.endswith(".zip")] == ["HEAD"]
    assert not [r for r in requests if "list-type" in r.query and r.query.count("%2F") == 1 and "media" not in r.query]
