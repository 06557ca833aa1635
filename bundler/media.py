"""Check the media the planner asked about, in parallel (file system only)."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bundler.assets import MediaProblem, check_source
from bundler.plan.types import MediaRequest, MediaStatus


def probe_one(root: Path, request: MediaRequest) -> MediaStatus:
    try:
        return MediaStatus(source=check_source(root, request.relative, request.kind))
    except MediaProblem as problem:
        return MediaStatus(code=problem.code, detail=str(problem))


def probe_media(requests: Iterable[MediaRequest], root: Path, jobs: int) -> dict[MediaRequest, MediaStatus]:
    ordered = sorted(requests, key=lambda r: (r.relative, r.kind))
    if jobs <= 1 or len(ordered) < 64:  # threads cost more than they save on small stories
        return {request: probe_one(root, request) for request in ordered}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return dict(zip(ordered, pool.map(lambda r: probe_one(root, r), ordered), strict=True))
