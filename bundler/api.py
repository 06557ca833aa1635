"""The library entry points: ``assemble`` and ``check`` (DESIGN §6).

``load`` → ``plan`` → ``build`` → ``publish``. Nothing here prints or exits:
story-level outcomes come back as a ``StoryReport``; environment and usage
problems raise ``bundler.errors`` exceptions.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bundler.db.connect import DatabaseTarget, connection, resolve_target
from bundler.db.jsonb import JsonTooDeepError
from bundler.errors import EnvError, MediaChangedError, StoryNotFoundError, UsageError
from bundler.pipeline.plan.planner import analyze, default_exported_at, format_timestamp, plan
from bundler.pipeline.plan.types import BundlePlan
from bundler.problems import Problem, error
from bundler.records import StorySnapshot
from bundler.support.cancel import Cancellation
from bundler.support.cancel import check as check_cancel

if TYPE_CHECKING:
    from bundler.bundle.reader import Reading
    from bundler.bundle.verify import VerifyReport
    from bundler.storage import MediaSource
    from bundler.storage.ports import KnownFiles


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
        return format_timestamp(_source_date_epoch(epoch))
    return default_exported_at(snapshot)


def _source_date_epoch(text: str) -> datetime:
    if not text.isascii() or not text.lstrip("-").isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH={text!r} is invalid: it must be a whole number of seconds.")
    try:
        return datetime.fromtimestamp(int(text), UTC)
    except (ValueError, OverflowError, OSError):
        raise UsageError(f"SOURCE_DATE_EPOCH={text!r} is invalid: out of the range of dates.") from None


class Phases:
    """Wall-clock seconds per pipeline phase (load, probe, plan, build, publish): ``stats["phases"]``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            spent = self.seconds.get(name, 0.0) + time.perf_counter() - started
            self.seconds[name] = round(spent, 3)


def _target(database: DatabaseTarget | str | None) -> DatabaseTarget:
    return database if isinstance(database, DatabaseTarget) else resolve_target(database)


def diagnose(
    story_id: str,
    *,
    database: DatabaseTarget | str | None = None,
    assets_root: str | Path | MediaSource | None = None,
    exported_at: str | None = None,
    jobs: int | None = None,
    phases: Phases | None = None,
    lines: bool = True,
    known: KnownFiles | None = None,
) -> BundlePlan:
    """Load, check media and plan one story (no output written); ``lines=False`` plans without the
    shots' narration scripts (captions), which only the player shows; ``known``: source records a
    source may trust (``BundleDestination.known``)."""
    from bundler.pipeline.load import load_snapshot

    phase = phases or Phases()
    story_id = parse_story_id(story_id)
    source = _source(assets_root)
    with phase("load"), connection(_target(database)) as conn:
        snapshot = load_snapshot(conn, story_id, lines=lines)
    with phase("plan"):
        analysis = analyze(snapshot)
    with phase("probe"):
        media = source.probe(analysis.requests, jobs or default_jobs(), known)
    with phase("plan"):
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


def _plan_stats(bundle_plan: BundlePlan, strict: bool) -> dict[str, Any]:
    stats = {
        "scenelets": len(bundle_plan.scenelets),
        "shots": bundle_plan.shot_count(),
        "musicCues": len(bundle_plan.cues),
        "errors": len(bundle_plan.errors),
        "warnings": len(bundle_plan.warnings),
    }
    if strict:  # --strict: every warning is reported and counted as an error
        stats.update(errors=len(bundle_plan.problems), warnings=0, warningsAsErrors=len(bundle_plan.warnings))
    return stats


def _reported(bundle_plan: BundlePlan, strict: bool) -> tuple[Problem, ...]:
    if not strict:
        return bundle_plan.problems
    return tuple(replace(p, severity="error") for p in bundle_plan.problems)


def _failed(bundle_plan: BundlePlan, strict: bool) -> bool:
    return bool(bundle_plan.errors) or (strict and bool(bundle_plan.warnings))


def _unreadable(story_id: str, exc: StoryNotFoundError | JsonTooDeepError, started: float) -> StoryReport:
    """DESIGN §2 lists "story not found" among the story errors, and so is a story whose rows cannot
    be read: problems, exit 1."""
    problems = exc.problems if isinstance(exc, JsonTooDeepError) else (error("story-not-found", str(exc)),)
    stats = {"errors": len(problems), "warnings": 0, "seconds": round(time.perf_counter() - started, 3)}
    return StoryReport(parse_story_id(story_id), False, problems, stats)


def check(
    story_id: str,
    *,
    database: DatabaseTarget | str | None = None,
    assets_root: str | Path | MediaSource | None = None,
    strict: bool = False,
    jobs: int | None = None,
    cancel: Cancellation | None = None,
) -> StoryReport:
    """Everything ``assemble`` checks; writes nothing."""
    started = time.perf_counter()
    phases = Phases()
    check_cancel(cancel)
    try:
        bundle_plan = diagnose(
            story_id, database=database, assets_root=assets_root, jobs=jobs, phases=phases, lines=False
        )
    except (StoryNotFoundError, JsonTooDeepError) as exc:
        return _unreadable(story_id, exc, started)
    check_cancel(cancel)
    files = bundle_plan.files()
    stats = {
        **_plan_stats(bundle_plan, strict),
        "files": len(files),
        "bytes": sum(f.source.size for f in files),
        "seconds": round(time.perf_counter() - started, 3),
        "phases": phases.seconds,
    }
    return StoryReport(
        bundle_plan.story_id,
        not _failed(bundle_plan, strict),
        _reported(bundle_plan, strict),
        stats,
        title=bundle_plan.title,
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
    cancel: Cancellation | None = None,
) -> StoryReport:
    """Write ``<out_dir>/<story-id>/`` (and its archive); an existing bundle survives any failure."""
    from bundler.bundle.archive import FORMATS, archive_timestamp, check_archive_time
    from bundler.pipeline.build import build_bundle, media_changed_problem
    from bundler.storage import Staged, open_destination

    started = time.perf_counter()
    story_id = parse_story_id(story_id)
    if archive is not None and archive not in FORMATS:
        raise UsageError(f"--archive must be 'zip' or 'tar.gz', not {archive!r}.")
    check_cancel(cancel)
    jobs = jobs or default_jobs()
    destination = open_destination(out_dir, jobs)
    destination.claim(story_id, overwrite)
    known = destination.known(story_id)  # what the last publish recorded about its media
    with _source(assets_root).for_assemble() as source:
        phases = Phases()
        try:
            bundle_plan = diagnose(
                story_id,
                database=database,
                assets_root=source,
                exported_at=exported_at,
                jobs=jobs,
                phases=phases,
                known=known,
            )
        except (StoryNotFoundError, JsonTooDeepError) as exc:
            return _unreadable(story_id, exc, started)
        stats: dict[str, Any] = _plan_stats(bundle_plan, strict)
        problems = _reported(bundle_plan, strict)
        if _failed(bundle_plan, strict):
            stats.update(seconds=round(time.perf_counter() - started, 3), phases=phases.seconds)
            return StoryReport(story_id, False, problems, stats, title=bundle_plan.title)
        if archive is not None:  # before anything is written: a time the format cannot store is a usage error
            check_archive_time(archive, archive_timestamp(bundle_plan.exported_at))
        check_cancel(cancel)

        copies = bundle_plan.files()
        if progress:
            progress.start(story_id, sum(c.source.size for c in copies))

        def advance(count: int) -> None:
            check_cancel(cancel)  # between chunks: an interrupted copy stops within a megabyte
            if progress:
                progress.advance(story_id, count)

        try:
            with destination.staging(story_id) as staging:
                previous = destination.previous(story_id)
                try:
                    with phases("build"):
                        built = build_bundle(bundle_plan, staging, jobs, advance, source=source, previous=previous)
                except OSError as exc:  # disk full, read-only, quota: name the path that failed
                    where = exc.filename or staging
                    message = (
                        f"Cannot build the bundle of {story_id} in {destination}: {exc.strerror or exc} ({where})."
                    )
                    raise EnvError(message) from None
                check_cancel(cancel)
                # the archive is built from staging and published with the bundle, both or neither;
                # an interrupt is honoured until the swap starts, never halfway through it
                with phases("publish"):
                    staged = Staged(
                        story_id, staging, bundle_plan.exported_at, built.unchanged_since, built.held, built.sources
                    )
                    published = destination.publish(staged, overwrite, archive, lambda: check_cancel(cancel))
        except MediaChangedError as exc:
            problems = (*problems, media_changed_problem(bundle_plan, exc))
            stats.update(errors=stats["errors"] + 1, seconds=round(time.perf_counter() - started, 3))
            return StoryReport(story_id, False, problems, stats, title=bundle_plan.title)
        stats.update(
            files=len(built.files) + 2,  # + manifest.json and SHA256SUMS
            bytes=sum(entry.bytes for entry in built.files) + published.text_bytes,
            seconds=round(time.perf_counter() - started, 3),
            phases=phases.seconds,
        )
        return StoryReport(story_id, True, problems, stats, published.bundle, published.archive, bundle_plan.title)


def verify(bundle: str | Path, reading: Reading | None = None) -> VerifyReport:
    """Check a bundle folder, ``.zip``/``.tar.gz`` or ``s3://`` URL; raises ``BundleUnreadableError``
    when it cannot be read at all. ``reading``: hashing threads, progress, ``quick``."""
    from bundler.bundle.verify import verify_bundle
    from bundler.storage import open_reader

    return verify_bundle(open_reader(bundle), reading)
