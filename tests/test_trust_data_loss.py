"""``--overwrite`` replaces only a bundle of that story; sources are never replaced (DESIGN §4, issue 19 §1)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bundler import api
from bundler.db.connect import DatabaseTarget
from bundler.errors import EnvError, OutputExistsError
from tests import test_assemble
from tests.builders import StoryBuilder
from tests.cli_helpers import json_of, run_cli
from tests.test_assemble import tree_files

story = test_assemble.story  # the branching story with its media and a music cue


def test_overwrite_with_out_equal_to_the_assets_root_keeps_the_story_media(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path
) -> None:
    before = tree_files(assets_root)
    assert any(name.startswith(f"{story.story_id}/music/") for name in before)  # the sources at the target
    result = run_cli(
        "assemble", story.story_id, "--database-url", database.conninfo, "--assets-root", assets_root,
        "--out", assets_root, "--overwrite", "--json",
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    report = json_of(result)
    assert not report["ok"] and "not a bundle of story" in report["error"]["message"]
    assert tree_files(assets_root) == before


@pytest.mark.parametrize(
    "manifest",
    [
        None,  # a folder of someone's files
        b"not json",
        b"[" * 100_000,  # too deep for the parser
        json.dumps({"format": "something-else", "metadata": {"storyId": "STORY"}}).encode(),
        json.dumps(
            {"format": "story-bundle", "metadata": {"storyId": "00000000-0000-4000-8000-000000000000"}}
        ).encode(),
    ],
    ids=["no-manifest", "not-json", "too-deep", "other-format", "other-story"],
)
def test_overwrite_refuses_a_folder_that_is_not_a_bundle_of_the_story(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path, manifest: bytes | None
) -> None:
    target = tmp_path / "out" / story.story_id
    (target / "notes").mkdir(parents=True)
    (target / "notes" / "draft.txt").write_text("precious")
    if manifest is not None:
        (target / "manifest.json").write_bytes(manifest.replace(b"STORY", story.story_id.encode()))
    before = tree_files(target)
    with pytest.raises(OutputExistsError, match="not a bundle of story"):
        api.assemble(
            story.story_id, database=database, assets_root=assets_root, out_dir=tmp_path / "out", overwrite=True
        )
    assert tree_files(target) == before


def test_overwrite_refuses_a_fifo_manifest_without_hanging(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    import os

    target = tmp_path / "out" / story.story_id
    target.mkdir(parents=True)
    os.mkfifo(target / "manifest.json")
    with pytest.raises(OutputExistsError, match="not a bundle of story"):
        api.assemble(
            story.story_id, database=database, assets_root=assets_root, out_dir=tmp_path / "out", overwrite=True
        )
    assert (target / "manifest.json").exists()


def test_overwrite_still_replaces_a_bundle_of_the_story(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert api.assemble(story.story_id, database=database, assets_root=assets_root, out_dir=out).ok
    (out / story.story_id / "stray.txt").write_text("left by hand")
    report = api.assemble(story.story_id, database=database, assets_root=assets_root, out_dir=out, overwrite=True)
    assert report.ok
    assert not (out / story.story_id / "stray.txt").exists()


def test_a_target_holding_the_assets_root_is_refused(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert api.assemble(story.story_id, database=database, assets_root=assets_root, out_dir=out).ok
    # the sources moved inside the bundle folder itself: replacing it would delete them
    inner = out / story.story_id / "sources"
    shutil.copytree(assets_root, inner)
    before = tree_files(out)
    for root in (inner, out / story.story_id):
        with pytest.raises(EnvError, match="would hold the assets root"):
            api.assemble(story.story_id, database=database, assets_root=root, out_dir=out, overwrite=True)
    assert tree_files(out) == before


def test_overwrite_repairs_a_bundle_whose_manifest_was_damaged(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert api.assemble(story.story_id, database=database, assets_root=assets_root, out_dir=out).ok
    (out / story.story_id / "manifest.json").write_bytes(b"\x00garbage")  # its SHA256SUMS still says "bundle"
    assert api.assemble(story.story_id, database=database, assets_root=assets_root, out_dir=out, overwrite=True).ok
    assert json.loads((out / story.story_id / "manifest.json").read_text())["format"] == "story-bundle"
