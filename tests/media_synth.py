"""Realistic media for the web profile's tests and bench: generated-art-like key frames and spoken narration.

Encoders behave on real content as they never do on flat colours (which compress to
nothing) or white noise (which does not compress at all): the key frames here are
landscapes built from multi-octave value noise (terrain, clouds, grain), gradients,
blurred shapes and a light falloff, all with Pillow; narration is speech from
``espeak-ng`` (22.05 kHz, mono, 16-bit). Both are deterministic for a seed.
"""

from __future__ import annotations

import io
import random
import shutil
import subprocess

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps

_SENTENCES = (
    "The lantern keeper climbed the spiral stair while a storm rolled in from the grey sea.",
    "Below, the harbour lights flickered and went out, one by one.",
    "She counted the ships that still had to come home.",
    "Would the old mirror hold for another night?",
    "Somewhere a bell rang twice, and the gulls fell silent over the cliffs.",
    "Her brother waited at the foot of the tower with a coil of rope and a question.",
    "The wind tore at the shutters, and the flame bent low but did not die.",
    "Far out, a single light answered hers.",
)

# (sky top, sky horizon, land dark, land light, light) colour sets of a few moods
_PALETTES = (
    ((24, 38, 92), (236, 150, 92), (22, 34, 30), (96, 128, 70), (255, 214, 150)),
    ((10, 14, 40), (70, 90, 150), (14, 16, 28), (60, 70, 110), (200, 220, 255)),
    ((90, 150, 215), (215, 230, 240), (40, 70, 36), (150, 170, 90), (255, 250, 230)),
    ((60, 20, 50), (240, 110, 80), (30, 12, 20), (140, 70, 60), (255, 190, 120)),
)


def fractal_noise(
    size: tuple[int, int], rng: random.Random, octaves: int = 6, base: int = 4, persistence: float = 0.5
) -> Image.Image:
    """Value noise summed over octaves (each twice the frequency, ``persistence`` times the weight), 8-bit."""
    width, height = size
    total: Image.Image | None = None
    weight_sum = 0.0
    weight = 1.0
    for octave in range(octaves):
        cells = base * 2**octave
        grid = (max(2, cells * width // max(width, height)), max(2, cells * height // max(width, height)))
        layer = Image.frombytes("L", grid, rng.randbytes(grid[0] * grid[1])).resize(size, Image.Resampling.BICUBIC)
        weight_sum += weight
        total = layer if total is None else Image.blend(total, layer, weight / weight_sum)
        weight *= persistence
    assert total is not None
    return ImageOps.autocontrast(total, cutoff=1)


def art_png(width: int = 1280, height: int = 720, seed: int = 0) -> bytes:
    """A painterly landscape key frame as PNG bytes (1-2 MB at 1280x720, like generated art)."""
    rng = random.Random(seed)
    size = (width, height)
    sky_top, horizon, land_dark, land_light, light = _PALETTES[seed % len(_PALETTES)]
    sky = ImageOps.colorize(Image.linear_gradient("L").resize(size), sky_top, horizon)
    clouds = ImageOps.colorize(fractal_noise(size, rng, octaves=7, base=3, persistence=0.62), horizon, (250, 246, 240))
    cloud_mask = fractal_noise(size, rng, octaves=4, base=2).point(lambda v: max(0, v - 110) * 2)
    picture = Image.composite(clouds, sky, cloud_mask)
    # a glowing sun or moon, soft-edged
    glow = Image.new("L", size, 0)
    cx, cy, radius = rng.uniform(0.2, 0.8) * width, rng.uniform(0.15, 0.4) * height, height * rng.uniform(0.05, 0.1)
    ImageDraw.Draw(glow).ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
    glow = glow.filter(ImageFilter.GaussianBlur(radius * 0.6))
    picture = Image.composite(Image.new("RGB", size, light), picture, glow)
    # ridges of hills, each a noisy skyline filled with textured ground, farther ones paler
    for layer in range(3):
        heights = fractal_noise((width, 1), rng, octaves=5, base=2).tobytes()
        top = height * (0.45 + 0.15 * layer)
        outline = [(x, top + (heights[x] - 128) / 255 * height * 0.25) for x in range(0, width, 4)]
        mask = Image.new("L", size, 0)
        ImageDraw.Draw(mask).polygon([*outline, (width, height), (0, height)], fill=255)
        mask = mask.filter(ImageFilter.GaussianBlur(1.5 + 2 * (2 - layer)))
        ground = ImageOps.colorize(fractal_noise(size, rng, octaves=7, base=6, persistence=0.72), land_dark, land_light)
        ground = Image.blend(ground, picture, 0.45 - 0.15 * layer)  # aerial perspective
        picture = Image.composite(ground, picture, mask)
    # light falloff toward the corners, and a fine painterly grain
    vignette = ImageOps.invert(Image.radial_gradient("L").resize(size)).point(lambda v: 110 + v * 145 // 255)
    picture = ImageChops.multiply(picture, Image.merge("RGB", (vignette, vignette, vignette)))
    grain = fractal_noise(size, rng, octaves=2, base=max(width, height) // 3)
    picture = ImageChops.overlay(picture, Image.merge("RGB", (grain, grain, grain)).point(lambda v: 120 + v // 16))
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def narration_text(seed: int, sentences: int = 3) -> str:
    """A few sentences of plausible narration, deterministic for ``seed``."""
    rng = random.Random(seed)
    return " ".join(rng.choice(_SENTENCES) for _ in range(sentences))


def espeak() -> str:
    """The speech synthesiser; the web tests need it (`.ci/run` installs it), so its absence fails loudly."""
    found = shutil.which("espeak-ng")
    if found is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    return found


def speech_wav(text: str, voice: str = "en-us", words_per_minute: int = 165) -> bytes:
    """``text`` spoken by espeak-ng as WAV bytes: 22.05 kHz, mono, 16-bit PCM."""
    result = subprocess.run(
        [espeak(), "-v", voice, "-s", str(words_per_minute), "--stdout", text],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return fix_streamed_wav(result.stdout)


def fix_streamed_wav(data: bytes) -> bytes:
    """espeak-ng writing to a pipe cannot seek back, so its RIFF and data sizes say 'unknown': set them."""
    if data[:4] != b"RIFF" or data[12:16] != b"fmt ":
        raise ValueError("espeak-ng did not write a WAV file")
    fmt_size = int.from_bytes(data[16:20], "little")
    data_header = 20 + fmt_size
    if data[data_header : data_header + 4] != b"data":
        raise ValueError("espeak-ng's WAV has no data chunk after fmt")
    body = len(data) - data_header - 8
    return (
        b"RIFF"
        + (len(data) - 8).to_bytes(4, "little")
        + data[8:data_header]
        + b"data"
        + body.to_bytes(4, "little")
        + data[data_header + 8 :]
    )
