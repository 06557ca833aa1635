"""A realistic story assembled master vs ``--web``: media bytes and ratio, encoding throughput per
core, and a re-assemble of the unchanged story with ``--web`` (time; nothing encoded).

``bench_web()`` is what ``bench/run.py`` calls; ``python bench/web_assemble.py OUT`` runs it alone and
leaves the master and ``--web`` bundles in OUT for ``bench/player_network.py``. Key frames are
generated art (``tests.media_synth.art_png``, 1024-1920 px), narration is espeak-ng speech.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from synth import Shape, generate  # noqa: E402
from web_encode import IMAGE_SIZES  # noqa: E402

from tests.media_synth import art_png, narration_text, speech_wav  # noqa: E402

SHAPE = Shape(
    name="web story",
    scenelets=16,
    shots_per_scenelet=3,
    branching=2,
    chain=2,
    image_bytes=1_000,
    audio_bytes=1_000,
    music_bytes=400_000,
    music_cues=2,
    media_shots=3,
)
JOBS = 2


def make_realistic(media_dir: Path) -> None:
    """Replace the synthetic key frames and narrations under ``media_dir`` with generated art and speech."""
    images = sorted(media_dir.rglob("*.png"))
    narrations = sorted(media_dir.rglob("*.wav"))

    def image(item: tuple[int, Path]) -> None:
        n, path = item
        path.write_bytes(art_png(*IMAGE_SIZES[n % len(IMAGE_SIZES)], seed=n))

    def narration(item: tuple[int, Path]) -> None:
        n, path = item
        path.write_bytes(speech_wav(narration_text(n, sentences=2 + n % 4)))

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(image, enumerate(images)))
        list(pool.map(narration, enumerate(narrations)))


def media_bytes(bundle: Path) -> int:
    files = json.loads((bundle / "manifest.json").read_text())["files"]
    return sum(f["bytes"] for f in files if f["path"].startswith("assets/"))


def bench_web(server: Any, out: Path, assemble: Callable[..., Any]) -> list[tuple[str, str]]:
    """(what, value) rows; ``assemble(env, *args)`` runs ``bundler`` and returns its ``run.Run``."""
    import psycopg
    from run import bundler_env

    from bundler.storage.local.records import RACY_MARGIN_NS

    assets = out / "assets"
    with psycopg.connect(server.uri, autocommit=True) as conn:
        story = generate(conn, SHAPE, assets, seed=7)
    make_realistic(story.media_dir)
    # a source written in the last moments is "racy" (storage.local.records.RACY_MARGIN_NS): no
    # record is kept for what is made from it, so the unchanged re-assemble below would encode it
    # again. A pipeline's media are older than that; let these settle too.
    time.sleep(RACY_MARGIN_NS / 1e9 + 0.5)
    env = bundler_env(server, assets)
    common = ["assemble", story.story_id, "--json", "--jobs", str(JOBS)]
    master = assemble(env, *common, "--out", str(out / "master"))
    web = assemble(env, *common, "--out", str(out / "web"), "--web")
    again = assemble(env, *common, "--out", str(out / "web"), "--web", "--overwrite")
    stats, again_stats = json.loads(web.stdout)["stats"], json.loads(again.stdout)["stats"]
    figures = stats["web"]
    encoded_master = figures["masterBytes"] - sum(
        f.stat().st_size for f in (out / "master" / story.story_id / "assets" / "music").iterdir()
    )
    build = stats["phases"]["build"] * JOBS  # core-seconds
    shots = json.loads((out / "web" / story.story_id / "manifest.json").read_text())["scenelets"]
    count = sum(len(s["shots"]) for s in shots)
    return [
        (f"--web story: {count} shots, {figures['encoded']} files encoded", ""),
        ("  master media", f"{media_bytes(out / 'master' / story.story_id) / 1e6:.1f} MB"),
        ("  --web media", f"{figures['webBytes'] / 1e6:.2f} MB (ratio {figures['ratio']:.3f})"),
        ("  assemble master / --web", f"{master.seconds:.2f} s / {web.seconds:.2f} s"),
        (
            f"  encoding throughput per core (--jobs {JOBS})",
            f"{figures['encoded'] / build:.1f} files/s, {encoded_master / build / 1e6:.1f} MB/s of master",
        ),
        (
            "  re-assemble unchanged --web",
            f"{again.seconds:.2f} s, encoded {again_stats['web']['encoded']}, reused {again_stats['web']['reused']}",
        ),
    ]


def main() -> int:
    from run import run, start_database, stop_database

    keep = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else None
    temp_root = Path(tempfile.mkdtemp(prefix="bundler-web-bench-"))
    out = keep or temp_root / "out"
    out.mkdir(parents=True, exist_ok=True)
    server = None
    try:
        server = start_database(temp_root)
        bundler = [sys.executable, "-m", "bundler"]
        rows = bench_web(server, out, lambda env, *args: run([*bundler, *args], env))
        for what, value in rows:
            print(f"{what}: {value}" if value else what)
        if keep:
            print(f"bundles in {out}/master and {out}/web")
    finally:
        stop_database(server, temp_root)
        if keep is None:
            shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
