"""Bench of the web profile's encoders on realistic content: bytes master vs web, and throughput.

``measure()`` is what ``bench/run.py`` calls; ``python bench/web_encode.py`` runs it alone.
Content: generated-art-like key frames (``tests.media_synth``) at the sizes image models
produce, one in three above the 1600 px cap (so downscaling is timed too), and narrations
of 2-6 sentences spoken by espeak-ng. Throughput is measured on 1 and 2 threads; the
GIL-free share says how much of an encode runs with the GIL released (a pure-Python
thread's progress during encodes, against its progress alone), which is what lets
``--jobs`` threads scale where cores are free.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bundler.media.encode import WebSettings, encode_key_frame, encode_narration  # noqa: E402
from tests.media_synth import art_png, narration_text, speech_wav  # noqa: E402

IMAGE_SIZES = ((1024, 1024), (1344, 768), (1920, 1080))  # square, landscape 16:9-ish, full HD (capped)


@dataclass(frozen=True)
class Throughput:
    threads: int
    seconds: float
    files: int
    master_bytes: int

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds

    @property
    def mb_per_second(self) -> float:  # of master input
        return self.master_bytes / self.seconds / 1e6


@dataclass(frozen=True)
class KindResult:
    kind: str
    files: int
    master_bytes: int
    web_bytes: int
    runs: tuple[Throughput, ...]
    gil_free: float  # 0..1

    @property
    def ratio(self) -> float:
        return self.web_bytes / self.master_bytes


def make_content(count: int, seed: int = 0) -> tuple[list[bytes], list[bytes]]:
    images = [art_png(*IMAGE_SIZES[i % len(IMAGE_SIZES)], seed=seed + i) for i in range(count)]
    narrations = [speech_wav(narration_text(seed + i, sentences=2 + i % 5)) for i in range(count)]
    return images, narrations


def _timed(encode: Callable[[bytes], bytes], items: list[bytes], threads: int) -> Throughput:
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(encode, items))
    return Throughput(threads, time.perf_counter() - start, len(items), sum(map(len, items)))


def gil_free_share(encode: Callable[[bytes], bytes], items: list[bytes], seconds: float = 1.5) -> float:
    """Progress of a pure-Python counting thread while encodes run, over its progress alone (1.0: never blocked)."""

    def count(stop: threading.Event, out: list[int]) -> None:
        n = 0
        while not stop.is_set():
            n += 1
        out.append(n)

    def rate(busy: Callable[[], None]) -> float:
        stop, out = threading.Event(), []
        counter = threading.Thread(target=count, args=(stop, out))
        start = time.perf_counter()
        counter.start()
        busy()
        stop.set()
        counter.join()
        return out[0] / (time.perf_counter() - start)

    def encode_for_a_while() -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            for item in items:
                encode(item)

    alone = rate(lambda: time.sleep(seconds))
    return min(1.0, rate(encode_for_a_while) / alone)


def reference_gil_free_share() -> float:
    """The same measure for SHA-256 over 16 MB, which runs entirely without the GIL: the ceiling
    this machine's load allows at the moment (other processes take cores from the counting thread)."""
    block = bytes(16_000_000)
    return gil_free_share(lambda data: hashlib.sha256(block).digest(), [b""])


def measure(count: int = 40, settings: WebSettings | None = None, seed: int = 0) -> list[KindResult]:
    settings = settings or WebSettings()
    images, narrations = make_content(count, seed)
    results = []
    for kind, encoder, items in (("key frames", encode_key_frame, images), ("narration", encode_narration, narrations)):

        def encode(data: bytes, encoder: Callable[[bytes, WebSettings], bytes] = encoder) -> bytes:
            return encoder(data, settings)

        web_bytes = sum(len(encode(item)) for item in items)  # also warms caches before timing
        runs = tuple(_timed(encode, items, threads) for threads in (1, 2))
        gil_free = gil_free_share(encode, items[:3])
        results.append(KindResult(kind, len(items), sum(map(len, items)), web_bytes, runs, gil_free))
    results.append(KindResult("(reference: SHA-256)", 0, 1, 0, (), reference_gil_free_share()))
    return results


def report(results: list[KindResult], settings: WebSettings | None = None) -> str:
    """Markdown for bench/results.md."""
    settings = settings or WebSettings()
    lines = [
        f"Web profile encoding ({settings.describe()}):",
        "",
        "| media | files | master MB | web MB | ratio | 1 thread: files/s (MB/s) | 2 threads | GIL-free |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if not r.runs:
            lines.append(f"| {r.kind} | | | | | | | {r.gil_free:.0%} |")
            continue
        one, two = r.runs
        lines.append(
            f"| {r.kind} | {r.files} | {r.master_bytes / 1e6:.1f} | {r.web_bytes / 1e6:.2f} | {r.ratio:.3f} "
            f"| {one.files_per_second:.1f} ({one.mb_per_second:.1f}) | {two.files_per_second:.1f} "
            f"({two.mb_per_second:.1f}) | {r.gil_free:.0%} |"
        )
    media = [r for r in results if r.runs]
    master = sum(r.master_bytes for r in media)
    web = sum(r.web_bytes for r in media)
    lines += [
        "",
        f"All media: {master / 1e6:.1f} MB master, {web / 1e6:.2f} MB web, ratio {web / master:.3f}. "
        f"Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=40, help="key frames and narrations each (default 40)")
    args = parser.parse_args()
    print(report(measure(args.count)))


if __name__ == "__main__":
    main()
