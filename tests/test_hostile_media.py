"""Hostile media from the database: special files never hang a run, truncated files are refused.

Every CLI call has a short timeout: a regression that blocks on a FIFO fails instead of hanging.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bundler.db.connect import DatabaseTarget
from bundler.errors import MediaChangedError
from bundler.media.structure import structure_problem, windowed
from bundler.pipeline.plan.types import FileCopy
from bundler.storage.local.copying import copy_and_hash, hash_file
from bundler.storage.local.files import SourceFile
from tests.builders import ShotSpec, StoryBuilder
from tests.cli_helpers import BUNDLER
from tests.media_files import m4a_bytes, png_bytes, wav_bytes

SEED_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "seed"
TIMEOUT = 60


def bundler(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GITHUB_ACTIONS", "SOURCE_DATE_EPOCH")}
    return subprocess.run(
        [*BUNDLER, *map(str, args)],
        capture_output=True,
        text=True,
        env=env | {"NO_COLOR": "1"},
        timeout=TIMEOUT,
        check=False,
    )


def judge(data: bytes, kind: str) -> str | None:
    return structure_problem(kind, len(data), lambda offset, length: data[offset : offset + length])  # type: ignore[arg-type]


# ------------------------------------------------------------------ special files


@pytest.fixture
def special_files_story(conn, assets_root: Path) -> Iterator[tuple[StoryBuilder, dict[str, str]]]:  # type: ignore[no-untyped-def]
    """A root scenelet whose shots point at a FIFO, a socket, a folder and (as root) a device."""
    specials = {"fifo": "p.png", "socket": "s.wav", "folder": "d.png"}
    os.mkfifo(assets_root / specials["fifo"])
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(assets_root / specials["socket"]))
    (assets_root / specials["folder"]).mkdir()
    try:
        os.mknod(assets_root / "c.png", stat.S_IFCHR | 0o600, os.makedev(1, 3))  # like /dev/null
        specials["device"] = "c.png"
    except PermissionError:
        pass
    builder = StoryBuilder(title="Specials")
    builder.scenelet(
        shots=[
            ShotSpec(1),
            ShotSpec(2, image=specials["fifo"], write_image=False),
            ShotSpec(3, audio=specials["socket"], write_audio=False),
            ShotSpec(4, image=specials["folder"], write_image=False),
            ShotSpec(5, image=specials.get("device", "N/A"), write_image=False),
        ],
        terminal=True,
    )
    builder.write_media(assets_root)
    builder.insert(conn)
    yield builder, specials
    listener.close()


@pytest.mark.parametrize(
    "command",
    [
        ["check"],
        ["check", "--all"],
        ["assemble", "--out", "OUT"],
        ["assemble", "--all", "--out", "OUT"],
    ],
)
def test_special_files_are_errors_and_never_block(
    special_files_story: tuple[StoryBuilder, dict[str, str]],
    database: DatabaseTarget,
    assets_root: Path,
    tmp_path: Path,
    command: list[str],
) -> None:
    story, specials = special_files_story
    args = [str(tmp_path / "out") if part == "OUT" else part for part in command]
    if "--all" not in args:
        args.insert(1, story.story_id)

    result = bundler(*args, "--database-url", database.conninfo, "--assets-root", assets_root, "--json")

    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    report = document["stories"][0] if "stories" in document else document
    found = {(p["code"], p["path"]) for p in report["problems"]}
    assert found == {("not-a-regular-file", path) for path in specials.values()}
    for path in specials.values():
        assert sum(path in line and "not-a-regular-file" in line for line in result.stderr.splitlines()) == 1
    assert not (tmp_path / "out" / story.story_id).exists()


def test_seed_with_a_fifo_in_its_media_folder_fails_fast(database: DatabaseTarget, tmp_path: Path) -> None:
    folder = tmp_path / "seed"
    shutil.copytree(SEED_FIXTURES / "media", folder / "media")
    shutil.copy(SEED_FIXTURES / "valid-minimal.yaml", folder / "story.yaml")
    key_frame = next((folder / "media").rglob("shot-1_key_frame.png"))
    key_frame.unlink()
    os.mkfifo(key_frame)

    result = bundler(
        "db", "seed", folder / "story.yaml", "--database-url", database.conninfo, "--assets-root", tmp_path / "assets"
    )

    assert result.returncode == 1, result.stderr
    assert "story.yaml" in result.stderr and "shot-1_key_frame.png" in result.stderr and "FIFO" in result.stderr


# ------------------------------------------------------------------ swapped after the check


PROMPT = 20  # seconds: far beyond any copy of a few bytes, short of hanging the suite


def outcome_of(call: Callable[[], object], fifo: Path) -> object:
    """What ``call`` returned or raised; a call still blocked (on ``fifo``) after ``PROMPT`` fails
    the test instead of hanging it (a writer opening the FIFO releases the blocked open)."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(PROMPT)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(PROMPT)
        pytest.fail(f"blocked on the FIFO {fifo}")
    return outcome[0]


def checked_copy(path: Path, data: bytes) -> FileCopy:
    """The copy the planner makes of ``path`` once the media check has passed it."""
    path.write_bytes(data)
    info = path.stat()
    return FileCopy("assets/shots/a/1_key_frame.png", SourceFile(str(path), info.st_size, info.st_mtime_ns), "image")


def test_a_source_swapped_for_a_fifo_after_the_check_is_media_changed_not_a_hang(tmp_path: Path) -> None:
    source = tmp_path / "key.png"
    copy = checked_copy(source, png_bytes())
    source.unlink()
    os.mkfifo(source)

    outcome = outcome_of(lambda: copy_and_hash(copy, tmp_path / "copied.png"), source)

    assert isinstance(outcome, MediaChangedError) and outcome.target == copy.target
    assert str(outcome) == (
        f"{source} was replaced while bundling: it is a FIFO (named pipe), not a regular file "
        "(assets/shots/a/1_key_frame.png)."
    )
    assert not (tmp_path / "copied.png").exists()


def test_a_source_swapped_for_a_symlink_after_the_check_is_not_followed(tmp_path: Path) -> None:
    source = tmp_path / "root" / "key.png"
    source.parent.mkdir()
    copy = checked_copy(source, png_bytes())
    outside = tmp_path / "secret.png"  # same size and format, outside the assets root
    outside.write_bytes(png_bytes(rgb=(1, 2, 3)))
    source.unlink()
    source.symlink_to(outside)

    with pytest.raises(MediaChangedError, match="replaced while bundling: it is a symbolic link") as raised:
        copy_and_hash(copy, tmp_path / "copied.png")

    assert raised.value.target == copy.target and str(source) in str(raised.value)
    assert not (tmp_path / "copied.png").exists()


def test_hashing_a_fifo_for_reuse_never_blocks(tmp_path: Path) -> None:
    fifo = tmp_path / "key.png"
    os.mkfifo(fifo)

    assert outcome_of(lambda: hash_file(fifo), fifo) is None


# ------------------------------------------------------------------ structure


def test_generated_test_media_is_well_formed() -> None:
    assert judge(png_bytes(), "image") is None
    assert judge(wav_bytes(), "audio") is None
    assert judge(m4a_bytes(), "music") is None


def test_example_media_is_well_formed() -> None:
    kinds = {".png": "image", ".wav": "audio", ".m4a": "music"}
    media = Path(__file__).resolve().parent.parent / "examples"
    checked = 0
    for path in sorted(media.rglob("*")):
        if path.suffix in kinds:
            assert judge(path.read_bytes(), kinds[path.suffix]) is None, path
            checked += 1
    assert checked >= 30


def box(kind: bytes, payload: bytes = b"", *, large: bool = False) -> bytes:
    if large:
        return struct.pack(">I", 1) + kind + struct.pack(">Q", 16 + len(payload)) + payload
    return struct.pack(">I", 8 + len(payload)) + kind + payload


FTYP = box(b"ftyp", b"M4A \x00\x00\x02\x00M4A isom")
PNG = png_bytes()
WAV = wav_bytes()


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        ("image", PNG[:40], "no IEND"),
        ("image", PNG[:8] + bytes(60), "IHDR"),
        ("image", PNG[:20], "truncated IHDR"),
        ("image", PNG[:-12], "no IEND"),
        ("image", b"GIF89a" + bytes(60), "no PNG signature"),
        ("image", b"", "empty"),
        ("audio", WAV[:44], "RIFF size"),
        ("audio", WAV[:12] + WAV[12:36] + b"data" + struct.pack("<I", 0), None),  # fixed below: zero samples
        ("audio", b"RIFF" + struct.pack("<I", 4) + b"WAVE", "no 'fmt ' or 'data' chunk"),
        ("audio", b"RIFX" + WAV[4:], "no RIFF/WAVE header"),
        ("music", FTYP[:16], "truncated"),
        ("music", FTYP, "no 'moov' box"),
        ("music", FTYP + box(b"mdat", bytes(100)), "no 'moov' box"),
        ("music", FTYP + box(b"moov", bytes(40))[:-10], "runs past the end"),
        ("music", box(b"ftyp", b"qt  \x00\x00\x00\x00qt  ") + box(b"moov"), "no MPEG-4 audio brand"),
        ("music", box(b"moov") + FTYP, "ftyp"),
        ("music", FTYP + struct.pack(">I", 4) + b"free", "impossible size"),
    ],
)
def test_broken_media_is_named(kind: str, data: bytes, expected: str | None) -> None:
    if expected is None:  # a WAV whose data chunk is empty: nothing to play
        data = b"RIFF" + struct.pack("<I", len(data) - 8) + data[8:]
        expected = "holds no samples"
    problem = judge(data, kind)
    assert problem is not None and expected in problem, problem


@pytest.mark.parametrize(
    "data",
    [
        FTYP + box(b"moov", bytes(20)) + box(b"mdat", bytes(50)),
        FTYP + box(b"mdat", bytes(50), large=True) + box(b"moov"),  # 64-bit size, moov at the end
        FTYP + box(b"moov") + struct.pack(">I", 0) + b"mdat" + bytes(30),  # size 0: to the end of the file
        box(b"ftyp", b"mp42\x00\x00\x00\x00mp42isom", large=True) + box(b"moov"),
    ],
)
def test_well_formed_mp4_variants_pass(data: bytes) -> None:
    assert judge(data, "music") is None


def test_wav_with_extra_chunks_and_odd_padding_passes() -> None:
    fmt = WAV[12:36]
    extra = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\x00"  # odd size, one pad byte
    samples = b"data" + struct.pack("<I", 4) + b"\x80\x80\x80\x80"
    body = b"WAVE" + extra + fmt + samples
    assert judge(b"RIFF" + struct.pack("<I", len(body)) + body, "audio") is None


def test_truncated_media_fails_check_even_without_strict(conn, database: DatabaseTarget, assets_root: Path) -> None:  # type: ignore[no-untyped-def]
    builder = StoryBuilder(title="Truncated")
    root = builder.scenelet(shots=[ShotSpec(1), ShotSpec(2), ShotSpec(3)], terminal=True)
    builder.music(("Storm", ["scenelet-1"]))
    builder.write_media(assets_root)
    builder.insert(conn)
    shots = assets_root / builder.story_id / "shots" / root
    (shots / "shot-1_key_frame.png").write_bytes(PNG[:40])
    (shots / "shot-2_key_frame.png").write_bytes(PNG[:8] + bytes(40))
    (assets_root / builder.story_id / "shots" / root / "3_audio.wav").write_bytes(WAV[:44])
    (assets_root / builder.story_id / "music" / "Storm.m4a").write_bytes(FTYP[:16])

    for extra in ([], ["--strict"]):
        result = bundler(
            "check", builder.story_id, *extra, "--database-url", database.conninfo, "--assets-root", assets_root,
            "--json",
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        problems = json.loads(result.stdout)["problems"]
        wrong = sorted(p["path"].rsplit("/", 1)[1] for p in problems if p["code"] == "wrong-media-format")
        assert wrong == ["3_audio.wav", "Storm.m4a", "shot-1_key_frame.png", "shot-2_key_frame.png"]
        assert all(p["severity"] == "error" for p in problems if p["code"] == "wrong-media-format")


SAMPLES = [
    PNG,
    WAV,
    FTYP + box(b"moov", bytes(20)) + box(b"mdat", bytes(50)),
    FTYP + box(b"mdat", bytes(90)) + box(b"moov"),
]


@settings(max_examples=300, deadline=None)
@given(
    sample=st.sampled_from(SAMPLES),
    kind=st.sampled_from(["image", "audio", "music"]),
    cut=st.integers(min_value=0, max_value=200),
    flips=st.lists(st.tuples(st.integers(min_value=0, max_value=199), st.integers(0, 255)), max_size=4),
    window=st.sampled_from([1, 8, 12, 44, 64, 4096]),
)
def test_reading_a_window_first_never_changes_a_verdict(
    sample: bytes, kind: str, cut: int, flips: list[tuple[int, int]], window: int
) -> None:
    """The probe reads a file's first bytes once (``windowed``); every verdict, and every
    message, must be the one that reading each header on its own gives."""
    data = bytearray(sample[: max(0, len(sample) - cut)])
    for position, value in flips:
        if position < len(data):
            data[position] = value
    raw = bytes(data)
    reads: list[tuple[int, int]] = []

    def plain(offset: int, length: int) -> bytes:
        reads.append((offset, length))
        return raw[offset : offset + length]

    expected = structure_problem(kind, len(raw), plain)  # type: ignore[arg-type]
    reads.clear()
    assert structure_problem(kind, len(raw), windowed(plain, len(raw), window)) == expected  # type: ignore[arg-type]
    if window >= 4096:  # all of these samples fit: one read in all
        assert len(reads) <= 1
