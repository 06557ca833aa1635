"""``make bench``, object storage part: the 2,000-shot story from a real S3 server on loopback.

The server is moto (the one the tests use), in this process, with a request log;
bundler runs as the real CLI in a subprocess. Measured, side by side with the
local-disk assemble of the same story:

* ``assemble`` with ``--assets-root s3://…`` (and ``check``), and the requests
  it sent: ranged GETs (checks), whole GETs (copies), LISTs;
* publishing with ``--out s3://…``, then publishing the unchanged bundle again
  (``--overwrite``): the uploads of each.

moto is a Python server sharing this 2-core machine with bundler, so times here
are an upper bound on what a real store costs; the request counts are exact.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

S3_REPS = max(1, min(3, int(os.environ.get("BENCH_REPS", "5"))))


def _kinds(requests: list[Any]) -> Counter[str]:
    counted: Counter[str] = Counter()
    for request in requests:
        if request.method == "GET" and "list-type" in request.query:
            counted["LIST"] += 1
        elif request.method == "GET" and request.path.endswith("/.bundler-probe"):
            counted["probe GET"] += 1  # the start-up check of endpoint, bucket and credentials: a 404
        elif request.method == "GET":
            counted["ranged GET" if request.range else "GET"] += 1
        else:
            counted[request.method] += 1
    return counted


def bench_s3(
    env: dict[str, str],
    story: Any,
    assets: Path,
    work: Path,
    timed: Callable[..., Any],
    median: Callable[[list[float]], float],
    row: Callable[..., Any],
    report: Any,
) -> None:
    """``timed(env, *args)`` runs the bundler CLI; ``row(...)`` makes a result-table row."""
    from tests.s3_server import S3Server

    server = S3Server()
    server.start()
    try:
        bucket = server.new_bucket()
        store = server.store(bucket)
        import obstore

        files = [p for p in story.media_dir.rglob("*") if p.is_file()]
        with ThreadPoolExecutor(8) as pool:  # the story's media, under the same paths as on disk
            list(pool.map(lambda p: obstore.put(store, f"assets/{p.relative_to(assets).as_posix()}", p), files))
        publish_env = {**env, **server.env()}  # media from disk, bundles to the bucket
        s3_env = {**publish_env, "BUNDLER_ASSETS_ROOT": f"s3://{bucket}/assets"}

        local_runs, s3_runs, counts = [], [], []
        for n in range(S3_REPS):
            local_runs.append(timed(env, "assemble", story.story_id, "--out", str(work / f"s3-local-{n}")))
            mark = server.mark()
            s3_runs.append(timed(s3_env, "assemble", story.story_id, "--out", str(work / f"s3-from-{n}")))
            counts.append(_kinds(server.since(mark)))
        same = _tree(work / "s3-local-0" / story.story_id) == _tree(work / "s3-from-0" / story.story_id)
        mark = server.mark()
        check_run = timed(s3_env, "check", story.story_id)
        check_counts = _kinds(server.since(mark))

        out = f"s3://{bucket}/releases"
        mark = server.mark()
        publish = timed(publish_env, "assemble", story.story_id, "--out", out)
        publish_counts = _kinds(server.since(mark))
        mark = server.mark()
        again = timed(publish_env, "assemble", story.story_id, "--out", out, "--overwrite")
        again_counts = _kinds(server.since(mark))
    finally:
        server.stop()
        for folder in work.glob("s3-*"):
            shutil.rmtree(folder, ignore_errors=True)

    local_s = median([r.seconds for r in local_runs])
    s3_s = median([r.seconds for r in s3_runs])
    files_n = story.media_files
    c = counts[0]
    report.rows += [
        row(
            f"assemble from S3 (moto on loopback), {files_n:,} files",
            f"{s3_s:.3f} s",
            f"local-disk assemble {local_s:.3f} s",
            f"{s3_s / local_s:.2f}x",
            "(info)",
            None,
        ),
        row(
            "requests, assemble from S3",
            f"{c['ranged GET']:,} ranged GET + {c['GET']:,} GET + {c['LIST']} LIST + {c['probe GET']} probe",
            f"{files_n:,} files",
            "",
            "one read per object",
            c["ranged GET"] + c["GET"] <= files_n,
        ),
        row(
            "check from S3",
            f"{check_run.seconds:.3f} s",
            f"{check_counts['ranged GET']:,} ranged GET + {check_counts['GET']} GET"
            f" + {check_counts['probe GET']} probe",
            "",
            "no whole GET",
            check_counts["GET"] == 0,
        ),
        row(
            "publish to S3 (`--out s3://`)",
            f"{publish.seconds:.3f} s",
            f"{publish_counts['PUT']:,} PUT",
            "",
            "(info)",
            None,
        ),
        row(
            "re-publish unchanged (`--overwrite`)",
            f"{again.seconds:.3f} s",
            f"{again_counts['PUT'] + again_counts['POST']} uploads, {again_counts['GET']} GET, "
            f"{again_counts['LIST']} LIST",
            "",
            "0 uploads",
            again_counts["PUT"] + again_counts["POST"] == 0,
        ),
    ]
    report.details["s3"] = {
        "local": [round(r.seconds, 3) for r in local_runs],
        "s3": [round(r.seconds, 3) for r in s3_runs],
        "requests": [dict(k) for k in counts],
        "byte_identical": same,
        "check": dict(check_counts),
        "publish": dict(publish_counts),
        "republish": dict(again_counts),
    }
    report.analysis.append(
        f"- **S3** (moto, a Python S3 server in the benchmark process, on loopback): assemble from the bucket "
        f"{s3_s:.3f} s vs {local_s:.3f} s from disk (runs {report.details['s3']['s3']}); the bundle is byte for "
        f"byte the one from disk: {same}. Requests per assemble: {dict(c)} for {files_n:,} files; check "
        f"{dict(check_counts)}; publish {dict(publish_counts)}; unchanged re-publish {dict(again_counts)}. "
        "Ranged GETs beyond one per file are the tail reads of the structural PNG check: a key frame larger "
        "than the 64 KiB head window needs a second small ranged GET for the IEND chunk at its end (never a "
        "download). moto answers each request in Python on the same two cores, so the S3 times are dominated by "
        "the server; a real store answers the requests in parallel (`--jobs` x 8 in flight)."
    )


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
