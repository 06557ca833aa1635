"""``assemble --web`` (DESIGN §3): WebP key frames and M4A narration, deterministic, verified, and
never encoded twice for a source whose bytes did not change. Real PostgreSQL, real files, the
real encoders (Pillow, PyAV); encoder calls are counted through the encode module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import bundler.media.encode
import bundler.storage.local.records
from bundler import api
from bundler.db.connect import DatabaseTarget
from bundler.media.encode import WebSettings
from tests.builders import StoryBuilder
from tests.media_files import png_bytes

WEB = WebSettings()


@pytest.fixture
def story(conn, assets_root: Path) -> StoryBuilder:  # type: ignore[no-untyped-def]
    b = StoryBuilder(title="Web")
    root = b.scenelet(shots=2, prompt="Which way?")
    b.left = b.scenelet(root, choice_label="Left", terminal=True)  # type: ignore[attr-defined]
    b.scenelet(root, choice_label="Right", terminal=True)
    b.music(("Theme", ["scenelet-1", "scenelet-2"]))
    b.write_media(assets_root)
    b.insert(conn)
    return b


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Every encoder call of this test, by encoder (the build calls them through the module)."""
    seen: dict[str, list[str]] = {"webp": [], "m4a": []}
    for name, kind in (("encode_key_frame", "webp"), ("encode_narration", "m4a")):
        original = getattr(bundler.media.encode, name)

        def counted(source: Any, settings: WebSettings, _original: Any = original, _kind: str = kind) -> bytes:
            seen[_kind].append(str(len(source)))
            return _original(source, settings)  # type: ignore[no-any-return]

        monkeypatch.setattr(bundler.media.encode, name, counted)
    return seen


@pytest.fixture
def settle(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Shrink the "just written" window (records are kept only for settled sources); ``settle()`` waits it out."""
    margin = 0.05
    monkeypatch.setattr(bundler.storage.local.records, "RACY_MARGIN_NS", int(margin * 1e9))
    return lambda: time.sleep(margin * 2)


@pytest.fixture
def assemble(database: DatabaseTarget, assets_root: Path, tmp_path: Path) -> Iterator[Callable[..., api.StoryReport]]:
    def run(story_id: str, out: Path | None = None, **kwargs: Any) -> api.StoryReport:
        kwargs.setdefault("assets_root", assets_root)
        report = api.assemble(story_id, database=database, out_dir=out or tmp_path / "out", overwrite=True, **kwargs)
        assert report.ok, report.problems
        return report

    yield run


def manifest(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / "manifest.json").read_text())  # type: ignore[no-any-return]


def tree_bytes(bundle: Path) -> dict[str, bytes]:
    return {str(p.relative_to(bundle)): p.read_bytes() for p in sorted(bundle.rglob("*")) if p.is_file()}


def media_bytes(bundle: Path) -> int:
    return sum(e["bytes"] for e in manifest(bundle)["files"] if e["path"].startswith("assets/"))


def test_web_bundle_has_webp_key_frames_and_m4a_narration(
    story: StoryBuilder, assemble: Callable[..., api.StoryReport], tmp_path: Path
) -> None:
    report = assemble(story.story_id, web=WEB)
    bundle = Path(report.bundle_path)  # type: ignore[arg-type]
    document = manifest(bundle)
    shots = [shot for scenelet in document["scenelets"] for shot in scenelet["shots"]]
    assert shots and all(s["imagePath"].endswith("_key_frame.webp") for s in shots)
    assert all(s["audioPath"].endswith("_audio.m4a") for s in shots)
    root = document["scenelets"][0]
    assert root["branchAudioPath"] == f"assets/branches/{root['id']}/branch_audio.m4a"
    assert document["music"]["cues"][0]["audioPath"] == "assets/music/Theme.m4a"  # music as it is
    types = {entry["path"].rsplit(".", 1)[1]: entry["mediaType"] for entry in document["files"]}
    assert types == {"webp": "image/webp", "m4a": "audio/mp4", "html": "text/html"}
    for entry in document["files"]:
        head = (bundle / entry["path"]).read_bytes()[:12]
        if entry["path"].endswith(".webp"):
            assert head[:4] == b"RIFF" and head[8:12] == b"WEBP"
        elif entry["path"].endswith(".m4a"):
            assert head[4:8] == b"ftyp"
    assert document["generator"].startswith(f"bundler {bundler.__version__}; web {WEB.key()}; libwebp ")
    # the settings are recorded; what the viewer saves is reported
    web = report.stats["web"]
    assert web["settings"] == WEB.key() and web["encoded"] == 9 and web["reused"] == 0
    master = assemble(story.story_id, out=tmp_path / "master")
    assert web["masterBytes"] == media_bytes(Path(master.bundle_path))  # type: ignore[arg-type]
    assert web["webBytes"] == media_bytes(bundle)
    assert web["ratio"] == round(web["webBytes"] / web["masterBytes"], 4)
    assert api.verify(bundle).ok


def test_without_web_nothing_changes(story: StoryBuilder, assemble: Callable[..., api.StoryReport]) -> None:
    report = assemble(story.story_id)
    document = manifest(Path(report.bundle_path))  # type: ignore[arg-type]
    assert document["generator"] == f"bundler {bundler.__version__}"
    assert "web" not in report.stats
    assert {e["mediaType"] for e in document["files"]} == {"image/png", "audio/wav", "audio/mp4", "text/html"}


def test_web_bundles_of_one_database_state_are_byte_identical(
    story: StoryBuilder, assemble: Callable[..., api.StoryReport], tmp_path: Path
) -> None:
    first = assemble(story.story_id, out=tmp_path / "a", web=WEB, jobs=2)
    second = assemble(story.story_id, out=tmp_path / "b", web=WEB, jobs=1)
    assert tree_bytes(Path(first.bundle_path)) == tree_bytes(Path(second.bundle_path))  # type: ignore[arg-type]


def test_other_settings_give_other_bytes_and_are_recorded(
    story: StoryBuilder, assemble: Callable[..., api.StoryReport], tmp_path: Path
) -> None:
    small = WebSettings(image_quality=40, max_side=64, audio_kbps=24)
    first = Path(assemble(story.story_id, out=tmp_path / "a", web=WEB).bundle_path)  # type: ignore[arg-type]
    other = Path(assemble(story.story_id, out=tmp_path / "b", web=small).bundle_path)  # type: ignore[arg-type]
    assert small.key() in manifest(other)["generator"]
    assert manifest(first)["files"] != manifest(other)["files"]


def test_reassemble_of_an_unchanged_story_encodes_nothing(
    story: StoryBuilder,
    assemble: Callable[..., api.StoryReport],
    calls: dict[str, list[str]],
    settle: Callable[[], None],
) -> None:
    settle()
    first = assemble(story.story_id, web=WEB)
    assert (len(calls["webp"]), len(calls["m4a"])) == (4, 5)
    bundle = Path(first.bundle_path)  # type: ignore[arg-type]
    before = tree_bytes(bundle)
    calls["webp"].clear(), calls["m4a"].clear()

    again = assemble(story.story_id, web=WEB)
    assert calls == {"webp": [], "m4a": []}
    assert again.stats["web"] | {"ratio": 0} == first.stats["web"] | {"encoded": 0, "reused": 9, "ratio": 0}
    assert tree_bytes(bundle) == before

    # the story's text changed: a new bundle, its encoded media linked from the old one
    story_text = manifest(bundle)["metadata"]["title"]
    assert story_text == "Web"
    third = assemble(story.story_id, web=WEB, exported_at="2030-01-01T00:00:00Z")
    assert calls == {"webp": [], "m4a": []}
    assert third.stats["web"]["reused"] == 9 and third.stats["web"]["encoded"] == 0
    assert api.verify(bundle).ok


def test_a_changed_source_is_encoded_again_alone(
    story: StoryBuilder,
    assemble: Callable[..., api.StoryReport],
    calls: dict[str, list[str]],
    settle: Callable[[], None],
    assets_root: Path,
) -> None:
    settle()
    bundle = Path(assemble(story.story_id, web=WEB).bundle_path)  # type: ignore[arg-type]
    left = story.left  # type: ignore[attr-defined]
    target = f"assets/shots/{left}/1_key_frame.webp"
    old = (bundle / target).read_bytes()
    source = assets_root / story.story_id / "shots" / left / "shot-1_key_frame.png"
    source.write_bytes(png_bytes(rgb=(200, 30, 30)))
    touched = assets_root / story.story_id / "shots" / left / "1_audio.wav"
    os.utime(touched)  # metadata only: the same bytes are re-hashed, not re-encoded
    settle()
    calls["webp"].clear(), calls["m4a"].clear()

    report = assemble(story.story_id, web=WEB)
    assert (len(calls["webp"]), len(calls["m4a"])) == (1, 0)
    assert report.stats["web"]["encoded"] == 1 and report.stats["web"]["reused"] == 8
    assert (bundle / target).read_bytes() != old
    assert api.verify(bundle).ok

    # other settings: nothing of the previous encodings is reused
    calls["webp"].clear(), calls["m4a"].clear()
    report = assemble(story.story_id, web=WebSettings(audio_kbps=32))
    assert report.stats["web"]["encoded"] == 9 and len(calls["webp"]) == 4


def test_master_then_web_then_master_in_one_folder(
    story: StoryBuilder, assemble: Callable[..., api.StoryReport], settle: Callable[[], None]
) -> None:
    settle()
    master = Path(assemble(story.story_id).bundle_path)  # type: ignore[arg-type]
    master_bytes = tree_bytes(master)
    web = assemble(story.story_id, web=WEB)
    assert web.stats["web"]["encoded"] == 9  # a master bundle's PNG and WAV files are no encodings
    assert api.verify(master).ok
    assemble(story.story_id)
    assert tree_bytes(master) == master_bytes


def test_an_undecodable_source_is_a_story_problem(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    left = story.left  # type: ignore[attr-defined]
    source = assets_root / story.story_id / "shots" / left / "shot-1_key_frame.png"
    data = bytearray(png_bytes())
    data[33:41] = b"\x00" * 8  # the IDAT chunk's length and type: structure checks pass, decoding does not
    source.write_bytes(bytes(data))
    report = api.assemble(story.story_id, database=database, assets_root=assets_root, out_dir=tmp_path, web=WEB)
    assert not report.ok
    assert [(p.code, p.scenelet_ref, p.shot_index) for p in report.problems] == [("wrong-media-format", left, 1)]
    assert not (tmp_path / story.story_id).exists()


def test_web_without_the_extra_exits_3_before_any_work(tmp_path: Path) -> None:
    """Pillow and PyAV made unimportable in the child: one line naming the extra, exit 3, nothing touched."""
    out = tmp_path / "out"
    code = (
        "import sys; sys.modules['PIL'] = None; sys.modules['av'] = None; "
        "from bundler.cli import main; raise SystemExit(main())"
    )
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-c", code, "assemble", "--web", "--database-url", "postgresql://nobody@127.0.0.1:9/none",
         "--out", str(out), "00000000-0000-4000-8000-000000000000"],
        capture_output=True, text=True, env={**env, "NO_COLOR": "1"}, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: --web needs the optional extra: pip install 'story-bundler[web]'"
    ]
    assert not out.exists()


def test_web_settings_without_web_are_a_usage_error(tmp_path: Path) -> None:
    from tests.cli_helpers import run_cli

    result = run_cli("assemble", "--web-quality", "50", "--out", tmp_path, "00000000-0000-4000-8000-000000000000")
    assert result.returncode == 2 and "--web" in result.stderr


def test_web_from_a_bucket_is_byte_identical_to_web_from_disk(
    story: StoryBuilder,
    assemble: Callable[..., api.StoryReport],
    assets_root: Path,
    s3_server: Any,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    """Sources in object storage are downloaded (pinned to the checked ETag) and encoded the same."""
    from tests.test_s3 import mirror

    disk = assemble(story.story_id, out=tmp_path / "disk", web=WEB)
    root = mirror(s3_server, s3_bucket, assets_root)
    bucket = assemble(story.story_id, out=tmp_path / "bucket", web=WEB, assets_root=root)
    assert tree_bytes(Path(disk.bundle_path)) == tree_bytes(Path(bucket.bundle_path))  # type: ignore[arg-type]
    assert bucket.stats["web"]["encoded"] == 9
