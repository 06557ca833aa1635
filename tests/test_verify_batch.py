"""`verify` over several bundles, with hashing threads, `--quick`, and progress on a terminal."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import pytest

from bundler.api import verify as verify_bundle
from bundler.bundle.reader import Reading
from tests.bundle_factory import make_bundle, read_manifest
from tests.cli_helpers import BUNDLER, json_of, run_cli

OTHER_ID = "9c0ffee0-aaaa-4bbb-8ccc-000000000099"


def media_file(bundle: Path) -> Path:
    """The biggest media file the manifest lists (index.html, always read in full, is not media)."""
    media = [e for e in read_manifest(bundle)["files"] if e["path"].startswith("assets/")]
    entry = max(media, key=lambda e: (e["bytes"], e["path"]))
    return bundle / entry["path"]


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "good")


@pytest.fixture
def tampered(tmp_path: Path) -> Path:
    bundle = make_bundle(tmp_path / "tampered", OTHER_ID)
    flip_last_byte(media_file(bundle))  # same size, different bytes
    return bundle


def test_several_bundles_give_one_batch_document(good: Path, tampered: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = run_cli("verify", good, tampered, missing, "--json")
    document = json_of(result)  # validated against `bundler schema report`
    assert result.returncode == 3  # the worst: one bundle cannot be read at all
    assert document["ok"] is False
    assert [b["bundlePath"] for b in document["bundles"]] == [str(good), str(tampered), str(missing)]
    assert [b["ok"] for b in document["bundles"]] == [True, False, False]
    assert {p["code"] for p in document["bundles"][1]["problems"]} == {"checksum-mismatch"}
    assert document["bundles"][2]["error"]["exitCode"] == 3
    assert "1 of 3 bundles valid" in result.stderr


def test_several_valid_bundles_exit_0(good: Path, tmp_path: Path) -> None:
    other = make_bundle(tmp_path / "other", OTHER_ID)
    result = run_cli("verify", good, other)
    assert result.returncode == 0, result.stderr
    assert "2 of 2 bundles valid" in result.stderr


def test_an_invalid_bundle_in_a_batch_exits_1(good: Path, tampered: Path) -> None:
    result = run_cli("verify", tampered, good, "--jobs", "2")
    assert result.returncode == 1
    assert "checksum-mismatch" in result.stderr and "1 of 2 bundles valid" in result.stderr


def test_quick_checks_sizes_and_completeness_but_not_content(tampered: Path) -> None:
    assert not verify_bundle(tampered).ok
    quick = verify_bundle(tampered, Reading(quick=True))
    assert quick.ok, quick.problems  # same size: only hashing would notice

    truncated = media_file(tampered)
    truncated.write_bytes(truncated.read_bytes()[:-1])
    assert {p.code for p in verify_bundle(tampered, Reading(quick=True)).problems} == {"size-mismatch"}
    truncated.unlink()
    assert {p.code for p in verify_bundle(tampered, Reading(quick=True)).problems} == {"missing-file"}


def test_quick_through_the_cli(tampered: Path) -> None:
    result = run_cli("verify", tampered, "--quick", "--json")
    assert result.returncode == 0, result.stderr
    assert json_of(result)["ok"] is True
    assert "sizes and completeness only" in result.stderr


def test_quick_still_checks_the_manifest_and_checksum_list(good: Path) -> None:
    manifest = good / "manifest.json"
    manifest.write_bytes(manifest.read_bytes() + b" ")  # still valid JSON, no longer what SHA256SUMS says
    codes = {p.code for p in verify_bundle(good, Reading(quick=True)).problems}
    assert "checksum-mismatch" in codes


def test_hashing_threads_find_the_same_as_one_thread(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "many")
    for path in sorted(p for p in bundle.rglob("*") if p.suffix in (".png", ".wav"))[::2]:
        flip_last_byte(path)
    one = verify_bundle(bundle, Reading(jobs=1))
    four = verify_bundle(bundle, Reading(jobs=4))
    assert one.problems == four.problems and len(one.problems) >= 2
    assert one.stats == four.stats


class Counting:
    def __init__(self) -> None:
        self.totals: list[int | None] = []
        self.read = 0

    def start(self, total_bytes: int | None) -> None:
        self.totals.append(total_bytes)

    def advance(self, count: int) -> None:
        self.read += count


def test_progress_counts_every_byte_read(good: Path) -> None:
    progress = Counting()
    report = verify_bundle(good, Reading(jobs=3, progress=progress))
    assert progress.totals == [report.stats.bytes] and progress.read == report.stats.bytes


def test_progress_bar_on_a_terminal(good: Path) -> None:
    """On a TTY stderr shows a progress bar (rich), and the verdict."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "CI", "TERM")} | {"TERM": "xterm"}
    process = subprocess.Popen([*BUNDLER, "verify", str(good)], stdout=subprocess.PIPE, stderr=follower, env=env)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert process.wait(timeout=60) == 0
    text = output.decode("utf-8", "replace")
    assert "is valid" in text
    assert "━" in text  # rich's bar


def test_quiet_batch_prints_problems_and_the_summary_only(good: Path, tampered: Path) -> None:
    result = run_cli("verify", good, tampered, "--quiet")
    assert result.returncode == 1
    assert "checksum-mismatch" in result.stderr and "1 of 2 bundles valid" in result.stderr
    assert "is valid" not in result.stderr and "is invalid" not in result.stderr


def test_verbose_prints_the_time_taken(good: Path) -> None:
    result = run_cli("verify", good, "-v")
    assert result.returncode == 0, result.stderr
    assert "read and checked in" in result.stderr
