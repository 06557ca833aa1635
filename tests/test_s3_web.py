"""``assemble --web`` to an ``s3://`` destination (issue 18 §1): a source whose bytes did not change
is never encoded again. The published version's source record keeps, for each encoded file, its
source's SHA-256 and the encoded file's; the next run copies that file in the store instead of
encoding it. Real PostgreSQL, moto's S3 server with its request log, the real encoders (counted)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import bundler.media.encode
from bundler import api
from bundler.db.connect import DatabaseTarget
from bundler.media.encode import WebSettings
from tests import test_web_profile
from tests.builders import StoryBuilder
from tests.media_files import png_bytes
from tests.s3_server import Request, S3Server

WEB = WebSettings()
MEDIA = (".webp", ".m4a", ".png", ".wav")


story = test_web_profile.story  # the same small branching story with music, as a fixture here too


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every encoder call of this test (the build calls the encoders through the module)."""
    seen: list[str] = []
    for name, kind in (("encode_key_frame", "webp"), ("encode_narration", "m4a")):
        original = getattr(bundler.media.encode, name)

        def counted(source: Any, settings: WebSettings, _original: Any = original, _kind: str = kind) -> bytes:
            seen.append(_kind)
            return _original(source, settings)  # type: ignore[no-any-return]

        monkeypatch.setattr(bundler.media.encode, name, counted)
    return seen


class Publisher:
    """``api.assemble`` into ``s3://<bucket>/out`` from a folder or from the bucket's ``media/``."""

    def __init__(self, database: DatabaseTarget, server: S3Server, bucket: str, root: Path, media_in: str) -> None:
        self.database, self.server, self.bucket, self.folder = database, server, bucket, root
        self.in_bucket = media_in == "bucket"
        if self.in_bucket:
            server.upload_tree(root, bucket, "media")
        self.root = f"s3://{bucket}/media" if self.in_bucket else str(root)
        self.runs = 0

    def assemble(self, story_id: str, web: WebSettings | None = WEB) -> api.StoryReport:
        self.runs += 1  # another export time each run: a new version, its unchanged files copied in the store
        report = api.assemble(
            story_id,
            api.AssembleOptions(web=web),
            database=self.database,
            assets_root=self.root,
            out_dir=f"s3://{self.bucket}/out",
            overwrite=True,
            exported_at=f"2025-01-0{self.runs}T00:00:00Z",
        )
        assert report.ok, report.problems
        return report

    def change(self, relative: str, data: bytes) -> None:
        (self.folder / relative).write_bytes(data)
        if self.in_bucket:
            self.server.put(self.bucket, f"media/{relative}", data)

    def key(self, report: api.StoryReport, name: str) -> str:
        return f"{str(report.bundle_path).split('/', 3)[3]}/{name}"

    def media(self, report: api.StoryReport) -> list[dict[str, Any]]:
        return [e for e in self.manifest(report)["files"] if e["path"].startswith("assets/")]

    def manifest(self, report: api.StoryReport) -> dict[str, Any]:
        return json.loads(self.server.get(self.bucket, self.key(report, "manifest.json")) or b"")  # type: ignore[no-any-return]


@pytest.fixture(params=["folder", "bucket"])
def publisher(
    request: pytest.FixtureRequest, database: DatabaseTarget, s3_server: S3Server, s3_bucket: str, assets_root: Path
) -> Publisher:
    return Publisher(database, s3_server, s3_bucket, assets_root, request.param)


def media_uploads(requests: list[Request]) -> list[Request]:
    """Media sent through the runner: PUTs of media files that are no server-side copies."""
    return [r for r in requests if r.method == "PUT" and not r.copy_source and r.path.endswith(MEDIA)]


def media_reads(requests: list[Request], bucket: str) -> list[Request]:
    return [r for r in requests if r.method == "GET" and r.path.startswith(f"/{bucket}/media/") and r.status < 400]


def test_a_republish_encodes_only_what_changed(
    story: StoryBuilder, publisher: Publisher, s3_server: S3Server, calls: list[str]
) -> None:
    mark = s3_server.mark()
    first = publisher.assemble(story.story_id)
    first_sent = sum(r.received for r in s3_server.since(mark))
    assert sorted(calls) == ["m4a"] * 5 + ["webp"] * 4
    assert first.stats["web"]["encoded"] == 9
    calls.clear()

    mark = s3_server.mark()
    again = publisher.assemble(story.story_id)
    requests = s3_server.since(mark)
    assert calls == []  # nothing encoded again
    assert (again.stats["web"]["encoded"], again.stats["web"]["reused"]) == (0, 9)
    assert again.bundle_path != first.bundle_path  # a new version (another export time) ...
    assert media_uploads(requests) == []  # ... whose media are all copied in the store
    if publisher.in_bucket:
        assert media_reads(requests, publisher.bucket) == []  # trusted from the record: not one read
    sent = sum(r.received for r in requests)
    assert publisher.media(again) == publisher.media(first)
    assert api.verify(str(again.bundle_path)).ok

    left = story.left  # type: ignore[attr-defined]
    changed = f"{story.story_id}/shots/{left}/shot-1_key_frame.png"
    publisher.change(changed, png_bytes(rgb=(200, 30, 30)))
    mark = s3_server.mark()
    third = publisher.assemble(story.story_id)
    requests = s3_server.since(mark)
    assert calls == ["webp"]  # the changed key frame alone
    assert (third.stats["web"]["encoded"], third.stats["web"]["reused"]) == (1, 8)
    assert [r.path.rsplit("/", 1)[-1] for r in media_uploads(requests)] == ["1_key_frame.webp"]
    if publisher.in_bucket:
        assert [r.path for r in media_reads(requests, publisher.bucket)] == [f"/{publisher.bucket}/media/{changed}"]
    assert api.verify(str(third.bundle_path)).ok
    print(f"\n[{'bucket' if publisher.in_bucket else 'folder'}] first publish: 9 encoder calls, {first_sent} bytes "
          f"sent; unchanged republish: 0 encoder calls, {sent} bytes sent (no media); one key frame changed: "
          f"1 encoder call, "
          f"{sum(r.received for r in requests)} bytes sent")  # fmt: skip


def test_a_master_publish_after_a_web_publish_puts_master_bytes_under_master_names(
    story: StoryBuilder, publisher: Publisher, assets_root: Path
) -> None:
    """The web version's record names the sources the master needs, but holds only encodings of them:
    a key frame is never copied in the store from a .webp, nor narration from an .m4a."""
    publisher.assemble(story.story_id)
    master = publisher.assemble(story.story_id, web=None)
    assert "web" not in master.stats
    assert api.verify(str(master.bundle_path)).ok
    files = publisher.manifest(master)["files"]
    media = [e for e in files if e["path"].startswith("assets/")]
    assert {e["path"].rsplit(".", 1)[1] for e in media} == {"png", "wav", "m4a"}  # m4a: the music, as it is
    sources = {p.read_bytes() for p in assets_root.rglob("*") if p.is_file()}
    for entry in media:
        data = publisher.server.get(publisher.bucket, publisher.key(master, entry["path"]))
        assert data in sources, entry["path"]
        if entry["path"].endswith(".png"):
            assert data is not None and data.startswith(b"\x89PNG\r\n\x1a\n")
        elif entry["path"].endswith(".wav"):
            assert data is not None and data[8:12] == b"WAVE"


def test_a_record_whose_encoding_the_version_no_longer_holds_is_not_trusted(
    story: StoryBuilder, publisher: Publisher, calls: list[str]
) -> None:
    """The record is a hint: an encoded file missing from the version (or of another size) is encoded again."""
    first = publisher.assemble(story.story_id)
    webp = next(e for e in publisher.media(first) if e["path"].endswith(".webp"))
    same = [e["path"] for e in publisher.media(first) if e["sha256"] == webp["sha256"]]  # identical frames too
    for path in same:
        publisher.server.put(publisher.bucket, publisher.key(first, path), b"RIFF....WEBP")  # another size
    calls.clear()
    again = publisher.assemble(story.story_id)
    assert calls == ["webp"] * len(same) and again.stats["web"]["encoded"] == len(same)
    assert again.stats["web"]["reused"] == 9 - len(same)
    assert api.verify(str(again.bundle_path)).ok
