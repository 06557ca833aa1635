"""The library entry points: ``assemble`` and ``check`` (DESIGN §6).

``load`` → ``plan`` → ``build`` → ``publish``. Nothing here prints or exits:
story-level outcomes come back as a ``StoryReport``; environment and usage
problems raise ``bundler.errors`` exceptions.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bundler.db.connect import DatabaseTarget, connection, resolve_target
from bundler.errors import UsageError
from bundler.models import StorySnapshot
from bundler.plan.planner import analyze, default_exported_at, format_timestamp, plan
from bundler.plan.types import BundlePlan
from bundler.problems import Problem

if TYPE_CHECKING:
    from bundler.storage import MediaSource


class ProgressSink(Protocol):
    def start(self, story_id: str, total_bytes: int) -> None: ...
    def advance(self, story_id: str, count: int) -> None: ...


@dataclass(frozen=True)
class StoryReport:
    story_id: str
    ok: bool
    problems: tuple[Problem, ...]
    stats: Mapping[str, Any] = field(default_factory=dict)
    bundle_path: Path | str | None = None  # a folder, or the s3:// URL of a published version
    archive_path: Path | str | None = None
    title: str | None = None
    error: str | None = None  # why the story could not be processed at all
    error_exit_code: int | None = None

    @property
    def exit_code(self) -> int:
        if self.error_exit_code is not None:
            return self.error_exit_code
        return 0 if self.ok else 1

    @classmethod
    def failure(cls, story_id: str, message: str, exit_code: int) -> StoryReport:
        return cls(story_id, False, (), {}, error=message, error_exit_code=exit_code)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "ok": self.ok,
            "storyId": self.story_id,
            "bundlePath": str(self.bundle_path) if self.bundle_path else None,
            "problems": [p.to_json() for p in self.problems],
            "stats": dict(self.stats),
        }
        if self.archive_path:
            document["archivePath"] = str(self.archive_path)
        if self.error:
            document["error"] = {"exitCode": self.exit_code, "message": self.error}
        return document


def parse_story_id(value: str) -> str:
    try:
        return str(uuid.UUID(value.strip()))
    except (ValueError, AttributeError):
        raise UsageError(f"Story id {value!r} is not a UUID.") from None


def resolve_exported_at(value: str | None, snapshot: StorySnapshot) -> str:
    """``--exported-at``, else ``SOURCE_DATE_EPOCH``, else the newest row timestamp."""
    if value:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise UsageError(f"--exported-at {value!r} is not an ISO 8601 timestamp.") from None
        return format_timestamp(moment)
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        try:
            return format_timestamp(datetime.fromtimestamp(int(epoch), UTC))
        except ValueError:
            raise UsageError(f"SOURCE_DATE_EPOCH={epoch!r} is not a whole number of seconds.") from None
    return default_exported_at(snapshot)


def _target(database: DatabaseTarget | str | None) -> DatabaseTarget:
    return database if isinstance(database, DatabaseTarget) else resolve_target(database)


def diagnose(
    story_id: str,
    *,
    database: DatabaseTarget | str | None = None,
    assets_root: str | Path | MediaSource | None = None,
    exported_at: str | None = None,
    jobs: int | None = None,
) -> BundlePlan:
    """Load, check media and plan one story (no output written)."""
    from bundler.load import load_snapshot

    story_id = parse_story_id(story_id)
    source = _source(assets_root)
    with connection(_target(database)) as conn:
        snapshot = load_snapshot(conn, story_id)
    analysis = analyze(snapshot)
    media = source.probe(analysis.requests, jobs or default_jobs())
    return plan(analysis, media, resolve_exported_at(exported_at, snapshot))


def _source(assets_root: str | Path | MediaSource | None) -> MediaSource:
    from bundler.storage import MediaSource, open_source

    return assets_root if isinstance(assets_root, MediaSource) else open_source(assets_root)


def default_jobs() -> int:
    """The CPUs this process may run on (affinity, cgroup-limited containers), not the host's count."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _plan_stats(bundle_plan: BundlePlan) -> dict[str, Any]:
    return {
        "scenelets": len(bundle_plan.scenelets),
        "shots": bundle_plan.shot_count(),
        "musicCues": len(bundle_plan.cues),
        "errors": len(bundle_plan.errors),
        "warnings": len(bundle_plan.warnings),
    }


def _failed(bundle_plan: BundlePlan, strict: bool) -> bool:
    return bool(bundle_plan.errors) or (strict and bool(bundle_plan.warnings))


def check(
    story_id: str,
    *,
    database: DatabaseTarget | str | None = None,
    assets_root: str | Path | MediaSource | None = None,
    strict: bool = False,
    jobs: int | None = None,
) -> StoryReport:
    """Everything ``assemble`` checks; writes nothing."""
    started = time.perf_counter()
    bundle_plan = diagnose(story_id, database=database, assets_root=assets_root, jobs=jobs)
    files = bundle_plan.files()
    stats = {
        **_plan_stats(bundle_plan),
        "files": len(files),
        "bytes": sum(f.source.size for f in files),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return StoryReport(
        bundle_plan.story_id, not _failed(bundle_plan, strict), bundle_plan.problems, stats, title=bundle_plan.title
    )


def assemble(
    story_id: str,
    *,
    database: DatabaseTarget | str | None = None,
    assets_root: str | Path | MediaSource | None = None,
    out_dir: str | Path = "bundles",
    overwrite: bool = False,
    strict: bool = False,
    exported_at: str | None = None,
    jobs: int | None = None,
    archive: str | None = None,
    progress: ProgressSink | None = None,
) -> StoryReport:
    """Write ``<out_dir>/<story-id>/``; an existing bundle survives any failure."""
    from bundler.build import build_bundle
    from bundler.storage import open_destination

    started = time.perf_counter()
    story_id = parse_story_id(story_id)
    from bundler.archive import FORMATS

    if archive is not None and archive not in FORMATS:
        raise UsageError(f"--archive must be 'zip' or 'tar.gz', not {archive!r}.")
    jobs = jobs or default_jobs()
    destination = open_destination(out_dir, jobs)
    destination.claim(story_id, overwrite)
    source = _source(assets_root)
    bundle_plan = diagnose(story_id, database=database, assets_root=source, exported_at=exported_at, jobs=jobs)
    stats: dict[str, Any] = _plan_stats(bundle_plan)
    if _failed(bundle_plan, strict):
        stats["seconds"] = round(time.perf_counter() - started, 3)
        return StoryReport(story_id, False, bundle_plan.problems, stats, title=bundle_plan.title)

    copies = bundle_plan.files()
    if progress:
        progress.start(story_id, sum(c.source.size for c in copies))
    advance = (lambda count: progress.advance(story_id, count)) if progress else None
    with destination.staging(story_id) as staging:
        previous = destination.previous(story_id)
        files = build_bundle(bundle_plan, staging, jobs, advance, source=source, previous=previous)
        published = destination.publish(staging, story_id, overwrite, archive, bundle_plan.exported_at)
    stats.update(
        files=len(files) + 2,  # + manifest.json and SHA256SUMS
        bytes=sum(entry.bytes for entry in files) + published.text_bytes,
        seconds=round(time.perf_counter() - started, 3),
    )
    return StoryReport(
        story_id, True, bundle_plan.problems, stats, published.bundle, published.archive, bundle_plan.title
    )
