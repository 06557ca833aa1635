#!/usr/bin/env python3
"""Regenerate the example media of examples/<story>/story.yaml (the files are committed).

    .venv/bin/python examples/make_media.py examples/lantern-keeper/story.yaml

Reads the story file and writes, under its ``media`` folder (which mirrors the
assets-root layout: stored paths minus a leading ``generated/``):

* key frames: 320x180 PNGs (a gradient sky and sea, a lighthouse or a boat, and
  the big "scenelet.shot" number so testers can see where the player is),
  encoded here with zlib + struct, no imaging library;
* shot narration and branch narration: 8 kHz mono 8-bit WAV, spoken by
  ``espeak-ng`` (a short lead-in of the line, at most MAX_SPEECH_S) or, when
  espeak-ng is missing, a plain tone;
* music: ``<story-id>/music/<cue name>.m4a``, a 3 s chord encoded as AAC by ``ffmpeg``.

Needs ffmpeg (``apt-get install ffmpeg espeak-ng``). Output is deterministic for
given tool versions (bit-exact flags, no metadata). Total stays well under 300 KB.
"""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
import sys
import tempfile
import wave
import zlib
from pathlib import Path
from typing import Any

import yaml

WIDTH, HEIGHT = 320, 180
MAX_SPEECH_S = 1.5  # keeps each narration file under ~12 KB
SAMPLE_RATE = 8000
BITEXACT = ["-fflags", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1"]

# 5x7 bitmap glyphs: enough for "10.2"
GLYPHS = {
    "0": ["01110", "10001", "10011", "10101", "11001", "10001", "01110"],
    "1": ["00100", "01100", "00100", "00100", "00100", "00100", "01110"],
    "2": ["01110", "10001", "00001", "00010", "00100", "01000", "11111"],
    "3": ["11110", "00001", "00001", "01110", "00001", "00001", "11110"],
    "4": ["00010", "00110", "01010", "10010", "11111", "00010", "00010"],
    "5": ["11111", "10000", "11110", "00001", "00001", "10001", "01110"],
    "6": ["00110", "01000", "10000", "11110", "10001", "10001", "01110"],
    "7": ["11111", "00001", "00010", "00100", "01000", "01000", "01000"],
    "8": ["01110", "10001", "10001", "01110", "10001", "10001", "01110"],
    "9": ["01110", "10001", "10001", "01111", "00001", "00010", "01100"],
    ".": ["00000", "00000", "00000", "00000", "00000", "01100", "01100"],
}
# sky top, sky bottom, sea colours per music mood (by scenelet number)
PALETTES = {
    "storm": ((12, 16, 38), (52, 62, 96), (10, 24, 40)),
    "sea": ((8, 30, 44), (40, 84, 98), (6, 40, 52)),
    "beam": ((24, 30, 70), (214, 150, 90), (20, 44, 78)),
}
Color = tuple[int, int, int]


class Canvas:
    def __init__(self) -> None:
        self.rows = [bytearray(WIDTH * 3) for _ in range(HEIGHT)]

    def pixel(self, x: int, y: int, color: Color) -> None:
        if 0 <= x < WIDTH and 0 <= y < HEIGHT:
            self.rows[y][3 * x : 3 * x + 3] = bytes(color)

    def hline(self, x0: int, x1: int, y: int, color: Color) -> None:
        x0, x1 = max(x0, 0), min(x1, WIDTH)
        if 0 <= y < HEIGHT and x0 < x1:
            self.rows[y][3 * x0 : 3 * x1] = bytes(color) * (x1 - x0)

    def gradient(self, top: Color, bottom: Color, y0: int, y1: int) -> None:
        for y in range(y0, y1):
            t = (y - y0) / max(y1 - y0 - 1, 1)
            self.hline(0, WIDTH, y, _mix(top, bottom, t))

    def circle(self, cx: int, cy: int, r: int, color: Color) -> None:
        for dy in range(-r, r + 1):
            half = int(math.sqrt(r * r - dy * dy))
            self.hline(cx - half, cx + half + 1, cy + dy, color)

    def trapezoid(self, cx: int, top: int, bottom: int, top_half: int, bottom_half: int, color: Color) -> None:
        for y in range(top, bottom):
            half = top_half + (bottom_half - top_half) * (y - top) // max(bottom - top, 1)
            self.hline(cx - half, cx + half, y, color)

    def text(self, x: int, y: int, text: str, scale: int, color: Color) -> None:
        for glyph in text:
            for gy, row in enumerate(GLYPHS[glyph]):
                for gx, bit in enumerate(row):
                    if bit == "1":
                        for dy in range(scale):
                            self.hline(x + gx * scale, x + (gx + 1) * scale, y + gy * scale + dy, color)
            x += 6 * scale

    def png(self) -> bytes:
        # filter 1 (Sub) per row: flat runs become zeros, so gradients compress to almost nothing
        raw = bytearray()
        for row in self.rows:
            raw.append(1)
            raw.extend(row[:3])
            raw.extend((row[i] - row[i - 3]) & 0xFF for i in range(3, len(row)))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
            + chunk(b"IEND", b"")
        )


def _mix(a: Color, b: Color, t: float) -> Color:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def key_frame(number: int, shot: int, mood: str, subject: str) -> bytes:
    top, horizon, sea = PALETTES[mood]
    canvas = Canvas()
    canvas.gradient(top, horizon, 0, 120)
    canvas.gradient(sea, (2, 6, 12), 120, HEIGHT)
    if subject == "lighthouse":
        canvas.trapezoid(240, 40, 132, 9, 17, (226, 222, 210))
        for band in (64, 96):  # red bands
            canvas.trapezoid(240, band, band + 10, 12, 14, (170, 40, 40))
        canvas.hline(226, 254, 38, (30, 30, 30))
        canvas.circle(240, 32, 7, (255, 214, 120) if mood == "beam" else (70, 80, 96))
        canvas.trapezoid(240, 132, 150, 22, 34, (18, 18, 22))  # the rock
    else:
        canvas.trapezoid(236, 128, 140, 30, 20, (120, 72, 40))  # hull
        canvas.trapezoid(226, 92, 128, 1, 1, (60, 40, 24))  # mast
        canvas.trapezoid(238, 96, 124, 0, 10, (214, 206, 186))  # sail
        canvas.circle(250, 118, 4, (190, 240, 120))  # lantern or jar glow
    label = f"{number}.{shot}"
    canvas.text(16, 16, label, 8, (245, 245, 240))
    return canvas.png()


def narration(text: str, target: Path, seed: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which("espeak-ng") is None:
        _tone(target, 330 + 40 * (seed % 7))
        return
    words = text.replace('"', "").split()
    spoken = " ".join(words[:5])
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "185", "-w", str(raw), spoken], check=True)
        fade = MAX_SPEECH_S - 0.15
        subprocess.run(
            [
                *("ffmpeg", "-v", "error", "-y", "-i", str(raw), "-t", str(MAX_SPEECH_S)),
                *("-af", f"afade=t=out:st={fade}:d=0.15", "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_u8"),
                *BITEXACT,
                str(target),
            ],
            check=True,
        )


def _tone(target: Path, frequency: int) -> None:
    frames = bytes(128 + round(60 * math.sin(2 * math.pi * frequency * i / SAMPLE_RATE)) for i in range(SAMPLE_RATE))
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(frames)


def music(target: Path, root_hz: float) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    chord = "+".join(f"0.12*sin(2*PI*{root_hz * r:.2f}*t)" for r in (1.0, 1.26, 1.5))
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"aevalsrc={chord}:s=22050:d=3"),
            *("-af", "afade=t=in:d=0.5,afade=t=out:st=2.3:d=0.7", "-ac", "1", "-c:a", "aac", "-b:a", "16k"),
            *BITEXACT,
            *("-movflags", "+faststart", "-f", "ipod", str(target)),
        ],
        check=True,
    )


def strip_generated(stored: str) -> str:
    return stored.removeprefix("./").removeprefix("/").removeprefix("generated/")


def main(story_file: Path) -> None:
    doc: dict[str, Any] = yaml.safe_load(story_file.read_text(encoding="utf-8"))
    media = story_file.parent / doc["media"]
    story_id = doc["story"]["id"]
    for number, scenelet in enumerate(doc["scenelets"], start=1):
        # the example's three music cues split the story: 1-2 storm, 3-6 at sea, 7-10 the beam
        mood = "storm" if number <= 2 else "sea" if number <= 6 else "beam"
        subject = "boat" if mood == "sea" else "lighthouse"
        for shot in scenelet.get("shots") or []:
            lines = shot["storyboard"].get("audioAndNarrative") or [{"line": scenelet["description"]}]
            if shot.get("key_frame"):
                target = media / strip_generated(shot["key_frame"])
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(key_frame(number, shot["index"], mood, subject))
            if shot.get("audio") and shot["audio"].strip().upper() != "N/A":
                narration(lines[0]["line"], media / strip_generated(shot["audio"]), number * 10 + shot["index"])
        branch_audio = scenelet.get("branch_audio")
        if branch_audio and branch_audio.strip().upper() != "N/A":
            narration(scenelet["choice_prompt"], media / strip_generated(branch_audio), number)
    document = doc["story"].get("audio_design_document") or {}
    cues = document.get("audio_design_document", document).get("music_and_ambience_cues", [])
    for position, cue in enumerate(cues):
        music(media / story_id / "music" / f"{cue['cue_name']}.m4a", 196.0 * 1.12**position)
    total = sum(f.stat().st_size for f in media.rglob("*") if f.is_file())
    print(f"wrote {sum(1 for f in media.rglob('*') if f.is_file())} files, {total / 1024:.0f} KB under {media}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "lantern-keeper" / "story.yaml"))
