"""Re-assembling reuses unchanged media from the previous bundle, and never a stale file.

Real PostgreSQL, real files. Reuse is observable as the same inode in the old
and the new bundle (a hard link); a fresh copy is a new inode.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import bundler.storage.local.records
import bundler.storage.local.reuse
from bundler import api
from bundler.db.connect import DatabaseTarget
from bundler.errors import EnvError
from bundler.storage.local.source import LocalSource
from tests.builders import StoryBuilder


def _records_supported(folder: Path) -> bool:
    probe = folder / ".xattr-probe"
    probe.write_bytes(b"x")
    try:
        os.setxattr(probe, bundler.storage.local.records.RECORD_ATTRIBUTE, b"1")
        return True
    except (OSError, AttributeError):
        return False
    finally:
        probe.unlink()


@pytest.fixture
def settle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[], None]:
    """Shrink the "just written" window so the test need not wait two seconds; ``settle()`` waits it out."""
    if not _records_supported(tmp_path):
        pytest.skip("this file system keeps no extended attributes: bundles are always copied")
    margin = 0.05
    monkeypatch.setattr(bundler.storage.local.records, "RACY_MARGIN_NS", int(margin * 1e9))
    return lambda: time.sleep(margin * 2)


@pytest.fixture
def story(conn, assets_root: Path) -> StoryBuilder:  # type: ignore[no-untyped-def]
    b = StoryBuilder(title="Reuse")
    root = b.scenelet(shots=2, prompt="Which way?")
    left = b.scenelet(root, choice_label="Left", terminal=True)
    b.scenelet(root, choice_label="Right", terminal=True)
    b.music(("Theme", ["scenelet-1", "scenelet-2"]))
    b.write_media(assets_root)
    b.insert(conn)
    b.left = left  # type: ignore[attr-defined]
    return b


@pytest.fixture
def assemble(database: DatabaseTarget, assets_root: Path, tmp_path: Path) -> Iterator[Callable[..., Path]]:
    out = tmp_path / "out"

    def run(story_id: str, **kwargs: object) -> Path:
        report = api.assemble(
            story_id, database=database, assets_root=assets_root, out_dir=out, overwrite=True, **kwargs
        )  # type: ignore[arg-type]
        assert report.ok, report.problems
        return out / story_id

    yield run


def media_inodes(bundle: Path) -> dict[str, int]:
    return {str(p.relative_to(bundle)): p.stat().st_ino for p in (bundle / "assets").rglob("*") if p.is_file()}


def all_inodes(bundle: Path) -> dict[str, int]:
    return {str(p.relative_to(bundle)): p.stat().st_ino for p in bundle.rglob("*") if p.is_file()}


def tree_bytes(bundle: Path) -> dict[str, bytes]:
    return {str(p.relative_to(bundle)): p.read_bytes() for p in sorted(bundle.rglob("*")) if p.is_file()}


def manifest_hashes(bundle: Path) -> dict[str, str]:
    return {f["path"]: f["sha256"] for f in json.loads((bundle / "manifest.json").read_text())["files"]}


def key_frame(story: StoryBuilder, assets_root: Path) -> tuple[Path, str]:
    """The first key frame of the left scenelet: its source file and its path in the bundle."""
    left = story.left  # type: ignore[attr-defined]
    return (
        assets_root / story.story_id / "shots" / left / "shot-1_key_frame.png",
        f"assets/shots/{left}/1_key_frame.png",
    )


def rewrite_same_size(path: Path) -> None:
    """Change the bytes in place (same file, same size): the kind of edit a size check alone misses."""
    data = bytearray(path.read_bytes())
    data[-13] ^= 0xFF  # a key frame's IDAT CRC: the file still ends in IEND, so it stays a valid PNG
    with open(path, "r+b") as handle:
        handle.write(data)


def test_unchanged_reassemble_keeps_the_bundle_as_it_is(
    story: StoryBuilder, assemble: Callable[..., Path], settle: Callable[[], None]
) -> None:
    settle()
    bundle = assemble(story.story_id)
    before_inodes, before_bytes = all_inodes(bundle), tree_bytes(bundle)

    assert assemble(story.story_id) == bundle
    # nothing changed: the previous bundle already is the new one, down to the inodes
    assert all_inodes(bundle) == before_inodes
    assert tree_bytes(bundle) == before_bytes
    assert sorted(p.name for p in bundle.parent.iterdir()) == [story.story_id]


def test_changed_story_text_links_the_unchanged_media_into_a_new_bundle(
    story: StoryBuilder, assemble: Callable[..., Path], settle: Callable[[], None], conn
) -> None:  # type: ignore[no-untyped-def]
    settle()
    bundle = assemble(story.story_id)
    before_inodes, before_bytes = all_inodes(bundle), tree_bytes(bundle)
    conn.execute(
        "update scenelets set content = jsonb_set(content, '{description}', '\"A new opening\"') where id = %s",
        (story.scenelets[0].id,),
    )

    assemble(story.story_id)
    after_inodes, after_bytes = all_inodes(bundle), tree_bytes(bundle)
    media = [name for name in before_inodes if name.startswith("assets/")]
    assert {n: after_inodes[n] for n in media} == {n: before_inodes[n] for n in media}  # hard links
    assert {n: after_bytes[n] for n in media} == {n: before_bytes[n] for n in media}
    assert all((bundle / name).stat().st_nlink == 1 for name in media)  # the old bundle is gone
    for name in ("manifest.json", "index.html", "SHA256SUMS"):
        assert after_inodes[name] != before_inodes[name]  # written anew, never in place
    assert json.loads(after_bytes["manifest.json"])["scenelets"][0]["description"] == "A new opening"
    assert sorted(p.name for p in bundle.parent.iterdir()) == [story.story_id]


def test_a_stray_file_in_the_previous_bundle_is_not_kept(
    story: StoryBuilder, assemble: Callable[..., Path], settle: Callable[[], None]
) -> None:
    settle()
    bundle = assemble(story.story_id)
    media = media_inodes(bundle)
    (bundle / "assets" / "notes.txt").write_text("not part of the bundle")

    assemble(story.story_id)
    assert not (bundle / "assets" / "notes.txt").exists()
    assert media_inodes(bundle) == media  # the media are still linked, not copied


def test_source_rewritten_in_place_with_the_same_size_is_copied_anew(
    story: StoryBuilder, assemble: Callable[..., Path], settle: Callable[[], None], assets_root: Path
) -> None:
    settle()
    bundle = assemble(story.story_id)
    inodes = media_inodes(bundle)
    source, target = key_frame(story, assets_root)
    stamp = source.stat()
    rewrite_same_size(source)
    os.utime(source, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # even with the old mtime put back
    assert source.stat().st_size == stamp.st_size and source.stat().st_mtime_ns == stamp.st_mtime_ns

    assemble(story.story_id)
    assert (bundle / target).read_bytes() == source.read_bytes()
    assert manifest_hashes(bundle)[target] == hashlib.sha256(source.read_bytes()).hexdigest()
    after = media_inodes(bundle)
    assert after[target] != inodes[target]
    assert {k: v for k, v in after.items() if k != target} == {k: v for k, v in inodes.items() if k != target}


def test_changed_mtime_triggers_a_rehash_and_same_bytes_are_still_reused(
    story: StoryBuilder,
    assemble: Callable[..., Path],
    settle: Callable[[], None],
    assets_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settle()
    bundle = assemble(story.story_id)
    inodes = media_inodes(bundle)
    source, target = key_frame(story, assets_root)
    touched = source.stat().st_mtime_ns - 10_000_000_000
    os.utime(source, ns=(touched, touched))  # same bytes, another mtime (a restore from backup, say)
    settle()

    hashed: list[Path] = []
    real_hash = bundler.storage.local.reuse.hash_file

    def spy(path: Path) -> tuple[str, os.stat_result, os.stat_result, int]:
        hashed.append(Path(path))
        return real_hash(path)

    monkeypatch.setattr(bundler.storage.local.reuse, "hash_file", spy)
    assemble(story.story_id)
    assert hashed == [source.resolve()]  # only the touched file is read again
    assert media_inodes(bundle) == inodes  # same bytes: still the previous file
    record = bundler.storage.local.records.read_record(bundle / target)
    resolved = str(source.resolve())
    assert record is not None and record.matches_source(resolved, os.stat(resolved))  # recorded as it is now

    hashed.clear()
    assemble(story.story_id)
    assert hashed == []  # recorded now: no re-hash the next time


def test_changed_mtime_and_bytes_of_the_same_size_are_copied_anew(
    story: StoryBuilder, assemble: Callable[..., Path], settle: Callable[[], None], assets_root: Path
) -> None:
    settle()
    bundle = assemble(story.story_id)
    inodes = media_inodes(bundle)
    source, target = key_frame(story, assets_root)
    rewrite_same_size(source)

    assemble(story.story_id)
    assert media_inodes(bundle)[target] != inodes[target]
    assert (bundle / target).read_bytes() == source.read_bytes()


def test_stored_path_switched_to_another_file_of_the_same_size_is_not_reused(
    story: StoryBuilder, assemble: Callable[..., Path], settle: Callable[[], None], assets_root: Path, conn
) -> None:  # type: ignore[no-untyped-def]
    settle()
    bundle = assemble(story.story_id)
    source, target = key_frame(story, assets_root)
    replacement = source.with_name("shot-1_key_frame_v2.png")
    data = bytearray(source.read_bytes())
    data[-13] ^= 0x55  # IDAT CRC: still a complete PNG
    replacement.write_bytes(bytes(data))
    os.utime(replacement, ns=(0, source.stat().st_mtime_ns - 10_000_000_000))  # older than the bundle, same size
    settle()
    left = story.left  # type: ignore[attr-defined]
    conn.execute(
        "update shots set key_frame_image_path = %s where scenelet_ref = %s and shot_index = 1",
        (str(replacement.relative_to(assets_root)), left),
    )

    assemble(story.story_id)
    assert (bundle / target).read_bytes() == replacement.read_bytes()


@pytest.mark.parametrize("edit", ["append", "same size", "same size, mtime put back"])
def test_a_bundle_file_edited_after_the_fact_is_not_reused(
    story: StoryBuilder, assemble: Callable[..., Path], settle: Callable[[], None], assets_root: Path, edit: str
) -> None:
    settle()
    bundle = assemble(story.story_id)
    source, target = key_frame(story, assets_root)
    written = (bundle / target).stat()
    if edit == "append":
        with open(bundle / target, "ab") as handle:
            handle.write(b"tampered")
    else:
        rewrite_same_size(bundle / target)
    if edit.endswith("put back"):  # as `cp -p`, `rsync -t` or `tar x` would leave it
        os.utime(bundle / target, ns=(written.st_atime_ns, written.st_mtime_ns))

    assemble(story.story_id)
    assert (bundle / target).read_bytes() == source.read_bytes()


def test_files_written_just_before_assembling_are_copied_again(
    story: StoryBuilder, assemble: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the sources were written moments ago (well inside the window), so a later edit in the
    # same timestamp tick could go unnoticed: such files get no record and are copied again
    monkeypatch.setattr(bundler.storage.local.records, "RACY_MARGIN_NS", 600 * 1_000_000_000)
    bundle = assemble(story.story_id)
    inodes = media_inodes(bundle)
    assert all(bundler.storage.local.records.read_record(bundle / name) is None for name in inodes)
    assemble(story.story_id)
    assert set(media_inodes(bundle).values()).isdisjoint(inodes.values())


def test_failed_reassemble_leaves_the_linked_old_bundle_untouched(
    story: StoryBuilder,
    assemble: Callable[..., Path],
    settle: Callable[[], None],
    assets_root: Path,
    database: DatabaseTarget,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settle()
    bundle = assemble(story.story_id)
    before = tree_bytes(bundle)
    source, _ = key_frame(story, assets_root)
    rewrite_same_size(source)  # one file must be copied, the rest are linked

    def failing_copy(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(LocalSource, "copy", failing_copy)
    with pytest.raises(EnvError, match="No space left on device"):
        api.assemble(
            story.story_id, database=database, assets_root=assets_root, out_dir=bundle.parent, overwrite=True, jobs=1
        )
    assert tree_bytes(bundle) == before
    assert sorted(p.name for p in bundle.parent.iterdir()) == [story.story_id]


def test_the_fast_manifest_writer_matches_manifest_dumps(story: StoryBuilder, assemble: Callable[..., Path]) -> None:
    from bundler.bundle.manifest import dumps

    bundle = assemble(story.story_id)
    text = (bundle / "manifest.json").read_text(encoding="utf-8")
    document = json.loads(text)
    document["metadata"]["title"] = 'Quotes " \\ tabs \t and \u00e9 \u2028 <&>'
    assert dumps(document) == json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def test_an_unchanged_bundle_removed_before_publishing_is_an_error(tmp_path: Path) -> None:
    from bundler.errors import EnvError
    from bundler.storage.local.staging import publish

    staging = tmp_path / ".story.partial-1-ab"
    staging.mkdir()
    with pytest.raises(EnvError, match="removed while"):
        publish(staging, tmp_path / "story", overwrite=True, unchanged=True)
    assert not (tmp_path / "story").exists()


@pytest.mark.parametrize("swap", ["fifo", "other file of the same size"])
def test_a_bundle_file_swapped_between_its_check_and_the_link_is_copied_instead(
    story: StoryBuilder,
    assemble: Callable[..., Path],
    settle: Callable[[], None],
    assets_root: Path,
    conn,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    swap: str,
) -> None:
    """The previous bundle's file passes its check, then is replaced before the hard link is made:
    the new bundle must get the source's bytes in a regular file, never what took its place."""
    settle()
    bundle = assemble(story.story_id)
    source, target = key_frame(story, assets_root)
    conn.execute("update stories set display_name = 'Reuse, retitled' where id = %s", (story.story_id,))
    real = bundler.storage.local.reuse._recorded
    calls: list[str] = []

    def checked_then_swapped(copy, old, seal):  # type: ignore[no-untyped-def]
        found = real(copy, old, seal)
        calls.append(old)
        # the first check only asks whether the bundle is current (the title changed: it is not);
        # the second is the one the hard link follows: swap the file right after it, for real
        if found is not None and old.endswith(target) and calls.count(old) == 2:
            size = os.stat(old).st_size
            os.unlink(old)
            if swap == "fifo":
                os.mkfifo(old)
            else:
                Path(old).write_bytes(b"\x00" * size)
        return found

    monkeypatch.setattr(bundler.storage.local.reuse, "_recorded", checked_then_swapped)
    assemble(story.story_id)
    assert sum(name.endswith(target) for name in calls) == 2  # the swap happened
    assert (bundle / target).is_file() and not (bundle / target).is_symlink()
    assert (bundle / target).read_bytes() == source.read_bytes()
    assert manifest_hashes(bundle)[target] == hashlib.sha256(source.read_bytes()).hexdigest()
