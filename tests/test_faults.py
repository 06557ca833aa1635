"""Faults and interruptions, reproduced for real: signals sent to a real ``bundler``
process, a full (tmpfs) disk, an immutable folder, media vanishing mid-run, two runs
sharing one ``--out``. Real PostgreSQL, real files; no fault is simulated in the code."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bundler import api
from bundler.api import verify as verify_bundle
from bundler.db.connect import DatabaseTarget
from bundler.player import embed_json
from tests.builders import StoryBuilder
from tests.cli_helpers import BUNDLER, json_of, run_cli
from tests.test_assemble import branching_story, story, tree_files
from tests.test_hostile_media import outcome_of

BIG = 300 * 1024 * 1024  # sparse on the source side: cheap to make, seconds to copy and archive
MUSIC = "Night Theme.m4a"
__all__ = ["story"]  # the fixture, shared with test_assemble


def music_file(story: StoryBuilder, assets_root: Path) -> Path:
    return assets_root / story.story_id / "music" / MUSIC


def enlarge(path: Path, size: int = BIG) -> None:
    with open(path, "ab") as handle:
        handle.truncate(size)


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GITHUB_ACTIONS", "SOURCE_DATE_EPOCH")}
    return {**env, "NO_COLOR": "1"}


def spawn(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*BUNDLER, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env()
    )


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def hidden(folder: Path) -> list[str]:
    return [name for name in names(folder) if name.startswith(".")]


# --- §4 archives and interruption -------------------------------------------------------------


def test_zip_time_it_cannot_store_is_a_usage_error_before_anything_is_written(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    common = [story.story_id, "--database-url", database.conninfo, "--assets-root", assets_root, "--out", out]
    assert run_cli("assemble", *common, "--archive", "zip").returncode == 0
    bundle, archive = tree_files(out / story.story_id), (out / f"{story.story_id}.zip").read_bytes()
    for when in ("2108-01-01T00:00:00Z", "1979-12-31T23:59:59Z"):
        result = run_cli("assemble", *common, "--overwrite", "--archive", "zip", "--exported-at", when, "--json")
        assert result.returncode == 2, result.stderr
        document = json_of(result)
        assert document["ok"] is False and document["bundlePath"] is None
        assert "zip times run from 1980 to 2107" in document["error"]["message"]
        assert "Traceback" not in result.stderr
        assert tree_files(out / story.story_id) == bundle
        assert (out / f"{story.story_id}.zip").read_bytes() == archive
        assert names(out) == sorted([story.story_id, f"{story.story_id}.zip"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_while_archiving_changes_neither_bundle_nor_archive(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path, signum: int
) -> None:
    out = tmp_path / "out"
    common = [story.story_id, "--database-url", database.conninfo, "--assets-root", assets_root, "--out", out]
    assert run_cli("assemble", *common, "--archive", "tar.gz", "--exported-at", "2030-01-01T00:00:00Z").returncode == 0
    bundle, archive = tree_files(out / story.story_id), (out / f"{story.story_id}.tar.gz").read_bytes()
    enlarge(music_file(story, assets_root))

    process = spawn("assemble", *common, "--overwrite", "--archive", "tar.gz", "--json", "--jobs", "1")
    wait_for(lambda: any(name.endswith(".tmp") for name in names(out)), process)  # the archive is being written
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 128 + signum, stderr
    document = json.loads(stdout)  # exactly one JSON document
    assert document["ok"] is False and document["error"]["exitCode"] == 128 + signum
    assert stderr.strip().splitlines() == ["interrupted; nothing was changed"]
    assert tree_files(out / story.story_id) == bundle
    assert (out / f"{story.story_id}.tar.gz").read_bytes() == archive
    assert names(out) == sorted([story.story_id, f"{story.story_id}.tar.gz"])


def test_a_killed_archive_write_leaves_debris_that_the_next_run_removes(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    common = [story.story_id, "--database-url", database.conninfo, "--assets-root", assets_root, "--out", out]
    music = music_file(story, assets_root)
    original = music.read_bytes()
    enlarge(music)
    process = spawn("assemble", *common, "--archive", "tar.gz", "--jobs", "1")
    wait_for(lambda: any(name.endswith(".tmp") for name in names(out)), process)
    process.kill()
    process.communicate(timeout=30)
    assert any(name.endswith(".tar.gz.tmp") or name.endswith(".tmp") for name in hidden(out))  # the kill left debris

    music.write_bytes(original)
    result = run_cli("assemble", *common, "--overwrite", "--archive", "tar.gz")
    assert result.returncode == 0, result.stderr
    assert names(out) == sorted([story.story_id, f"{story.story_id}.tar.gz"])


@pytest.fixture
def three_stories(conn, assets_root: Path) -> list[StoryBuilder]:  # type: ignore[no-untyped-def]
    stories = [branching_story() for _ in range(3)]
    for builder in stories:
        builder.write_media(assets_root)
        builder.insert(conn)
    return stories


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupting_a_multi_story_run_abandons_the_stories_in_progress(
    three_stories: list[StoryBuilder], database: DatabaseTarget, assets_root: Path, tmp_path: Path, signum: int
) -> None:
    out = tmp_path / "out"
    common = ["--all", "--database-url", database.conninfo, "--assets-root", assets_root, "--out", out]
    assert run_cli("assemble", *common).returncode == 0
    before = {s.story_id: tree_files(out / s.story_id) for s in three_stories}
    for builder in three_stories:
        enlarge(music_file(builder, assets_root))

    process = spawn("assemble", *common, "--overwrite", "--jobs", "3", "--json")
    wait_for(lambda: any(".partial-" in name for name in names(out)), process)
    signalled = time.monotonic()
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    took = time.monotonic() - signalled

    assert process.returncode == 128 + signum, stderr
    assert took < 10, f"exit took {took:.2f} s after the signal"  # slack for a loaded CI machine
    document = json.loads(stdout)
    assert document["ok"] is False and len(document["stories"]) == 3
    assert {story["error"]["exitCode"] for story in document["stories"]} == {128 + signum}
    assert stderr.strip().splitlines() == ["interrupted; nothing was changed"]
    assert {s.story_id: tree_files(out / s.story_id) for s in three_stories} == before
    assert names(out) == sorted(s.story_id for s in three_stories)  # no staging left


def test_media_deleted_between_plan_and_copy_is_a_story_problem(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    root = story.scenelets[0].id
    victim = assets_root / story.story_id / "shots" / root / "shot-2_key_frame.png"
    assert victim.is_file()

    class DeleteWhenCopyingStarts:  # the real progress seam: called after planning, before any copy
        def start(self, total_bytes: int | None) -> None:
            victim.unlink()

        def advance(self, count: int) -> None:
            pass

    out = tmp_path / "out"
    report = api.assemble(
        story.story_id, database=database, assets_root=assets_root, out_dir=out, progress=DeleteWhenCopyingStarts()
    )
    assert not report.ok and report.exit_code == 1
    [problem] = [p for p in report.problems if p.severity == "error"]
    assert problem.code == "media-changed" and "removed" in problem.message
    assert (problem.scenelet_ref, problem.scenelet_label, problem.shot_index) == (root, "scenelet-1", 2)
    assert problem.path is not None and problem.path.endswith("shot-2_key_frame.png")
    assert names(out) == []


def swap_for_fifo(victim: Path, elsewhere: Path) -> None:
    victim.unlink()
    os.mkfifo(victim)


def swap_for_symlink_leaving_the_root(victim: Path, elsewhere: Path) -> None:
    outside = elsewhere / "outside.png"  # not under the assets root: never to be bundled
    outside.write_bytes(victim.read_bytes())
    victim.unlink()
    victim.symlink_to(outside)


@pytest.mark.parametrize(
    ("swap", "what"),
    [(swap_for_fifo, "is a FIFO (named pipe), not a regular file"), (swap_for_symlink_leaving_the_root, "symbolic")],
)
def test_media_swapped_between_plan_and_copy_is_a_story_problem_not_a_hang(
    story: StoryBuilder,
    database: DatabaseTarget,
    assets_root: Path,
    tmp_path: Path,
    swap: Callable[[Path, Path], None],
    what: str,
) -> None:
    root = story.scenelets[0].id
    victim = assets_root / story.story_id / "shots" / root / "shot-2_key_frame.png"
    out = tmp_path / "out"
    assert api.assemble(story.story_id, database=database, assets_root=assets_root, out_dir=out).ok
    before = tree_files(out / story.story_id)

    class SwapWhenCopyingStarts:  # the real progress seam: called after planning, before any copy
        def start(self, total_bytes: int | None) -> None:
            swap(victim, tmp_path)

        def advance(self, count: int) -> None:
            pass

    def assemble_again() -> api.StoryReport:
        return api.assemble(
            story.story_id,
            database=database,
            assets_root=assets_root,
            out_dir=out,
            overwrite=True,
            progress=SwapWhenCopyingStarts(),
        )

    report = outcome_of(assemble_again, victim)  # a copy blocked on the FIFO fails instead of hanging

    assert isinstance(report, api.StoryReport) and not report.ok and report.exit_code == 1
    [problem] = [p for p in report.problems if p.severity == "error"]
    assert problem.code == "media-changed" and what in problem.message, problem.message
    assert (problem.scenelet_ref, problem.scenelet_label, problem.shot_index) == (root, "scenelet-1", 2)
    assert problem.path == str(victim)
    assert tree_files(out / story.story_id) == before  # the old bundle survives
    assert names(out) == [story.story_id]  # no staging left


# --- §5 faults -----------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB file system (tmpfs): writing more fails with ENOSPC."""
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, check=False
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_an_environment_error_naming_the_path(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, small_disk: Path
) -> None:
    out = small_disk / "out"
    common = [story.story_id, "--database-url", database.conninfo, "--assets-root", assets_root, "--out", out]
    assert run_cli("assemble", *common).returncode == 0
    before = tree_files(out / story.story_id)
    enlarge(music_file(story, assets_root), 8 * 1024 * 1024)

    result = run_cli("assemble", *common, "--overwrite", "--json", "--jobs", "1")
    assert result.returncode == 3, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "No space left on device" in line and str(out) in line and "Traceback" not in line
    assert json_of(result)["error"]["exitCode"] == 3
    assert tree_files(out / story.story_id) == before
    assert names(out) == [story.story_id]


@pytest.fixture
def immutable() -> Iterator[Callable[[Path], None]]:
    made: list[Path] = []

    def set_immutable(path: Path) -> None:
        result = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
        if result.returncode != 0:
            pytest.skip(f"chattr +i is not possible here: {result.stderr.decode().strip()}")
        made.append(path)

    yield set_immutable
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_an_immutable_bundle_folder_on_overwrite_is_an_environment_error(
    story: StoryBuilder,
    conn,  # type: ignore[no-untyped-def]
    database: DatabaseTarget,
    assets_root: Path,
    tmp_path: Path,
    immutable: Callable[[Path], None],
) -> None:
    out = tmp_path / "out"
    common = [story.story_id, "--database-url", database.conninfo, "--assets-root", assets_root, "--out", out]
    assert run_cli("assemble", *common).returncode == 0
    before = tree_files(out / story.story_id)
    conn.execute("update stories set display_name = 'Renamed' where id = %s", (story.story_id,))
    immutable(out / story.story_id)

    result = run_cli("assemble", *common, "--overwrite", "--json")
    assert result.returncode == 3, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert str(out / story.story_id) in line and "Operation not permitted" in line
    assert json_of(result)["error"]["exitCode"] == 3
    assert tree_files(out / story.story_id) == before
    assert names(out) == [story.story_id]


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_live_staging_folder_of_a_run_in_another_pid_namespace_is_left_alone(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    """A run in another container shows a PID that is not alive here; only its lock tells it is live."""
    out = tmp_path / "out"
    out.mkdir()
    pid = dead_pid()
    live = out / f".{story.story_id}.partial-{pid}-0123abcd"
    (live / "assets").mkdir(parents=True)
    (live / "assets" / "file.png").write_bytes(b"being written")
    stale = out / f".{story.story_id}.partial-{pid}-89abcdef"
    stale.mkdir()
    (out / f"{stale.name}.tar.gz.tmp").write_bytes(b"half an archive")
    (out / f"{stale.name}.lock").touch()  # nobody holds it: its run is gone
    legacy = out / f".{story.story_id}.tar.gz.0123456789abcdef.tmp"  # what older versions left
    legacy.write_bytes(b"half an archive")

    with open(out / f"{live.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other run, alive
        result = run_cli(
            "assemble", story.story_id, "--database-url", database.conninfo, "--assets-root", assets_root, "--out", out
        )
        assert result.returncode == 0, result.stderr
        assert (live / "assets" / "file.png").read_bytes() == b"being written"
    assert names(out) == sorted([story.story_id, live.name, f"{live.name}.lock"])


# --- verify: the player's manifest ---------------------------------------------------------------


def rewrite_player(bundle: Path, edit: Callable[[dict[str, object]], None]) -> None:
    """Change the manifest embedded in index.html and fix every checksum, so only the content differs."""
    player = bundle / "index.html"
    html = player.read_text(encoding="utf-8")
    found = re.search(r'(<script id="story-manifest" type="application/json">)(.*?)(</script>)', html, re.DOTALL)
    assert found is not None
    embedded = json.loads(found.group(2))
    edit(embedded)
    player.write_text(html[: found.start(2)] + embed_json(embedded) + html[found.end(2) :], encoding="utf-8")
    manifest = json.loads((bundle / "manifest.json").read_text())
    data = player.read_bytes()
    for entry in manifest["files"]:
        if entry["path"] == "index.html":
            entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    sums = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(bundle).as_posix()}"
        for p in sorted(bundle.rglob("*"))
        if p.is_file() and p.name != "SHA256SUMS"
    ]
    (bundle / "SHA256SUMS").write_text("".join(f"{line}\n" for line in sorted(sums, key=lambda s: s.split("  ")[1])))


def test_verify_checks_the_manifest_embedded_in_the_player(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert api.assemble(story.story_id, database=database, assets_root=assets_root, out_dir=out).ok
    bundle = out / story.story_id
    without_files = tmp_path / "without-files"
    shutil.copytree(bundle, without_files)
    rewrite_player(without_files, lambda manifest: manifest.pop("files", None))
    assert verify_bundle(without_files).ok  # the player may leave `files` out

    def retitle(manifest: dict[str, object]) -> None:
        manifest["metadata"] = {**manifest["metadata"], "title": "Another story"}  # type: ignore[dict-item]

    rewrite_player(bundle, retitle)
    report = verify_bundle(bundle)
    assert not report.ok
    assert [(p.code, p.path) for p in report.problems] == [("player-manifest-mismatch", "index.html")]
    assert "metadata" in report.problems[0].message


# --- §6 smaller contract gaps --------------------------------------------------------------------


MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize("command", ["check", "assemble"])
def test_story_not_found_is_a_problem(
    database: DatabaseTarget, assets_root: Path, tmp_path: Path, command: str
) -> None:
    extra = ["--out", str(tmp_path / "out")] if command == "assemble" else []
    result = run_cli(
        command, MISSING, "--database-url", database.conninfo, "--assets-root", assets_root, "--json", *extra
    )
    assert result.returncode == 1, result.stderr
    [problem] = json_of(result)["problems"]
    assert (problem["severity"], problem["code"]) == ("error", "story-not-found")
    assert MISSING in problem["message"]


def test_strict_reports_and_counts_warnings_as_errors(conn, database: DatabaseTarget, assets_root: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.builders import ShotSpec

    b = StoryBuilder()
    b.scenelet(shots=[ShotSpec(1), ShotSpec(2, image="missing/frame.png", write_image=False)])
    b.write_media(assets_root)
    b.insert(conn)
    common = [b.story_id, "--database-url", database.conninfo, "--assets-root", assets_root, "--json"]
    lenient = json_of(run_cli("check", *common))
    assert lenient["ok"] and lenient["stats"]["warnings"] >= 1
    result = run_cli("check", *common, "--strict")
    assert result.returncode == 1
    document = json_of(result)
    assert {p["severity"] for p in document["problems"]} == {"error"}
    assert document["stats"]["errors"] == len(document["problems"]) == lenient["stats"]["warnings"]
    assert document["stats"]["warnings"] == 0
    assert "warnings counted as errors under --strict" in result.stderr


@pytest.mark.parametrize("command", ["check", "assemble"])
def test_all_with_no_stories_is_exit_1(
    database: DatabaseTarget, assets_root: Path, tmp_path: Path, command: str
) -> None:
    result = run_cli(
        command, "--all", "--database-url", database.conninfo, "--assets-root", assets_root, "--json",
        *(["--out", str(tmp_path / "out")] if command == "assemble" else []),
    )  # fmt: skip
    assert result.returncode == 1
    assert "no stories found" in result.stderr.lower()
    document = json_of(result)
    assert document["ok"] is False and document["stories"] == []


def test_the_same_id_twice_still_gives_the_batch_shape(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path
) -> None:
    result = run_cli(
        "check", story.story_id, story.story_id.upper(), "--database-url", database.conninfo,
        "--assets-root", assets_root, "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json_of(result)
    assert document["ok"] is True and [s["storyId"] for s in document["stories"]] == [story.story_id]


def test_seed_if_missing_with_replace_is_a_usage_error(database: DatabaseTarget, tmp_path: Path) -> None:
    result = run_cli(
        "db", "seed", tmp_path / "story.yaml", "--if-missing", "--replace", "--database-url", database.conninfo
    )
    assert result.returncode == 2
    assert "--if-missing or --replace" in result.stderr


@pytest.mark.parametrize("value", ["99999999999999999", "soon", "1.5"])
def test_an_invalid_source_date_epoch_says_it_is_invalid(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, tmp_path: Path, value: str
) -> None:
    result = run_cli(
        "assemble", story.story_id, "--database-url", database.conninfo, "--assets-root", assets_root,
        "--out", tmp_path / "out", "--json", env={"SOURCE_DATE_EPOCH": value},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"SOURCE_DATE_EPOCH={value!r} is invalid" in result.stderr
    assert "Traceback" not in result.stderr
