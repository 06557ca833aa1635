"""``make bench``, object storage next to its floor: bundler against the AWS CLI, same store, same run.

A moto S3 server (``tests/s3_server.py``) behind a latency proxy (``s3proxy.py``: 20 ms per
request, every request logged with its bytes each way). Three release jobs of a CI runner that
keeps nothing (each command in a fresh working directory, ``TMPDIR`` and ``HOME``):

1. cold assemble from a bucket (``--assets-root s3://``) vs ``aws s3 cp --recursive`` of the media;
2. one key frame changed, republish (``--out s3:// --overwrite``, media on disk) vs
   ``aws s3 sync`` of the bundle folder with that change;
3. nothing changed, bucket to bucket (media in a bucket, bundle to a bucket) vs ``aws s3 sync``
   of the media to an up-to-date copy (what "nothing to do" costs the CLI: listings).

Run only this part: ``.venv/bin/python bench/s3compare.py`` (``BENCH_REPS``, ``BENCH_S3_DELAY_MS``).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from s3proxy import Logged, read_log  # noqa: E402
from synth import Shape  # noqa: E402

DELAY_MS = float(os.environ.get("BENCH_S3_DELAY_MS", "20"))
REPS = max(1, min(3, int(os.environ.get("BENCH_REPS", "3"))))
# ~400 objects, as in issue 20: 40 scenelets x 5 shots, a key frame and a narration each, branch
# narrations and two music cues
STORY_400 = Shape(
    name="400 objects",
    scenelets=40,
    shots_per_scenelet=5,
    branching=2,
    chain=4,
    image_bytes=200_000,
    audio_bytes=100_000,
    music_bytes=1_000_000,
    music_cues=2,
    media_shots=5,
)


@dataclass
class Measured:
    seconds: float
    requests: list[Logged]

    @property
    def kinds(self) -> Counter[str]:
        return Counter(r.kind for r in self.requests)

    @property
    def up(self) -> int:
        return sum(r.bytes_in for r in self.requests)

    @property
    def down(self) -> int:
        return sum(r.bytes_out for r in self.requests)

    def describe(self) -> str:
        kinds = ", ".join(f"{n:,} {kind}" for kind, n in sorted(self.kinds.items()))
        return f"{len(self.requests):,} requests ({kinds}); up {self.up / 1e6:.2f} MB, down {self.down / 1e6:.2f} MB"


class Store:
    """The S3 server, the proxy in front of it, and fresh runner folders for each command."""

    def __init__(self, work: Path) -> None:
        from tests.s3_server import S3Server

        self.work = work
        self.server = S3Server()
        self.server.start()
        self.log = work / "s3-proxy.log"
        self.proxy = subprocess.Popen(
            [sys.executable, str(HERE / "s3proxy.py"), self.server.endpoint, str(self.log), str(DELAY_MS)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proxy.stdout is not None
        self.endpoint = f"http://127.0.0.1:{int(self.proxy.stdout.readline())}"
        self.bucket = self.server.new_bucket()
        self.offset = 0
        self.runners = 0

    def close(self) -> None:
        self.proxy.terminate()
        self.proxy.wait(10)
        self.server.stop()

    def aws_env(self, base: dict[str, str]) -> dict[str, str]:
        env = {**base, **self.server.env(), "AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
        env.pop("BUNDLER_ASSETS_ROOT", None)
        return env

    def runner(self) -> Path:
        """A fresh working directory with its own TMPDIR and HOME, as a CI runner starts."""
        self.runners += 1
        folder = self.work / f"runner-{self.runners}"
        for sub in ("tmp", "home"):
            (folder / sub).mkdir(parents=True)
        (folder / "home" / ".aws").mkdir()
        # path-style addressing for the CLI: the store is one host, not a host per bucket
        (folder / "home" / ".aws" / "config").write_text("[default]\ns3 =\n  addressing_style = path\n")
        return folder

    def measure(self, run: Callable[..., Any], cmd: Sequence[str], env: dict[str, str]) -> Measured:
        folder = self.runner()
        env = {**env, "TMPDIR": str(folder / "tmp"), "HOME": str(folder / "home")}
        env["AWS_CONFIG_FILE"] = str(folder / "home" / ".aws" / "config")
        _, self.offset = read_log(self.log, self.offset)  # whatever came before is not this command's
        result = run(list(cmd), env, cwd=folder)
        requests, self.offset = read_log(self.log, self.offset)
        shutil.rmtree(folder, ignore_errors=True)
        return Measured(result.seconds, requests)

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def compare_s3(
    env: dict[str, str], story: Any, assets: Path, work: Path, run: Callable[..., Any], bundler: str
) -> dict[str, Any]:
    """The three jobs and their floors; ``run(cmd, env, cwd=)`` times one command (``bench/run.py``)."""
    cli = str(Path(sys.executable).parent / "aws") if (Path(sys.executable).parent / "aws").exists() else "aws"
    store = Store(work)
    aws = [cli, "--endpoint-url", store.endpoint]
    try:
        bundler_env = {**store.aws_env(env), "BUNDLER_ASSETS_ROOT": str(assets)}
        from_bucket = {**bundler_env, "BUNDLER_ASSETS_ROOT": store.url("assets")}
        media = story.media_dir.relative_to(assets).as_posix()
        store.server.upload_tree(story.media_dir, store.bucket, f"assets/{media}")
        aws_env = store.aws_env(env)
        sid = story.story_id
        results: dict[str, Any] = {"story": story, "delay_ms": DELAY_MS}

        cold, cp = [], []
        for n in range(REPS):
            cold.append(store.measure(run, [bundler, "assemble", sid, "--out", "out"], from_bucket))
            cp.append(store.measure(run, [*aws, "s3", "cp", "--recursive", "--only-show-errors",
                                          store.url(f"assets/{media}"), f"copy-{n}"], aws_env))  # fmt: skip
        results["cold"] = (cold, cp)

        # 3: bucket to bucket, nothing changed; the first publish and the CLI's first sync are set-up
        releases = store.url("releases")
        mirror = store.url(f"mirror/{media}")
        publish = [bundler, "assemble", sid, "--out", releases, "--overwrite"]
        results["first_publish"] = store.measure(run, publish, from_bucket)
        store.measure(run, [*aws, "s3", "sync", "--only-show-errors", store.url(f"assets/{media}"), mirror], aws_env)
        unchanged, synced = [], []
        for _ in range(REPS):
            unchanged.append(store.measure(run, publish, from_bucket))
            synced.append(store.measure(run, [*aws, "s3", "sync", "--only-show-errors",
                                              store.url(f"assets/{media}"), mirror], aws_env))  # fmt: skip
        results["unchanged"] = (unchanged, synced)

        # 2: one key frame changed; media on disk, the bundle published to a bucket. The CLI's floor
        # syncs a local bundle folder in which exactly the changed files were rewritten.
        pub = [bundler, "assemble", sid, "--out", store.url("published"), "--overwrite"]
        store.measure(run, pub, bundler_env)
        floor_dir, fresh_dir = work / "floor-bundle", work / "fresh-bundle"
        run([bundler, "assemble", sid, "--out", str(floor_dir)], bundler_env)
        bundle_url = store.url(f"floor/{sid}")
        store.measure(run, [*aws, "s3", "sync", "--only-show-errors", str(floor_dir / sid), bundle_url], aws_env)
        frames = sorted(story.media_dir.rglob("*.png"))
        republished, sync = [], []
        for n in range(REPS):
            _change(frames[n * 7 % len(frames)])
            republished.append(store.measure(run, pub, bundler_env))
            run([bundler, "assemble", sid, "--out", str(fresh_dir), "--overwrite"], bundler_env)
            _take_changes(fresh_dir / sid, floor_dir / sid)
            sync.append(store.measure(run, [*aws, "s3", "sync", "--only-show-errors", str(floor_dir / sid),
                                            bundle_url], aws_env))  # fmt: skip
        results["republish"] = (republished, sync)
        return results
    finally:
        store.close()
        for folder in (*work.glob("runner-*"), work / "floor-bundle", work / "fresh-bundle"):
            shutil.rmtree(folder, ignore_errors=True)


def _change(frame: Path) -> None:
    """A re-rendered key frame: same size and structure, one byte of the image data different."""
    data = bytearray(frame.read_bytes())
    data[len(data) // 2] ^= 0xFF
    frame.write_bytes(bytes(data))


def _take_changes(fresh: Path, kept: Path) -> None:
    """Rewrite in ``kept`` only the files whose bytes differ (what an incremental local build leaves)."""
    for path in fresh.rglob("*"):
        if path.is_file():
            target = kept / path.relative_to(fresh)
            if not target.exists() or target.read_bytes() != path.read_bytes():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)


def table(results: dict[str, Any]) -> list[str]:
    """The S3 section of bench/results.md: medians of the times, requests and bytes of the first run."""
    story = results["story"]
    jobs = [
        ("cold assemble from a bucket", "aws s3 cp --recursive", results["cold"]),
        (
            "one key frame changed: republish (--out s3:// --overwrite)",
            "aws s3 sync (bundle folder)",
            results["republish"],
        ),
        ("unchanged, bucket to bucket (--overwrite)", "aws s3 sync (media, up to date)", results["unchanged"]),
    ]
    lines = [
        "## Object storage (S3) next to the AWS CLI",
        "",
        f"`bench/s3compare.py`: moto on loopback behind a proxy adding {results['delay_ms']:.0f} ms per request; "
        f"story of {story.media_files:,} media objects, {story.media_bytes / 1e6:.1f} MB; medians of {REPS} runs, "
        "each command in a fresh working directory, TMPDIR and HOME. Requests and bytes are those of the first "
        "run (up = request bodies, down = response bodies).",
        "",
        "| job | bundler | requests, bundler | AWS CLI (floor) | requests, CLI | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for what, floor_name, (ours, floor) in jobs:
        mine, theirs = statistics.median(m.seconds for m in ours), statistics.median(m.seconds for m in floor)
        lines.append(
            f"| {what} | {mine:.2f} s | {ours[0].describe()} | {floor_name}: {theirs:.2f} s | "
            f"{floor[0].describe()} | {mine / theirs:.2f}x |"
        )
    first = results["first_publish"]
    lines += ["", f"First publish bucket to bucket (set-up of the unchanged run): {first.seconds:.2f} s, "
              f"{first.describe()}."]  # fmt: skip
    return lines


def main() -> int:
    import psycopg
    import run as bench
    from synth import generate

    temp_root = Path(tempfile.mkdtemp(prefix="bundler-s3bench-"))
    work = Path(tempfile.mkdtemp(prefix="bundler-s3bench-work-"))
    server = None
    try:
        server = bench.start_database(temp_root)
        assets = work / "assets"
        with psycopg.connect(server.uri, autocommit=True) as conn:
            story = generate(conn, STORY_400, assets, seed=4)
        results = compare_s3(bench.bundler_env(server, assets), story, assets, work, bench.run, bench.BUNDLER)
        print("\n".join(table(results)))
        return 0
    finally:
        bench.stop_database(server, temp_root)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
