"""``bundler verify``: complete, valid and consistent bundles pass; every kind of damage is named."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from bundler import api
from bundler.api import verify as verify_bundle
from bundler.bundle.archive import archive_timestamp
from bundler.cli import _register, app
from bundler.db.connect import DatabaseTarget
from bundler.storage.local.destination import write_archive
from tests.builders import StoryBuilder
from tests.bundle_factory import END, EXPORTED_AT, LEFT, RIGHT, ROOT, edit_manifest, make_bundle
from tests.cli_helpers import REPORT_META, run_cli
from tests.schema_check import check_cli_output

_register()

KEY_FRAME = f"assets/shots/{ROOT}/1_key_frame.png"
NARRATION = f"assets/shots/{LEFT}/1_audio.wav"


def run_verify(*args: str | Path) -> Result:
    return CliRunner().invoke(app, ["verify", *map(str, args)])


def verify_json(result: Result) -> Any:
    """The --json document of an in-process run, checked against the report schema."""
    document = json.loads(result.stdout)
    check_cli_output(["verify"], document)
    return document


def codes(path: Path) -> set[tuple[str, str | None]]:
    return {(p.code, p.path) for p in verify_bundle(path).problems}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "out")


# --- valid bundles ------------------------------------------------------------------------------


def test_fresh_bundle_is_valid(bundle: Path) -> None:
    report = verify_bundle(bundle)
    on_disk = [p for p in bundle.rglob("*") if p.is_file()]
    assert report.ok and report.problems == ()
    assert report.stats.files == len(on_disk) == 13
    assert report.stats.bytes == sum(p.stat().st_size for p in on_disk)
    assert report.stats.scenelets == 4


def test_cli_prints_one_json_document_and_exits_0(bundle: Path) -> None:
    result = run_verify(bundle, "--json")
    assert result.exit_code == 0, result.stderr
    document = verify_json(result)
    assert document == {
        "ok": True,
        "bundlePath": str(bundle),
        "problems": [],
        "stats": {"files": 13, "bytes": document["stats"]["bytes"], "scenelets": 4},
        **REPORT_META,
    }
    assert "is valid" in result.stderr


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs coreutils sha256sum")
def test_factory_bundle_passes_sha256sum_check(bundle: Path) -> None:
    # keeps the factory honest: it must mirror the real SHA256SUMS format
    result = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=bundle, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": OK") == 12


def test_bundle_assembled_from_the_database_verifies(
    conn: Any, database: DatabaseTarget, assets_root: Path, tmp_path: Path
) -> None:
    story = StoryBuilder(title="Verified")
    root = story.scenelet(shots=2, prompt="Which door?")
    story.scenelet(root, choice_label="Red", terminal=True)
    story.scenelet(root, choice_label="Blue")
    story.music(("Theme: One", ["scenelet-1", "scenelet-2"]))
    story.write_media(assets_root)
    story.insert(conn)
    report = api.assemble(
        story.story_id, database=database, assets_root=assets_root, out_dir=tmp_path / "out", archive="tar.gz"
    )
    assert report.ok and report.bundle_path and report.archive_path, report.problems
    for target in (report.bundle_path, report.archive_path):
        verified = verify_bundle(target)
        assert verified.ok, verified.problems
        assert verified.stats.scenelets == 3
        assert verified.stats.files == report.stats["files"]


# --- damage: exit 1, each bad file named ------------------------------------------------------


def flip_byte(bundle: Path) -> None:
    data = bytearray((bundle / KEY_FRAME).read_bytes())
    data[-5] ^= 0xFF
    (bundle / KEY_FRAME).write_bytes(bytes(data))


def truncate(bundle: Path) -> None:
    path = bundle / NARRATION
    path.write_bytes(path.read_bytes()[:-3])


def remove(bundle: Path) -> None:
    (bundle / NARRATION).unlink()


def add_extra(bundle: Path) -> None:
    (bundle / "assets" / "notes.txt").write_text("not part of the bundle")


def edit_sums(bundle: Path) -> None:
    sums = bundle / "SHA256SUMS"
    lines = sums.read_text().splitlines(keepends=True)
    lines = [("0" * 64 + "  index.html\n") if line.endswith("  index.html\n") else line for line in lines]
    sums.write_text("".join(lines))


def point_shot_at_missing_file(bundle: Path) -> None:
    def change(manifest: dict[str, Any]) -> None:
        manifest["scenelets"][2]["shots"][0]["imagePath"] = f"assets/shots/{END}/9_key_frame.png"

    edit_manifest(bundle, change)


def list_missing_file(bundle: Path) -> None:
    def change(manifest: dict[str, Any]) -> None:
        entry = {**manifest["files"][0], "path": "assets/zz-missing.png"}
        manifest["files"] = sorted([*manifest["files"], entry], key=lambda e: e["path"])

    edit_manifest(bundle, change)


def edit_manifest_unsigned(bundle: Path) -> None:
    path = bundle / "manifest.json"
    path.write_text(path.read_text().replace("The Lantern Keeper", "The Lantern Keeper 2"))


DAMAGE: dict[str, tuple[Callable[[Path], None], set[tuple[str, str]]]] = {
    "flipped byte": (flip_byte, {("checksum-mismatch", KEY_FRAME)}),
    "truncated file": (truncate, {("size-mismatch", NARRATION)}),
    "removed file": (remove, {("missing-file", NARRATION)}),
    "extra file": (add_extra, {("extra-file", "assets/notes.txt")}),
    "edited SHA256SUMS": (edit_sums, {("sha256sums-mismatch", "index.html")}),
    "shot points at a missing file": (
        point_shot_at_missing_file,
        {("dangling-reference", f"assets/shots/{END}/9_key_frame.png")},
    ),
    "manifest lists a missing file": (list_missing_file, {("missing-file", "assets/zz-missing.png")}),
    # the title changed in manifest.json only: the player still embeds the old one
    "manifest edited after signing": (
        edit_manifest_unsigned,
        {("checksum-mismatch", "manifest.json"), ("player-manifest-mismatch", "index.html")},
    ),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_damage_is_named_and_exits_1(bundle: Path, damage: str) -> None:
    apply, expected = DAMAGE[damage]
    apply(bundle)
    assert codes(bundle) == expected
    result = run_verify(bundle)
    assert result.exit_code == 1
    for code, path in expected:
        assert any(line.startswith(f"error {code} {path}: ") for line in result.stderr.splitlines()), result.stderr


def test_json_on_failure_is_one_document_with_every_problem(bundle: Path) -> None:
    flip_byte(bundle)
    remove(bundle)
    add_extra(bundle)
    result = run_verify(bundle, "--json")
    assert result.exit_code == 1
    document = verify_json(result)
    assert document["ok"] is False and document["bundlePath"] == str(bundle)
    assert {(p["code"], p["path"]) for p in document["problems"]} == {
        ("checksum-mismatch", KEY_FRAME),
        ("missing-file", NARRATION),
        ("extra-file", "assets/notes.txt"),
    }
    assert all(p["severity"] == "error" for p in document["problems"])
    assert document["stats"]["files"] == 13


def test_real_console_script_exit_code(bundle: Path) -> None:
    remove(bundle)
    result = run_cli("verify", bundle)
    assert result.returncode == 1
    assert f"error missing-file {NARRATION}: " in result.stderr


# --- graph consistency --------------------------------------------------------------------------


def _scenelet(manifest: dict[str, Any], uid: str) -> dict[str, Any]:
    return next(s for s in manifest["scenelets"] if s["id"] == uid)


GRAPH: dict[str, tuple[Callable[[dict[str, Any]], None], set[tuple[str, str | None]]]] = {
    "unknown root": (
        lambda m: m.update(rootSceneletId="00000000-0000-0000-0000-000000000000"),
        # nothing is reachable from a root that does not exist, so only the root is reported
        {("unknown-scenelet", "manifest.json")},
    ),
    "linear target unknown": (
        lambda m: _scenelet(m, LEFT)["next"].update(sceneletId="nope"),
        {("unknown-scenelet", "manifest.json"), ("unreachable-scenelet", "manifest.json")},
    ),
    "choice target unknown": (
        lambda m: _scenelet(m, ROOT)["next"]["choices"][1].update(sceneletId="nope"),
        {("unknown-scenelet", "manifest.json"), ("unreachable-scenelet", "manifest.json")},
    ),
    "cue names an unknown scenelet": (
        lambda m: m["music"]["cues"][0]["sceneletIds"].append("nope"),
        {("unknown-scenelet", "manifest.json")},
    ),
    "cue map names an unknown cue": (
        lambda m: m["music"]["sceneletCueMap"].update({ROOT: "Nobody"}),
        {("unknown-cue", "manifest.json")},
    ),
    "cue map key is not a scenelet": (
        lambda m: m["music"]["sceneletCueMap"].update({"nope": "Night Watch"}),
        {("unknown-scenelet", "manifest.json")},
    ),
    "parent path in a shot": (
        lambda m: _scenelet(m, RIGHT)["shots"][0].update(imagePath="../outside.png"),
        {("unsafe-path", "../outside.png")},
    ),
    "absolute path in a cue": (
        lambda m: m["music"]["cues"][1].update(audioPath="/etc/passwd"),
        {("unsafe-path", "/etc/passwd")},
    ),
    "key frame that is not a PNG": (
        lambda m: _scenelet(m, RIGHT)["shots"][0].update(imagePath=NARRATION),
        {("wrong-media-format", NARRATION)},
    ),
    "unreachable scenelet": (
        lambda m: _scenelet(m, LEFT).update(next={"type": "terminal"}),
        {("unreachable-scenelet", "manifest.json")},
    ),
    "wrong format": (lambda m: m.update(formatVersion=2), {("unsupported-format", "manifest.json")}),
    "branch with one choice": (
        lambda m: _scenelet(m, ROOT)["next"]["choices"].pop(),
        {("invalid-manifest", "manifest.json"), ("unreachable-scenelet", "manifest.json")},
    ),
}


@pytest.mark.parametrize("case", GRAPH, ids=list(GRAPH))
def test_inconsistent_graph_is_reported(bundle: Path, case: str) -> None:
    change, expected = GRAPH[case]
    edit_manifest(bundle, change)
    assert codes(bundle) == expected
    assert run_verify(bundle).exit_code == 1


def test_problems_carry_the_scenelet_and_shot(bundle: Path) -> None:
    point_shot_at_missing_file(bundle)
    (problem,) = verify_bundle(bundle).problems
    assert (problem.severity, problem.scenelet_ref, problem.scenelet_label, problem.shot_index) == (
        "error",
        END,
        "scenelet-3",
        1,
    )


def test_malformed_manifest_values_are_problems_not_crashes(bundle: Path) -> None:
    def change(manifest: dict[str, Any]) -> None:
        manifest["rootSceneletId"] = ["not", "a", "string"]
        manifest["scenelets"][1]["next"] = {"type": ["linear"]}
        manifest["scenelets"][2]["shots"] = [{"shotIndex": "one"}]
        manifest["music"] = {"cues": [{"cueName": 3}], "sceneletCueMap": {ROOT: {"x": 1}}}
        manifest["files"][0]["sha256"] = "XYZ"

    edit_manifest(bundle, change)
    report = verify_bundle(bundle)
    assert not report.ok
    assert {p.code for p in report.problems} >= {"unknown-scenelet", "invalid-manifest", "unknown-cue"}


# --- unreadable: exit 3 -------------------------------------------------------------------------


def _empty_folder(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def _manifest_not_json(tmp: Path) -> Path:
    bundle = make_bundle(tmp)
    (bundle / "manifest.json").write_text("{ not json")
    return bundle


def _text_file(tmp: Path) -> Path:
    (tmp / "notes.txt").write_text("hello")
    return tmp / "notes.txt"


def _truncated_tar_gz(tmp: Path) -> Path:
    archive = write_archive(make_bundle(tmp), "tar.gz", archive_timestamp(EXPORTED_AT))
    archive.write_bytes(archive.read_bytes()[:-200])
    return archive


def _archive_without_manifest(tmp: Path) -> Path:
    with zipfile.ZipFile(tmp / "x.zip", "w") as archive:
        archive.writestr("a/index.html", "<p>")
        archive.writestr("a/b/manifest.json", "{}")
    return tmp / "x.zip"


def _archive_with_two_bundles(tmp: Path) -> Path:
    with zipfile.ZipFile(tmp / "x.zip", "w") as archive:
        archive.writestr("a/manifest.json", "{}")
        archive.writestr("b/manifest.json", "{}")
    return tmp / "x.zip"


UNREADABLE: dict[str, Callable[[Path], Path]] = {
    "missing path": lambda tmp: tmp / "nothing-here",
    "empty folder": _empty_folder,
    "manifest not JSON": _manifest_not_json,
    "not an archive": _text_file,
    "truncated tar.gz": _truncated_tar_gz,
    "archive without a bundle": _archive_without_manifest,
    "archive with two bundles": _archive_with_two_bundles,
}


@pytest.mark.parametrize("case", UNREADABLE, ids=list(UNREADABLE))
def test_unreadable_exits_3_with_a_json_document(tmp_path: Path, case: str) -> None:
    target = UNREADABLE[case](tmp_path)
    result = run_verify(target, "--json")
    assert result.exit_code == 3, result.stderr
    document = verify_json(result)
    assert document["ok"] is False and document["error"]["exitCode"] == 3
    assert document["bundlePath"] == str(target.absolute())
    assert result.stderr.startswith("error: ")


# --- archives -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_verify_reads_archives_directly(bundle: Path, fmt: Any) -> None:
    archive = write_archive(bundle, fmt, archive_timestamp(EXPORTED_AT))
    report = verify_bundle(archive)
    assert report.ok, report.problems
    assert report.stats == verify_bundle(bundle).stats
    assert run_verify(archive).exit_code == 0


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_damage_inside_an_archive_is_named_by_bundle_path(bundle: Path, fmt: Any) -> None:
    flip_byte(bundle)
    add_extra(bundle)
    archive = write_archive(bundle, fmt, archive_timestamp(EXPORTED_AT))
    assert codes(archive) == {("checksum-mismatch", KEY_FRAME), ("extra-file", "assets/notes.txt")}
    result = run_verify(archive)
    assert result.exit_code == 1 and f"error checksum-mismatch {KEY_FRAME}: " in result.stderr


def test_archive_with_files_at_the_top_level(bundle: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "flat.zip", "w") as archive:
        for path in sorted(bundle.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(bundle).as_posix())
    assert verify_bundle(tmp_path / "flat.zip").ok


def test_stray_file_beside_the_bundle_folder_is_extra(bundle: Path, tmp_path: Path) -> None:
    archive = write_archive(bundle, "zip", archive_timestamp(EXPORTED_AT))
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("README.txt", "hello")
    assert codes(archive) == {("extra-file", "README.txt")}


def test_uncompressed_tar_and_dot_slash_names_are_read(bundle: Path, tmp_path: Path) -> None:
    # `tar -C out -cf x.tar ./<id>` style names
    import tarfile

    with tarfile.open(tmp_path / "plain.tar", "w") as archive:
        archive.add(bundle, arcname=f"./{bundle.name}")
    assert verify_bundle(tmp_path / "plain.tar").ok


def test_links_in_an_archive_are_reported(bundle: Path, tmp_path: Path) -> None:
    import io
    import tarfile

    target = tmp_path / "links.tar.gz"
    with gzip.open(target, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as archive:
        for path in sorted(bundle.rglob("*")):
            archive.add(path, arcname=f"{bundle.name}/{path.relative_to(bundle).as_posix()}", recursive=False)
        link = tarfile.TarInfo(f"{bundle.name}/assets/link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link, io.BytesIO())
    assert codes(target) == {("not-a-regular-file", "assets/link.png")}


def test_symlink_in_a_bundle_folder_is_not_followed(bundle: Path) -> None:
    (bundle / "assets" / "link.png").symlink_to(bundle / KEY_FRAME)
    assert codes(bundle) == {("not-a-regular-file", "assets/link.png")}
