"""Releases on object storage cost what changed (DESIGN §4, issue 20), measured on the wire.

Every run is the real CLI in a fresh working directory and TMPDIR, as on a CI runner that
keeps nothing between runs; the moto server's request log counts requests and bytes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from bundler.db.connect import DatabaseTarget
from tests.builders import StoryBuilder
from tests.cli_helpers import BUNDLER, json_of, run_cli
from tests.media_files import png_bytes
from tests.s3_server import Request, S3Server

EXPORTED_AT = "2025-01-02T03:04:05Z"


class Runner:
    """The CLI as a fresh CI runner: a new empty working directory and TMPDIR for every run."""

    def __init__(self, tmp_path: Path, database: DatabaseTarget) -> None:
        self.tmp_path = tmp_path
        self.database = database
        self.runs = 0

    def fresh(self) -> tuple[Path, dict[str, str]]:
        self.runs += 1
        home = self.tmp_path / f"runner-{self.runs}"
        (home / "tmp").mkdir(parents=True)
        return home, {"TMPDIR": str(home / "tmp")}

    def assemble(self, story_id: str, *args: str) -> subprocess.CompletedProcess[str]:
        home, env = self.fresh()
        result = run_cli(
            "assemble", story_id, "--database-url", self.database.conninfo, "--exported-at", EXPORTED_AT, "--json",
            "--overwrite", *args, env=env, cwd=home,
        )  # fmt: skip
        debris = [p for p in (home / "tmp").rglob("*") if not p.is_dir() or any(p.iterdir())]
        assert debris == [] or result.returncode != 0, f"the run left debris in TMPDIR: {debris}"
        return result


@pytest.fixture
def runner(tmp_path: Path, database: DatabaseTarget) -> Runner:
    return Runner(tmp_path, database)


def long_story(conn: psycopg.Connection, assets_root: Path, scenelets: int = 60) -> StoryBuilder:
    b = StoryBuilder()
    previous = None
    for _ in range(scenelets):
        previous = b.scenelet(previous, shots=2)
    b.write_media(assets_root)
    b.insert(conn)
    return b


def one_key_frame(b: StoryBuilder) -> str:
    scenelet = b.scenelets[len(b.scenelets) // 2]
    stored = b.image_path(scenelet.id, scenelet.shots[0])
    assert stored is not None
    return stored


def writes(requests: list[Request]) -> list[Request]:
    return [r for r in requests if r.method in ("PUT", "POST", "DELETE")]


def uploads(requests: list[Request]) -> list[Request]:
    return [r for r in writes(requests) if not r.copy_source]


def media_gets(requests: list[Request], bucket: str) -> list[Request]:
    return [r for r in requests if r.method == "GET" and r.path.startswith(f"/{bucket}/media/") and r.status < 400]


def pointer_of(s3_server: S3Server, bucket: str, key: str) -> dict[str, str]:
    return json.loads(s3_server.get(bucket, key) or b"{}")  # type: ignore[no-any-return]


@pytest.mark.parametrize("media_in", ["folder", "bucket"])
def test_a_one_change_republish_sends_only_what_changed(
    conn: psycopg.Connection,
    runner: Runner,
    assets_root: Path,
    s3_server: S3Server,
    s3_bucket: str,
    media_in: str,
) -> None:
    b = long_story(conn, assets_root)
    changed = one_key_frame(b)
    if media_in == "bucket":
        s3_server.upload_tree(assets_root, s3_bucket, "media")
    root = f"s3://{s3_bucket}/media" if media_in == "bucket" else str(assets_root)
    out = f"s3://{s3_bucket}/releases"
    first = runner.assemble(b.story_id, "--assets-root", root, "--out", out)
    assert first.returncode == 0, first.stderr
    files = json_of(first)["stats"]["files"]
    old = pointer_of(s3_server, s3_bucket, f"releases/{b.story_id}/current.json")
    old_etag = s3_server.etag(s3_bucket, f"releases/{b.story_id}/current.json")

    frame = png_bytes(rgb=(200, 10, 10))
    (assets_root / changed).write_bytes(frame)
    if media_in == "bucket":
        s3_server.put(s3_bucket, f"media/{changed}", frame)
    mark = s3_server.mark()
    again = runner.assemble(b.story_id, "--assets-root", root, "--out", out)
    assert again.returncode == 0, again.stderr
    requests = s3_server.since(mark)
    new = pointer_of(s3_server, s3_bucket, f"releases/{b.story_id}/current.json")
    assert new["version"] != old["version"]

    sent = uploads(requests)
    names = sorted(r.path.rsplit("/", 1)[-1] for r in sent)
    # index.html embeds no file list: unchanged here, so it is copied in the store like the media
    assert names == sorted(["1_key_frame.png", "manifest.json", "SHA256SUMS", "current.json",
                            f"{new['version']}.sources.json"])  # fmt: skip
    version = f"/{s3_bucket}/releases/{b.story_id}/{new['version']}/"
    texts = sum(len(s3_server.get(s3_bucket, f"releases/{b.story_id}/{new['version']}/{name}") or b"")
                for name in ("manifest.json", "SHA256SUMS"))  # fmt: skip
    record = len(s3_server.get(s3_bucket, f"releases/{b.story_id}/{new['version']}.sources.json") or b"")
    pointer = len(s3_server.get(s3_bucket, f"releases/{b.story_id}/current.json") or b"")
    assert sum(r.received for r in requests) == len(frame) + texts + record + pointer  # the byte budget
    copies = [r for r in writes(requests) if r.copy_source]
    assert len(copies) == files - 3 and all(r.path.startswith(version) for r in copies)  # the rest: in the store
    assert all(f"/{old['version']}/" in (r.copy_source or "") for r in copies)
    conditional = [r for r in sent if r.path.endswith("/current.json")]
    assert [(r.if_match, r.if_none_match) for r in conditional] == [(old_etag, None)]  # moved from the old one
    if media_in == "bucket":
        assert [r.path for r in media_gets(requests, s3_bucket)] == [f"/{s3_bucket}/media/{changed}"]  # read once
    print(f"\n[{media_in}] {files} files, one changed: {len(requests)} requests, {len(sent)} uploads "
          f"({sum(r.received for r in requests)} bytes), {len(copies)} server-side copies, "
          f"{sum(r.sent for r in media_gets(requests, s3_bucket))} media bytes read")  # fmt: skip
    verified = run_cli("verify", f"{out}/{b.story_id}")
    assert verified.returncode == 0, verified.stderr


def test_an_unchanged_story_from_a_bucket_reads_no_media_and_writes_nothing(
    conn: psycopg.Connection, runner: Runner, assets_root: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    b = long_story(conn, assets_root)
    s3_server.upload_tree(assets_root, s3_bucket, "media")
    args = ("--assets-root", f"s3://{s3_bucket}/media", "--out", f"s3://{s3_bucket}/out")
    first = runner.assemble(b.story_id, *args)
    assert first.returncode == 0, first.stderr
    files = json_of(first)["stats"]["files"]
    mark = s3_server.mark()
    again = runner.assemble(b.story_id, *args)
    assert again.returncode == 0, again.stderr
    assert json_of(again)["bundlePath"] == json_of(first)["bundlePath"]
    requests = s3_server.since(mark)
    assert media_gets(requests, s3_bucket) == []  # trusted from the source record: not one read
    assert writes(requests) == []
    assert len(requests) <= files // 10 + 12, [(r.method, r.path, r.query) for r in requests]
    print(f"\nunchanged, {files} files: {len(requests)} requests, {sum(r.sent for r in requests)} bytes read")

    # a record that does not match (another ETag) is not trusted: that object is read again, once
    record_key = f"out/{b.story_id}/{json_of(first)['bundlePath'].rsplit('/', 1)[-1]}.sources.json"
    record = json.loads(s3_server.get(s3_bucket, record_key) or b"")
    target, entry = sorted(record["files"].items())[0]
    entry["etag"] = '"0000"'
    s3_server.put(s3_bucket, record_key, json.dumps(record).encode())
    mark = s3_server.mark()
    assert runner.assemble(b.story_id, *args).returncode == 0
    read = media_gets(s3_server.since(mark), s3_bucket)
    assert [r.path for r in read] == [f"/{s3_bucket}/{entry['source'].split('/', 3)[3]}"]
    s3_server.put(s3_bucket, record_key, b"\xff not json")  # unreadable: every object read, no error
    mark = s3_server.mark()
    assert runner.assemble(b.story_id, *args).returncode == 0
    assert len(media_gets(s3_server.since(mark), s3_bucket)) == files - 3
    del target


def test_the_pointer_moves_only_from_the_version_the_run_started_from(
    conn: psycopg.Connection,
    database: DatabaseTarget,
    runner: Runner,
    assets_root: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    b = long_story(conn, assets_root, scenelets=150)
    out = f"s3://{s3_bucket}/r"
    first = runner.assemble(b.story_id, "--assets-root", str(assets_root), "--out", out)
    assert first.returncode == 0, first.stderr
    started_from = pointer_of(s3_server, s3_bucket, f"r/{b.story_id}/current.json")["version"]
    for path in sorted(assets_root.rglob("*.png")):
        path.write_bytes(png_bytes(rgb=(1, 2, 3)))  # every key frame changed: a long upload

    home, env = runner.fresh()
    args = [*BUNDLER, "assemble", b.story_id, "--database-url", database.conninfo, "--assets-root", str(assets_root)]
    args += ["--out", out, "--overwrite", "--jobs", "1", "--exported-at", "2030-01-01T00:00:00Z"]
    slow = subprocess.Popen(
        args, env={**os.environ, **env}, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        mark = s3_server.mark()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and slow.poll() is None:
            if any(r.method == "PUT" and not r.copy_source for r in s3_server.since(mark)):
                break  # it has started uploading its version
            time.sleep(0.002)
        slow.send_signal(signal.SIGSTOP)
        assert slow.poll() is None, "the first publisher finished before it could be paused"
        (assets_root / one_key_frame(b)).write_bytes(png_bytes(rgb=(9, 9, 9)))
        other = runner.assemble(b.story_id, "--assets-root", str(assets_root), "--out", out)
        assert other.returncode == 0, other.stderr
        newer = pointer_of(s3_server, s3_bucket, f"r/{b.story_id}/current.json")["version"]
        slow.send_signal(signal.SIGCONT)
        _, stderr = slow.communicate(timeout=120)
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.wait()
    assert slow.returncode == 3, stderr
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1 and newer in lines[0] and started_from in lines[0], lines
    assert pointer_of(s3_server, s3_bucket, f"r/{b.story_id}/current.json")["version"] == newer
    mine = lines[0].split("published version ", 1)[1].split()[0]
    keys = s3_server.keys(s3_bucket, f"r/{b.story_id}/{mine}/")
    assert f"r/{b.story_id}/{mine}/manifest.json" in keys  # its version stays, complete, for a later run
    assert run_cli("verify", f"{out}/{b.story_id}/{mine}").returncode == 0


def test_an_interrupt_abandons_requests_to_a_stalled_store_within_two_seconds(
    conn: psycopg.Connection,
    database: DatabaseTarget,
    runner: Runner,
    assets_root: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    b = long_story(conn, assets_root, scenelets=100)
    home, env = runner.fresh()
    args = [*BUNDLER, "assemble", b.story_id, "--database-url", database.conninfo, "--assets-root", str(assets_root)]
    args += ["--out", f"s3://{s3_bucket}/x", "--jobs", "1", "--json"]
    process = subprocess.Popen(
        args, env={**os.environ, **env}, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        mark = s3_server.mark()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if any(r.method == "PUT" for r in s3_server.since(mark)):
                break
            time.sleep(0.002)
        s3_server.resume.clear()
        s3_server.stall.set()  # from now on the store answers nothing
        time.sleep(0.5)
        assert process.poll() is None, "the publish finished before the store stalled"
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
        elapsed = time.monotonic() - signalled
    finally:
        s3_server.stall.clear()
        s3_server.resume.set()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 143, stderr
    assert elapsed < 2.0, elapsed
    document = json.loads(stdout)
    assert document["ok"] is False and document["error"]["exitCode"] == 143
    assert s3_server.get(s3_bucket, f"x/{b.story_id}/current.json") is None  # nothing published
    print(f"\nSIGTERM with the store stalled: exited in {elapsed:.2f} s")
