"""Media from a bucket and bundles published to one, against a real S3 server (moto on loopback).

The same story is assembled from a local folder and from the same files in a
bucket; every media rule is checked against both sources (``source`` fixture).
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

from bundler import api
from bundler.db.connect import DatabaseTarget
from tests import test_assemble
from tests.builders import ShotSpec, StoryBuilder
from tests.cli_helpers import BUNDLER, json_of, run_cli
from tests.media_files import png_bytes, write_media
from tests.s3_server import SECRET_KEY, S3Server
from tests.test_assemble import tree_files

EXPORTED_AT = "2025-01-02T03:04:05Z"
story = test_assemble.story  # the branching story with all its media, as a fixture here too


def mirror(s3_server: S3Server, bucket: str, assets_root: Path) -> str:
    """The assets folder copied into the bucket under ``media/``; returns the s3:// assets root."""
    s3_server.upload_tree(assets_root, bucket, "media")
    return f"s3://{bucket}/media"


class Source:
    """The assets root as given to bundler: the folder itself, or the same files in a bucket."""

    def __init__(self, kind: str, assets_root: Path, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self.assets_root = assets_root
        self.request = request
        self.server: S3Server | None = None
        self.bucket = ""

    def root(self) -> str:
        """Upload the folder as it is now (S3) and return the assets root to pass to bundler."""
        if self.kind == "local":
            return str(self.assets_root)
        self.server = self.request.getfixturevalue("s3_server")
        self.bucket = self.request.getfixturevalue("s3_bucket")
        return mirror(self.server, self.bucket, self.assets_root)


@pytest.fixture(params=["local", "s3"])
def media(assets_root: Path, request: pytest.FixtureRequest) -> Source:
    return Source(str(request.param), assets_root, request)


# --- same bytes from disk and from a bucket ----------------------------------------------------


def test_bundle_from_a_bucket_is_byte_identical_to_one_from_disk(
    story: StoryBuilder,
    database: DatabaseTarget,
    assets_root: Path,
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    local = api.assemble(
        story.story_id, database=database, assets_root=assets_root, out_dir=tmp_path / "disk", exported_at=EXPORTED_AT
    )
    remote = api.assemble(
        story.story_id,
        database=database,
        assets_root=mirror(s3_server, s3_bucket, assets_root),
        out_dir=tmp_path / "bucket",
        exported_at=EXPORTED_AT,
        jobs=3,
    )
    assert local.ok and remote.ok, (local.problems, remote.problems)
    disk_files = tree_files(tmp_path / "disk" / story.story_id)
    assert len(disk_files) == 14
    assert tree_files(tmp_path / "bucket" / story.story_id) == disk_files


def test_checks_read_a_range_and_a_cold_assemble_reads_each_object_once(
    story: StoryBuilder,
    database: DatabaseTarget,
    assets_root: Path,
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    root = mirror(s3_server, s3_bucket, assets_root)
    media_bytes = sum(p.stat().st_size for p in assets_root.rglob("*") if p.is_file())
    mark = s3_server.mark()
    report = api.check(story.story_id, database=database, assets_root=root)
    checks = [r for r in s3_server.since(mark) if r.method == "GET" and r.path.startswith(f"/{s3_bucket}/media/")]
    files = report.stats["files"]
    checks = [r for r in checks if not r.path.endswith(".bundler-probe")]  # the start-up probe: a 404
    assert files == 11 and len(checks) == files  # the media here are small: one ranged GET covers each
    assert all(r.range and r.range.startswith("bytes=0-") for r in checks)

    mark = s3_server.mark()
    assert api.assemble(story.story_id, database=database, assets_root=root, out_dir=tmp_path / "out").ok
    gets = [r for r in s3_server.since(mark) if r.method == "GET" and not r.path.endswith(".bundler-probe")]
    assert [r for r in gets if r.range] == []  # checked from the downloaded bytes: no probe read
    assert sorted(r.path for r in gets) == sorted({r.path for r in gets})  # each object once
    assert len(gets) == files and sum(r.sent for r in gets) == media_bytes


# --- the media rules, on both sources ---------------------------------------------------------


def test_unsafe_paths_are_rejected_before_any_request(
    conn: psycopg.Connection,
    media: Source,
    database: DatabaseTarget,
    assets_root: Path,
) -> None:
    b = StoryBuilder()
    b.scenelet(shots=[ShotSpec(1), ShotSpec(2, image="../../outside.png"), ShotSpec(3, audio="/generated/../x.wav")])
    b.write_media(assets_root)
    write_media(assets_root.parent / "outside.png", "image")
    b.insert(conn)
    root = media.root()
    mark = media.server.mark() if media.server else 0
    report = api.check(b.story_id, database=database, assets_root=root)
    unsafe = [p for p in report.problems if p.code == "unsafe-asset-path"]
    assert [(p.shot_index, p.severity) for p in unsafe] == [(2, "error"), (3, "error")]
    assert not report.ok
    if media.server:
        asked = " ".join(r.path for r in media.server.since(mark))
        assert "outside" not in asked and "x.wav" not in asked


def test_missing_media_is_a_warning(
    conn: psycopg.Connection,
    media: Source,
    database: DatabaseTarget,
    assets_root: Path,
    tmp_path: Path,
) -> None:
    b = StoryBuilder()
    b.scenelet(shots=[ShotSpec(1), ShotSpec(2, write_audio=False)], terminal=True)
    b.write_media(assets_root)
    b.insert(conn)
    report = api.assemble(b.story_id, database=database, assets_root=media.root(), out_dir=tmp_path / "out")
    assert report.ok
    assert [(p.code, p.severity, p.shot_index) for p in report.problems] == [("missing-media", "warning", 2)]
    manifest = json.loads((tmp_path / "out" / b.story_id / "manifest.json").read_text())
    assert manifest["scenelets"][0]["shots"][1]["audioPath"] is None


def short_story(conn: psycopg.Connection, assets_root: Path, shots: int) -> tuple[StoryBuilder, Path]:
    """One terminal scenelet with media on disk; returns it and the key frame file of its last shot."""
    b = StoryBuilder()
    b.scenelet(shots=shots, terminal=True)
    b.write_media(assets_root)
    b.insert(conn)
    stored = b.image_path(b.scenelets[0].id, b.scenelets[0].shots[-1])
    assert stored is not None
    return b, assets_root / stored


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"GIF89a" + b"\0" * 100, "is not a PNG image"),
        (png_bytes()[:40], "no IEND chunk"),  # cut short: the same structure rules on disk and in a bucket
        (png_bytes()[:8] + b"\0" * 60, "IHDR"),
    ],
)
def test_wrong_format_is_an_error(
    conn: psycopg.Connection,
    media: Source,
    database: DatabaseTarget,
    assets_root: Path,
    content: bytes,
    message: str,
) -> None:
    b, key_frame = short_story(conn, assets_root, shots=2)
    key_frame.write_bytes(content)
    report = api.check(b.story_id, database=database, assets_root=media.root())
    assert not report.ok
    assert [(p.code, p.shot_index, message in p.message) for p in report.problems] == [("wrong-media-format", 2, True)]


def test_a_large_png_is_checked_with_ranged_reads_not_downloaded(
    conn: psycopg.Connection,
    database: DatabaseTarget,
    assets_root: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    b, big = short_story(conn, assets_root, shots=1)
    big.write_bytes(big.read_bytes()[:-12] + b"\0" * 3_000_000 + big.read_bytes()[-12:])  # padded before IEND
    root = mirror(s3_server, s3_bucket, assets_root)
    mark = s3_server.mark()
    assert api.check(b.story_id, database=database, assets_root=root).ok
    png = [r for r in s3_server.since(mark) if r.path.endswith(".png")]
    assert png and all(r.range for r in png)  # never the whole 3 MB


# --- publishing to a bucket -------------------------------------------------------------------


def assemble_cli(story_id: str, database: DatabaseTarget, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "assemble", story_id, "--database-url", database.conninfo, "--exported-at", EXPORTED_AT, "--json", *args
    )


def test_publish_to_a_bucket_then_verify_and_republish_uploads_nothing(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    out = f"s3://{s3_bucket}/releases"
    result = assemble_cli(story.story_id, database, "--assets-root", str(assets_root), "--out", out)
    assert result.returncode == 0, result.stderr
    report = json_of(result)
    pointer = json.loads(s3_server.get(s3_bucket, f"releases/{story.story_id}/current.json") or b"")
    version = pointer["version"]
    assert report["bundlePath"] == f"{out}/{story.story_id}/{version}"
    keys = s3_server.keys(s3_bucket, f"releases/{story.story_id}/{version}/")
    assert len(keys) == 14 and f"releases/{story.story_id}/{version}/manifest.json" in keys
    manifest = s3_server.get(s3_bucket, f"releases/{story.story_id}/{version}/manifest.json") or b""
    import hashlib

    assert hashlib.sha256(manifest).hexdigest().startswith(version)

    for url in (f"{out}/{story.story_id}", report["bundlePath"]):
        verified = run_cli("verify", url, "--json")
        assert verified.returncode == 0, verified.stderr
        assert json_of(verified)["stats"]["files"] == 14

    mark = s3_server.mark()
    again = assemble_cli(story.story_id, database, "--assets-root", str(assets_root), "--out", out, "--overwrite")
    assert again.returncode == 0, again.stderr
    assert json_of(again)["bundlePath"] == report["bundlePath"]
    writes = [r for r in s3_server.since(mark) if r.method in ("PUT", "POST", "DELETE")]
    assert writes == []

    refused = assemble_cli(story.story_id, database, "--assets-root", str(assets_root), "--out", out)
    assert refused.returncode == 3
    assert "--overwrite" in json_of(refused)["error"]["message"]


def test_archive_is_uploaded_beside_the_version_and_matches_the_local_one(
    story: StoryBuilder,
    database: DatabaseTarget,
    assets_root: Path,
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    local = assemble_cli(
        story.story_id, database, "--assets-root", str(assets_root), "--out", str(tmp_path), "--archive", "zip"
    )
    assert local.returncode == 0, local.stderr
    remote = assemble_cli(
        story.story_id, database, "--assets-root", str(assets_root), "--out", f"s3://{s3_bucket}", "--archive", "zip"
    )
    assert remote.returncode == 0, remote.stderr
    document = json_of(remote)
    version = document["bundlePath"].rsplit("/", 1)[-1]
    assert document["archivePath"] == f"s3://{s3_bucket}/{story.story_id}/{version}.zip"
    uploaded = s3_server.get(s3_bucket, f"{story.story_id}/{version}.zip")
    assert uploaded == (tmp_path / f"{story.story_id}.zip").read_bytes()


def test_verify_finds_a_damaged_object(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    out = f"s3://{s3_bucket}/p"
    result = assemble_cli(story.story_id, database, "--assets-root", str(assets_root), "--out", out)
    assert result.returncode == 0, result.stderr
    version = json_of(result)["bundlePath"].rsplit("/", 1)[-1]
    key = next(k for k in s3_server.keys(s3_bucket, f"p/{story.story_id}/{version}/assets/") if k.endswith(".wav"))
    s3_server.put(s3_bucket, key, (s3_server.get(s3_bucket, key) or b"")[:-1] + b"!")
    s3_server.put(s3_bucket, f"p/{story.story_id}/{version}/extra.txt", b"x")
    verified = run_cli("verify", f"{out}/{story.story_id}", "--json")
    assert verified.returncode == 1
    codes = {(p["code"], p["path"]) for p in json_of(verified)["problems"]}
    assert codes == {("checksum-mismatch", key.split(f"{version}/", 1)[1]), ("extra-file", "extra.txt")}


def test_verify_of_nothing_in_a_bucket_is_unreadable(s3_bucket: str) -> None:
    result = run_cli("verify", f"s3://{s3_bucket}/no/such/story", "--json")
    assert result.returncode == 3
    assert "no current.json" in json_of(result)["error"]["message"]


def test_a_killed_upload_leaves_the_pointer_on_the_old_version(
    conn: psycopg.Connection,
    database: DatabaseTarget,
    assets_root: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    b = StoryBuilder()
    previous = None
    for _ in range(150):  # a long line of scenelets: many objects to upload
        previous = b.scenelet(previous, shots=2)
    b.write_media(assets_root)
    b.insert(conn)
    out = f"s3://{s3_bucket}/r"
    first = assemble_cli(b.story_id, database, "--assets-root", str(assets_root), "--out", out)
    assert first.returncode == 0, first.stderr
    old = json.loads(s3_server.get(s3_bucket, f"r/{b.story_id}/current.json") or b"")

    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    args = [*BUNDLER, "assemble", b.story_id, "--database-url", database.conninfo, "--assets-root", str(assets_root)]
    args += ["--out", out, "--overwrite", "--jobs", "1", "--exported-at", "2030-01-01T00:00:00Z"]
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        new_objects: list[str] = []
        while time.monotonic() < deadline and process.poll() is None:
            new_objects = [  # r/<story>/<version>/<file>
                k for k in s3_server.keys(s3_bucket, f"r/{b.story_id}/") if k.count("/") > 2 and old["version"] not in k
            ]
            if new_objects:
                break
            time.sleep(0.005)
        assert new_objects, "the new version never started uploading"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the upload finished before it could be killed"
    pointer = json.loads(s3_server.get(s3_bucket, f"r/{b.story_id}/current.json") or b"")
    assert pointer == old
    new_version = new_objects[0].split("/")[2]
    assert f"r/{b.story_id}/{new_version}/manifest.json" not in s3_server.keys(s3_bucket, f"r/{b.story_id}/")
    verified = run_cli("verify", f"{out}/{b.story_id}")
    assert verified.returncode == 0, verified.stderr

    again = run_cli(*args[3:], "--json")
    assert again.returncode == 0, again.stderr
    assert json_of(again)["bundlePath"].endswith(new_version)
    assert run_cli("verify", f"{out}/{b.story_id}").returncode == 0


# --- configuration and environment errors -----------------------------------------------------


def test_unreachable_storage_is_one_line_exit_3(
    story: StoryBuilder, database: DatabaseTarget, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server
) -> None:
    import socket

    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**s3_server.env(), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    for args in (("--assets-root", "s3://media/x"), ("--out", "s3://bundles/x")):
        result = run_cli("assemble", story.story_id, "--database-url", database.conninfo, *args, env=env)
        assert result.returncode == 3, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "S3" in lines[0] and f"127.0.0.1:{port}" in lines[0], lines
        assert SECRET_KEY not in result.stderr + result.stdout
    verify = run_cli("verify", "s3://bundles/x", env=env)
    assert verify.returncode == 3 and len(verify.stderr.strip().splitlines()) == 1


def test_bad_credentials_are_exit_3_without_the_keys(
    story: StoryBuilder, database: DatabaseTarget, s3_server: S3Server, s3_bucket: str
) -> None:
    import urllib.request

    # from now on the server checks signatures against its own (IAM) users: ours is unknown to it
    def allow_unauthenticated(count: bytes) -> bytes:
        url = f"{s3_server.endpoint}/moto-api/reset-auth"
        request = urllib.request.Request(url, data=count, method="POST", headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request) as response:
            return str(json.loads(response.read())["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]).encode()

    previous = allow_unauthenticated(b"0")
    try:
        result = run_cli(
            "check", story.story_id, "--database-url", database.conninfo, "--assets-root", f"s3://{s3_bucket}", "--json"
        )
    finally:
        allow_unauthenticated(previous)
    assert result.returncode == 3, result.stderr
    message = json_of(result)["error"]["message"]
    assert "credentials" in message
    assert SECRET_KEY not in result.stderr + result.stdout


def test_missing_credentials_and_bad_urls(story: StoryBuilder, database: DatabaseTarget, s3_server: S3Server) -> None:
    env = {"AWS_ENDPOINT_URL": s3_server.endpoint, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    result = run_cli("check", story.story_id, "--database-url", database.conninfo, "--assets-root", "s3://bkt", env=env)
    assert result.returncode == 3 and "AWS_ACCESS_KEY_ID" in result.stderr
    for bad in ("s3://", "s3://Bad_Bucket!/x", "s3://bucket/a/../b"):
        result = run_cli("check", story.story_id, "--database-url", database.conninfo, "--assets-root", bad)
        assert result.returncode == 2, (bad, result.stderr)


def test_without_the_s3_extra_the_error_names_it(story: StoryBuilder, database: DatabaseTarget, tmp_path: Path) -> None:
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "obstore").mkdir()
    (blocker / "obstore" / "__init__.py").write_text("raise ImportError('obstore is not installed')\n")
    pythonpath = os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])
    result = run_cli(
        "check",
        story.story_id,
        "--database-url",
        database.conninfo,
        "--assets-root",
        "s3://bucket/x",
        env={"PYTHONPATH": pythonpath, "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"},
    )
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "error: S3 storage needs the optional extra: pip install 'story-bundler[s3]' (obstore)."
    ]


def test_transient_failures_are_retried(
    story: StoryBuilder,
    database: DatabaseTarget,
    assets_root: Path,
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    root = mirror(s3_server, s3_bucket, assets_root)
    keys = [k for k in s3_server.keys(s3_bucket, "media/") if k.endswith(".wav")]
    s3_server.unavailable_once.add(f"/{s3_bucket}/{keys[0]}")
    s3_server.cut_once.add(f"/{s3_bucket}/{keys[1]}")
    mark = s3_server.mark()
    remote = api.assemble(
        story.story_id, database=database, assets_root=root, out_dir=tmp_path / "bucket", exported_at=EXPORTED_AT
    )
    assert remote.ok, remote.problems
    assert not s3_server.unavailable_once and not s3_server.cut_once  # both faults happened
    requests = s3_server.since(mark)
    unavailable, cut = (f"/{s3_bucket}/{key}" for key in keys[:2])
    assert [r.range for r in requests if r.path == unavailable] == [None, None]  # 503, again
    resumed = [r.range for r in requests if r.path == cut]  # one read, cut off, then the rest of it
    assert resumed[0] is None and resumed[1] is not None and not resumed[1].startswith("bytes=0-")
    api.assemble(
        story.story_id, database=database, assets_root=assets_root, out_dir=tmp_path / "disk", exported_at=EXPORTED_AT
    )
    assert tree_files(tmp_path / "bucket" / story.story_id) == tree_files(tmp_path / "disk" / story.story_id)


def test_ranged_reads_fetch_small_windows_of_a_large_object(s3_server: S3Server, s3_bucket: str) -> None:
    from bundler.storage.s3.client import S3Client
    from bundler.storage.s3.source import HEAD_WINDOW, RangedObject

    data = bytes(range(256)) * 2000  # 512,000 bytes
    s3_server.put(s3_bucket, "big.bin", data)
    mark = s3_server.mark()
    found = RangedObject(S3Client(s3_bucket), "big.bin")  # the head window, and the size
    assert found.info.size == len(data) and found.read_at(0, 33) == data[:33]
    assert found.read_at(len(data) - 12, 12) == data[-12:]  # the tail window
    assert found.read_at(len(data) - 1000, 16) == data[-1000:-984]  # already there
    assert found.read_at(200_000, 16) == data[200_000:200_016]  # a window where the read falls
    assert found.read_at(len(data) - 4, 100) == data[-4:]  # clipped at the end
    ranges = [r.range for r in s3_server.since(mark)]
    tail = len(data) - HEAD_WINDOW
    assert ranges == [
        f"bytes=0-{HEAD_WINDOW - 1}",
        f"bytes={tail}-{len(data) - 1}",
        f"bytes=200000-{200_000 + HEAD_WINDOW - 1}",
    ]


def test_an_object_replaced_after_its_check_is_not_copied(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    from bundler.errors import MediaChangedError
    from bundler.pipeline.plan.types import FileCopy, MediaRequest
    from bundler.storage import open_source
    from tests.media_files import png_bytes

    s3_server.put(s3_bucket, "m/a.png", png_bytes())
    source = open_source(f"s3://{s3_bucket}/m")
    request = MediaRequest("a.png", "image")
    checked = source.probe([request], 1)[request].source
    assert checked is not None
    s3_server.put(s3_bucket, "m/a.png", png_bytes()[:-1] + b"!")  # replaced between the check and the copy
    with pytest.raises(MediaChangedError, match="changed while bundling"):
        source.copy(FileCopy("assets/a.png", checked, "image"), tmp_path / "a.png", None)
