"""The web profile's encoders (docs/design.md §3, ``--web``): PNG key frames to WebP, WAV narration to AAC in M4A.

Pillow and PyAV are an optional extra (``story-bundler[web]``), imported here only,
on first use, so the master profile never loads them. Both encoders are pure
functions of (source bytes, settings): every option that changes the output
bytes is pinned, and nothing from the clock, the host or the source's metadata
reaches the file. Both do their heavy work in C with the GIL released (Pillow's
decoders, resampler and WebP encoder; FFmpeg's decoder, resampler and AAC
encoder), so ``--jobs`` threads encode in parallel.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from bundler.errors import EnvError, InputError, UsageError

if TYPE_CHECKING:
    from PIL import Image

Source = bytes | str | os.PathLike[str]  # the master file's bytes, or its local path

WEB_EXTRA_HINT: Final = "--web needs the optional extra: pip install 'story-bundler[web]'"

KEY_FRAME_SUFFIX: Final = ".webp"
NARRATION_SUFFIX: Final = ".m4a"
KEY_FRAME_MEDIA_TYPE: Final = "image/webp"
NARRATION_MEDIA_TYPE: Final = "audio/mp4"

# libwebp's effort level: 4 is its default and the knee of its size/speed curve (6 is ~2x slower
# for ~3 % smaller files); pinned because it changes the bytes
WEBP_METHOD: Final = 4
WEBP_MAX_SIDE: Final = 16383  # the format's limit

# sample rates an AAC stream can declare; any other source rate is resampled to the next one up
AAC_RATES: Final = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)


class WebExtraMissing(EnvError):
    """Pillow or PyAV is not importable: exit 3 with the one line that says how to get them."""

    def __init__(self, missing: str) -> None:
        super().__init__(WEB_EXTRA_HINT)
        self.missing = missing  # the module that failed to import, for logs and tests


class MediaEncodeError(InputError):
    """A source passed the structure check but cannot be decoded (corrupt body, unsupported variant)."""


@dataclass(frozen=True)
class WebSettings:
    """What shapes the web profile's bytes. ``key()`` goes into the manifest and keys reuse."""

    # libwebp lossy quality 0-100; 80 keeps generated art's gradients free of banding and
    # blocking at about a tenth of the PNG's size (bench/web_encode.py)
    image_quality: int = 80
    # longest side in pixels; 1600 covers a 1080p phone or a laptop window at full width,
    # and leaves today's 1024-1536 px generated frames untouched
    max_side: int = 1600
    # AAC-LC bit rate per channel: 48 kbit/s keeps synthetic and recorded speech clear
    # and is ~0.14x of 22.05 kHz 16-bit mono WAV (64 kbit/s would be ~0.2x on its own)
    audio_kbps: int = 48

    def __post_init__(self) -> None:
        if not 0 <= self.image_quality <= 100:
            raise UsageError(f"image quality must be 0-100, not {self.image_quality}")
        if not 16 <= self.max_side <= WEBP_MAX_SIDE:
            raise UsageError(f"the longest side cap must be 16-{WEBP_MAX_SIDE} px, not {self.max_side}")
        if not 8 <= self.audio_kbps <= 256:
            raise UsageError(f"the audio bit rate must be 8-256 kbit/s per channel, not {self.audio_kbps}")

    def describe(self) -> str:
        """For people: the report and ``--help`` text."""
        return (
            f"WebP quality {self.image_quality}, longest side {self.max_side} px; "
            f"AAC {self.audio_kbps} kbit/s per channel"
        )

    def key(self) -> str:
        """Stable, compact, versioned: recorded in the manifest and part of every reuse key.

        Bump the leading ``web1`` whenever the encoders change what they write for the same
        settings (a new pinned option, another container), so old encodings are not reused.
        """
        return f"web1-webp-q{self.image_quality}-m{WEBP_METHOD}-max{self.max_side}-aac{self.audio_kbps}k"


def require_web_extra() -> None:
    """Raise ``WebExtraMissing`` now, before any work, when Pillow or PyAV cannot be imported."""
    with _web_extra():
        import av  # noqa: F401
        from PIL import WebPImagePlugin  # noqa: F401  # fails when Pillow was built without libwebp


def encoder_versions() -> str:
    """The libraries that write the bytes, e.g. for the manifest's generator line.

    Same settings with another libwebp or FFmpeg may give other (equally valid) bytes.
    """
    with _web_extra():
        import av
        from PIL import features
    codec = ".".join(str(part) for part in av.library_versions["libavcodec"])
    return f"libwebp {features.version('webp')}, libavcodec {codec}"


def encode_key_frame(source: Source, settings: WebSettings) -> bytes:
    """A PNG key frame as lossy WebP, its longest side at most ``settings.max_side`` (LANCZOS)."""
    with _web_extra():
        from PIL import Image, WebPImagePlugin  # noqa: F401  # the plugin import fails without libwebp
    try:
        with Image.open(_readable(source), formats=["PNG"]) as opened:
            opened.load()
            icc = opened.info.get("icc_profile")  # kept: stripping it would shift a tagged image's colours
            image = _normalized(opened)
        image = _capped(image, settings.max_side)
        out = io.BytesIO()
        # every option that affects the bytes is explicit; no EXIF/XMP (orientation is applied above)
        image.save(
            out,
            "WEBP",
            lossless=False,
            quality=settings.image_quality,
            alpha_quality=100,
            method=WEBP_METHOD,
            exact=False,
            icc_profile=icc or None,
            exif=b"",
            xmp=b"",
        )
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaEncodeError(f"cannot encode the key frame as WebP: {_reason(exc)}") from exc
    return out.getvalue()


def encode_narration(source: Source, settings: WebSettings) -> bytes:
    """A WAV narration as AAC-LC in M4A, moov first (plays while it downloads), same channels up to stereo."""
    with _web_extra():
        import av
    try:
        with tempfile.TemporaryDirectory(prefix="bundler-m4a-") as folder:
            # the muxer moves the moov box to the front by reading its own output back: a real file
            target = Path(folder, "narration.m4a")
            _transcode(source, target, settings)
            return target.read_bytes()
    except (av.FFmpegError, ValueError) as exc:
        raise MediaEncodeError(f"cannot encode the narration as AAC: {_reason(exc)}") from exc
    except OSError as exc:  # the temporary folder (the source was read, or failed, above)
        raise EnvError(f"cannot write a temporary file to encode narration: {exc.strerror or exc}") from exc


def _transcode(source: Source, target: Path, settings: WebSettings) -> None:
    import av

    with av.open(_readable(source), "r", format="wav") as reader:
        if not reader.streams.audio:
            raise ValueError("the file holds no audio stream")
        incoming = reader.streams.audio[0]
        context = incoming.codec_context
        channels = 1 if context.channels == 1 else 2  # more than two: downmixed to stereo
        rate = next((r for r in AAC_RATES if r >= context.sample_rate), AAC_RATES[-1])
        # +bitexact: no encoder tag in the file, and FFmpeg's portable float code paths
        container_options = {"fflags": "+bitexact", "movflags": "+faststart"}
        with av.open(str(target), "w", format="ipod", options=container_options) as writer:
            stream = writer.add_stream("aac", rate=rate, options={"flags": "+bitexact", "aac_coder": "twoloop"})
            stream.bit_rate = settings.audio_kbps * 1000 * channels
            stream.format = "fltp"
            stream.layout = "mono" if channels == 1 else "stereo"
            for frame in reader.decode(incoming):
                for packet in stream.encode(frame):
                    writer.mux(packet)
            for packet in stream.encode(None):
                writer.mux(packet)


@contextmanager
def _web_extra() -> Iterator[None]:
    """Around the lazy imports only: an ImportError there means the extra is missing."""
    try:
        yield
    except ImportError as exc:
        raise WebExtraMissing(exc.name or "PIL/av") from exc


def _readable(source: Source) -> io.BytesIO | str:
    return io.BytesIO(source) if isinstance(source, bytes) else os.fspath(source)


def _normalized(image: Image.Image) -> Image.Image:
    """8-bit RGB, or RGBA when some pixel is not opaque; EXIF orientation applied."""
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit grey: scale, do not clip, to 8 bits
        image = image.point(lambda value: value * (1 / 256)).convert("L")
    target = "RGBA" if image.has_transparency_data else "RGB"
    if image.mode != target:
        image = image.convert(target)
    if target == "RGBA" and image.getchannel("A").getextrema() == (255, 255):
        image = image.convert("RGB")  # an alpha channel that hides nothing only costs bytes
    return image


def _capped(image: Image.Image, max_side: int) -> Image.Image:
    width, height = image.size
    longest = max(width, height)
    if longest <= max_side:
        return image
    size = (max_side, max(1, round(height * max_side / width)))
    if height > width:
        size = (max(1, round(width * max_side / height)), max_side)
    from PIL import Image

    return image.resize(size, Image.Resampling.LANCZOS)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
