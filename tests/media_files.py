"""Tiny real media files: valid PNG, RIFF/WAVE and MP4 (ftyp) content."""

from __future__ import annotations

import io
import struct
import wave
import zlib
from collections.abc import Callable
from pathlib import Path


def png_bytes(width: int = 4, height: int = 3, rgb: tuple[int, int, int] = (40, 90, 160)) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def wav_bytes(frames: int = 800, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(bytes((128 + (i % 16) * 4) & 0xFF for i in range(frames)))
    return buffer.getvalue()


def m4a_bytes() -> bytes:
    """``ftyp``, an empty ``moov`` and an empty ``mdat``: the structure the content checks want."""
    ftyp = b"M4A \x00\x00\x02\x00" + b"M4A mp42isom"
    return (
        struct.pack(">I", 8 + len(ftyp))
        + b"ftyp"
        + ftyp
        + struct.pack(">I", 8)
        + b"moov"
        + struct.pack(">I", 8)
        + b"mdat"
    )


CONTENT: dict[str, Callable[[], bytes]] = {"image": png_bytes, "audio": wav_bytes, "music": m4a_bytes}


def write_media(path: Path, kind: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(CONTENT[kind]())
    return path
