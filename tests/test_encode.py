"""The web profile's encoders (bundler.media.encode): formats, size cap, determinism, the missing extra, size ratio."""

from __future__ import annotations

import hashlib
import io
import re
import struct
import subprocess
import sys
import tempfile
import wave
from functools import cache
from pathlib import Path

import av
import pytest
from PIL import Image

from bundler.errors import EnvError, InputError, UsageError
from bundler.media.encode import (
    WEB_EXTRA_HINT,
    MediaEncodeError,
    WebExtraMissing,
    WebSettings,
    encode_key_frame,
    encode_narration,
    encoder_versions,
)
from bundler.media.structure import structure_problem
from tests.media_synth import art_png, speech_wav

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = WebSettings()


@cache
def small_art() -> bytes:
    return art_png(480, 270, seed=7)


@cache
def short_speech() -> bytes:
    return speech_wav("The lantern keeper climbed the stair as the storm came in.")


def problem(kind: str, data: bytes) -> str | None:
    return structure_problem(kind, len(data), lambda offset, length: data[offset : offset + length])  # type: ignore[arg-type]


def box_types(data: bytes) -> list[bytes]:
    """Top-level MP4 boxes in file order."""
    types, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        types.append(kind)
        offset += size
    return types


def test_key_frame_is_a_webp_that_decodes_at_the_same_size() -> None:
    web = encode_key_frame(small_art(), SETTINGS)
    assert problem("webp", web) is None
    with Image.open(io.BytesIO(web)) as image:
        assert (image.format, image.size, image.mode) == ("WEBP", (480, 270), "RGB")
        assert "exif" not in image.info and "xmp" not in image.info


def test_key_frame_from_a_path_equals_from_bytes(tmp_path: Path) -> None:
    source = tmp_path / "1_key_frame.png"
    source.write_bytes(small_art())
    assert encode_key_frame(source, SETTINGS) == encode_key_frame(small_art(), SETTINGS)


@pytest.mark.parametrize(("size", "expected"), [((480, 270), (200, 112)), ((270, 480), (112, 200))])
def test_the_longest_side_is_capped(size: tuple[int, int], expected: tuple[int, int]) -> None:
    png = art_png(*size, seed=1)
    with Image.open(io.BytesIO(encode_key_frame(png, WebSettings(max_side=200)))) as image:
        assert image.size == expected
    with Image.open(io.BytesIO(encode_key_frame(png, WebSettings(max_side=480)))) as image:
        assert image.size == size  # at the cap: untouched


def test_alpha_is_kept_only_when_a_pixel_is_not_opaque() -> None:
    def png(alpha: int) -> bytes:
        image = Image.open(io.BytesIO(small_art())).convert("RGBA")
        image.paste((0, 0, 0, alpha), (0, 0, 100, 100))
        out = io.BytesIO()
        image.save(out, "PNG")
        return out.getvalue()

    with Image.open(io.BytesIO(encode_key_frame(png(0), SETTINGS))) as see_through:
        assert see_through.mode == "RGBA"
        assert see_through.getpixel((50, 50))[3] == 0  # type: ignore[index]
    with Image.open(io.BytesIO(encode_key_frame(png(255), SETTINGS))) as opaque:
        assert opaque.mode == "RGB"


def test_narration_is_aac_in_an_m4a_that_starts_with_its_moov() -> None:
    source = short_speech()
    web = encode_narration(source, SETTINGS)
    assert problem("music", web) is None  # the project's own M4A check: ftyp with an audio brand, moov
    assert web[8:12] == b"M4A "
    assert box_types(web)[:2] == [b"ftyp", b"moov"]  # faststart: playable while it downloads
    with wave.open(io.BytesIO(source)) as reader:
        seconds = reader.getnframes() / reader.getframerate()
    with av.open(io.BytesIO(web)) as container:
        stream = container.streams.audio[0]
        assert (stream.codec_context.name, stream.codec_context.sample_rate, stream.codec_context.channels) == (
            "aac",
            22050,
            1,
        )
        decoded = sum(frame.samples for frame in container.decode(stream)) / 22050
    assert seconds - 0.05 < decoded < seconds + 0.1  # AAC pads the last frame; nothing is lost
    assert b"Lavf" not in web and b"Lavc" not in web  # bit-exact: no encoder version in the file


def test_stereo_at_an_odd_rate_becomes_stereo_at_the_next_aac_rate() -> None:
    with wave.open(io.BytesIO(short_speech())) as reader:
        mono = reader.readframes(reader.getnframes())
    stereo = b"".join(mono[i : i + 2] * 2 for i in range(0, len(mono), 2))
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(20000)  # no AAC stream can declare this rate
        writer.writeframes(stereo)
    with av.open(io.BytesIO(encode_narration(out.getvalue(), SETTINGS))) as container:
        context = container.streams.audio[0].codec_context
        assert (context.sample_rate, context.channels) == (22050, 2)


def test_a_source_that_does_not_decode_is_an_input_error() -> None:
    png = small_art()
    broken_png = png[:60] + bytes(len(png) - 72) + png[-12:]  # IHDR and IEND intact, the pixels zeroed
    with pytest.raises(MediaEncodeError, match="cannot encode the key frame") as raised:
        encode_key_frame(broken_png, SETTINGS)
    assert isinstance(raised.value, InputError)
    with pytest.raises(MediaEncodeError, match="cannot encode the narration"):
        encode_narration(b"RIFF\x04\x00\x00\x00WAVE", SETTINGS)


def test_settings_key_is_pinned_and_settings_are_checked() -> None:
    # the key is recorded in manifests and keys reuse: changing it re-encodes every published story
    assert SETTINGS.key() == "web1-webp-q80-m4-max1600-aac48k"
    assert WebSettings(image_quality=60, max_side=1280, audio_kbps=64).key() == "web1-webp-q60-m4-max1280-aac64k"
    assert SETTINGS.describe() == "WebP quality 80, longest side 1600 px; AAC 48 kbit/s per channel"
    for bad in ({"image_quality": 101}, {"max_side": 20000}, {"audio_kbps": 4}):
        with pytest.raises(UsageError):
            WebSettings(**bad)  # type: ignore[arg-type]


ENCODE_IN_A_FRESH_PROCESS = """
import hashlib, sys
from bundler.media.encode import WebSettings, encode_key_frame, encode_narration
image, audio = sys.argv[1], sys.argv[2]
print(hashlib.sha256(encode_key_frame(image, WebSettings())).hexdigest())
print(hashlib.sha256(encode_narration(audio, WebSettings())).hexdigest())
"""


def test_same_source_and_settings_give_the_same_bytes_in_fresh_processes(tmp_path: Path) -> None:
    image, audio = tmp_path / "key_frame.png", tmp_path / "audio.wav"
    image.write_bytes(small_art())
    audio.write_bytes(short_speech())
    here = [
        hashlib.sha256(encode_key_frame(image, SETTINGS)).hexdigest(),
        hashlib.sha256(encode_narration(audio, SETTINGS)).hexdigest(),
    ]
    assert hashlib.sha256(encode_narration(audio, SETTINGS)).hexdigest() == here[1]  # twice in one process
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-c", ENCODE_IN_A_FRESH_PROCESS, str(image), str(audio)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        assert result.stdout.split() == here
    other = WebSettings(image_quality=60)
    assert encode_key_frame(image, other) != encode_key_frame(image, SETTINGS)


WITHOUT_MODULE = """
import sys
import tempfile
sys.modules[sys.argv[1]] = None  # import of it now fails as if it were not installed
from bundler.media.encode import WebSettings, encode_key_frame, encode_narration, require_web_extra
from bundler.errors import BundlerError
settings = WebSettings()
for call in (require_web_extra, lambda: encode_key_frame(b"", settings), lambda: encode_narration(b"", settings)):
    try:
        call()
    except BundlerError as error:
        print(type(error).__name__, error.exit_code, error)
    else:
        print("no error")
"""


@pytest.mark.parametrize(("module", "needed_by"), [("PIL", (0, 1)), ("av", (0, 2))])
def test_without_the_extra_it_is_exit_3_naming_the_extra(module: str, needed_by: tuple[int, ...]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_MODULE, module], capture_output=True, text=True, check=True, cwd=ROOT
    )
    lines = result.stdout.splitlines()
    for index in needed_by:
        assert lines[index] == f"WebExtraMissing 3 {WEB_EXTRA_HINT}"
    assert WEB_EXTRA_HINT == "--web needs the optional extra: pip install 'story-bundler[web]'"
    assert issubclass(WebExtraMissing, EnvError)


def test_the_master_profile_never_imports_pillow_or_pyav() -> None:
    script = "import sys, bundler.media.encode, bundler.cli; print(sorted({'PIL', 'av'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == "[]"


def test_the_web_profile_weighs_at_most_a_fifth_of_the_master_on_realistic_content() -> None:
    images = [art_png(640, 360, seed) for seed in range(2)]
    narration = [short_speech()]
    master = sum(map(len, images + narration))
    web = sum(len(encode_key_frame(png, SETTINGS)) for png in images) + len(encode_narration(narration[0], SETTINGS))
    assert web <= 0.2 * master
    assert len(encode_narration(narration[0], SETTINGS)) <= 0.2 * len(narration[0])  # speech alone, too


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda data: data[:-10], "truncated"),
        (lambda data: data[:12] + b"JUNK" + data[16:], "no VP8, VP8L or VP8X chunk"),
        (lambda data: data[:8] + b"WAVE" + data[12:], "no RIFF/WEBP header"),
        (lambda data: data[:16] + struct.pack("<I", len(data)) + data[20:], "runs past the end"),
    ],
)
def test_the_webp_structure_check_names_what_is_wrong(mutate: object, message: str) -> None:
    web = encode_key_frame(small_art(), SETTINGS)
    found = problem("webp", mutate(web))  # type: ignore[operator]
    assert found is not None and message in found and found.startswith("is not a WebP image")
    assert problem("webp", b"") == "is empty"
    assert problem("image", web) is not None  # a WebP where the master profile wants a PNG


def test_no_temporary_folder_is_an_environment_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))  # as TMPDIR naming a removed folder
    with pytest.raises(EnvError, match="cannot write a temporary file to encode narration") as raised:
        encode_narration(short_speech(), SETTINGS)
    assert raised.value.exit_code == 3


def test_encoder_versions_name_the_libraries_that_write_the_bytes() -> None:
    assert re.fullmatch(r"libwebp \d+\.\d+\.\d+, libavcodec \d+\.\d+\.\d+", encoder_versions())
