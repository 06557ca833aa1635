"""The library: ``check``, ``assemble`` and ``verify`` one story or bundle (docs/design.md §6).

``load`` → ``plan`` → ``build`` → ``publish``. Nothing here prints or exits:
story-level outcomes come back as a ``StoryReport``; environment and usage
problems raise ``bundler.errors`` exceptions.

Settings come as one options object (``CheckOptions``, ``AssembleOptions``); for
convenience their fields may also be given as keywords, which override it::

    assemble(story_id, AssembleOptions(out_dir="dist", strict=True))
    assemble(story_id, out_dir="dist", strict=True)
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bundler.db.connect import DatabaseTarget, connection, resolve_target
from bundler.db.jsonb import JsonTooDeepError
from bundler.db.sessions import Connections
from bundler.errors import EnvError, MediaChangedError, StoryNotFoundError, UsageError
from bundler.media.encode import WebSettings
from bundler.pipeline.exported_at import resolve_exported_at
from bundler.pipeline.plan.planner import analyze, plan
from bundler.pipeline.plan.types import BundlePlan
from bundler.problems import Problem, error
from bundler.report import StoryReport
from bundler.support.cancel import Cancellation, stop_if_cancelled
from bundler.support.phases import Phases
from bundler.support.progress import ProgressSink
from bundler.support.workers import default_jobs

if TYPE_CHECKING:
    from bundler.bundle.reader import Reading
    from bundler.bundle.verify import VerifyReport
    from bundler.pipeline.build import Built
    from bundler.storage import BundleDestination, MediaSource, Published
    from bundler.storage.ports import ArchiveFormat, KnownFiles

__all__ = ["AssembleOptions", "CheckOptions", "StoryReport", "assemble", "check", "parse_story_id", "verify"]


@dataclass(frozen=True)
class CheckOptions:
    # a URL, else DATABASE_URL, PG* or the embedded server; a batch passes its per-worker Connections
    database: DatabaseTarget | str | Connections | None = None
    assets_root: str | Path | MediaSource | None = None  # a folder or s3:// URL (default: BUNDLER_ASSETS_ROOT)
    strict: bool = False  # every warning counts as an error
    jobs: int | None = None  # parallel workers (default: the CPUs this process may use)


@dataclass(frozen=True)
class AssembleOptions(CheckOptions):
    out_dir: str | Path = "bundles"  # a folder or s3:// URL; the bundle goes to <out_dir>/<story-id>/
    overwrite: bool = False
    exported_at: str | None = None  # ISO 8601 (default: SOURCE_DATE_EPOCH, else the newest row)
    archive: ArchiveFormat | None = None  # also a deterministic "zip" or "tar.gz"
    web: WebSettings | None = None  # the --web profile (WebP key frames, M4A narration); None: master


Options = TypeVar("Options", CheckOptions, AssembleOptions)


def _options(options: Options | None, default: type[Options], settings: dict[str, Any]) -> Options:
    return replace(options or default(), **settings)


class StoryId(str):
    """A story id already checked and normalized: ``parse_story_id`` runs once, at the edge."""


def parse_story_id(value: str) -> StoryId:
    if isinstance(value, StoryId):
        return value
    try:
        return StoryId(uuid.UUID(value.strip()))
    except (ValueError, AttributeError):
        raise UsageError(f"Story id {value!r} is not a UUID.") from None


def check(
    story_id: str, options: CheckOptions | None = None, *, cancel: Cancellation | None = None, **settings: Any
) -> StoryReport:
    """Everything ``assemble`` checks; writes nothing."""
    started = time.perf_counter()
    story_id, settings_ = parse_story_id(story_id), _options(options, CheckOptions, settings)
    phases = Phases()
    stop_if_cancelled(cancel)
    try:
        bundle_plan = plan_story(story_id, settings_, _source(settings_.assets_root), phases=phases, lines=False)
    except (StoryNotFoundError, JsonTooDeepError) as exc:
        return _unreadable(story_id, exc, started)
    stop_if_cancelled(cancel)
    files = bundle_plan.files()
    stats = {
        **_plan_stats(bundle_plan, settings_.strict),
        "files": len(files),
        "bytes": sum(f.source.size for f in files),
        "seconds": round(time.perf_counter() - started, 3),
        "phases": phases.seconds,
    }
    ok = not _failed(bundle_plan, settings_.strict)
    return StoryReport(story_id, ok, _reported(bundle_plan, settings_.strict), stats, title=bundle_plan.title)


def assemble(
    story_id: str,
    options: AssembleOptions | None = None,
    *,
    progress: ProgressSink | None = None,
    cancel: Cancellation | None = None,
    **settings: Any,
) -> StoryReport:
    """Write ``<out_dir>/<story-id>/`` (and its archive); an existing bundle survives any failure."""
    from bundler.bundle.archive import FORMATS, archive_timestamp, check_archive_time
    from bundler.storage import open_destination

    started = time.perf_counter()
    story_id, settings_ = parse_story_id(story_id), _options(options, AssembleOptions, settings)
    if settings_.archive is not None and settings_.archive not in FORMATS:
        raise UsageError(f"--archive must be 'zip' or 'tar.gz', not {settings_.archive!r}.")
    if settings_.web is not None:
        from bundler.media.encode import require_web_extra

        require_web_extra()  # before any work: exit 3 naming the extra
    stop_if_cancelled(cancel)
    settings_ = replace(settings_, jobs=settings_.jobs or default_jobs())
    destination = open_destination(settings_.out_dir, settings_.jobs or 1)
    destination.claim(story_id, settings_.overwrite)
    known = destination.known(story_id)  # what the last publish recorded about its media
    with _source(settings_.assets_root).for_assemble() as source:
        destination.refuse_sources(story_id, source)  # never a target that holds or is inside the sources
        phases = Phases()
        try:
            bundle_plan = plan_story(story_id, settings_, source, phases=phases, known=known)
        except (StoryNotFoundError, JsonTooDeepError) as exc:
            return _unreadable(story_id, exc, started)
        stats: dict[str, Any] = _plan_stats(bundle_plan, settings_.strict)
        problems = _reported(bundle_plan, settings_.strict)
        if _failed(bundle_plan, settings_.strict):
            stats.update(seconds=round(time.perf_counter() - started, 3), phases=phases.seconds)
            return StoryReport(story_id, False, problems, stats, title=bundle_plan.title)
        if settings_.archive is not None:  # before anything is written: a time the format cannot store is usage
            check_archive_time(settings_.archive, archive_timestamp(bundle_plan.exported_at))
        stop_if_cancelled(cancel)
        try:
            built, published = _build_and_publish(bundle_plan, settings_, source, destination, phases, progress, cancel)
        except MediaChangedError as exc:
            from bundler.pipeline.build import media_changed_problem

            problems = (*problems, media_changed_problem(bundle_plan, exc))
            stats.update(errors=stats["errors"] + 1, seconds=round(time.perf_counter() - started, 3))
            return StoryReport(story_id, False, problems, stats, title=bundle_plan.title)
    stats.update(
        files=len(built.files) + 2,  # + manifest.json and SHA256SUMS
        bytes=sum(entry.bytes for entry in built.files) + published.text_bytes,
        seconds=round(time.perf_counter() - started, 3),
        phases=phases.seconds,
    )
    if built.web is not None:
        from bundler.pipeline.web_stats import web_stats

        stats["web"] = web_stats(bundle_plan, built)
    return StoryReport(story_id, True, problems, stats, published.bundle, published.archive, bundle_plan.title)


def verify(bundle: str | Path, reading: Reading | None = None) -> VerifyReport:
    """Check a bundle folder, ``.zip``/``.tar.gz`` or ``s3://`` URL; raises ``BundleUnreadableError``
    when it cannot be read at all. ``reading``: hashing threads, progress, ``quick``."""
    from bundler.bundle.verify import verify_bundle
    from bundler.storage import open_reader

    return verify_bundle(open_reader(bundle), reading)


def plan_story(
    story_id: StoryId,
    options: CheckOptions,
    source: MediaSource,
    *,
    phases: Phases,
    lines: bool = True,
    known: KnownFiles | None = None,
) -> BundlePlan:
    """Load, check media and plan one story (nothing written); ``lines=False`` plans without the
    shots' narration scripts (captions), which only the player shows; ``known``: source records a
    source may trust (``BundleDestination.known``)."""
    from bundler.pipeline.load import load_snapshot

    exported_at = options.exported_at if isinstance(options, AssembleOptions) else None
    profile = options.web if isinstance(options, AssembleOptions) else None
    database = options.database
    with phases("load"):
        if isinstance(database, Connections):  # a batch: this worker's open connection
            snapshot = database.run(lambda conn: load_snapshot(conn, story_id, lines=lines))
        else:
            target = database if isinstance(database, DatabaseTarget) else resolve_target(database)
            with connection(target) as conn:
                snapshot = load_snapshot(conn, story_id, lines=lines)
    with phases("plan"):
        analysis = analyze(snapshot)
    with phases("probe"):
        media = source.probe(analysis.requests, options.jobs or default_jobs(), known)
    with phases("plan"):
        return plan(analysis, media, resolve_exported_at(exported_at, snapshot), profile)


def _build_and_publish(
    bundle_plan: BundlePlan,
    options: AssembleOptions,
    source: MediaSource,
    destination: BundleDestination,
    phases: Phases,
    progress: ProgressSink | None,
    cancel: Cancellation | None,
) -> tuple[Built, Published]:
    """``build`` into the destination's staging folder, then ``publish`` it (with its archive)."""
    from bundler.pipeline.build import build_bundle
    from bundler.storage import Staged

    if progress:
        progress.start(sum(c.source.size for c in bundle_plan.files()))

    def advance(count: int) -> None:
        stop_if_cancelled(cancel)  # between chunks: an interrupted copy stops within a megabyte
        if progress:
            progress.advance(count)

    story_id = bundle_plan.story_id
    with destination.staging(story_id) as staging:
        try:
            with phases("build"):
                previous = destination.previous(story_id)
                built = build_bundle(
                    bundle_plan,
                    staging,
                    options.jobs or 1,
                    advance,
                    source=source,
                    previous=previous,
                    record_sources=destination.keeps_source_records,
                )
        except OSError as exc:  # disk full, read-only, quota: name the path that failed
            where = exc.filename or staging
            message = f"Cannot build the bundle of {story_id} in {destination}: {exc.strerror or exc} ({where})."
            raise EnvError(message) from None
        stop_if_cancelled(cancel)
        # the archive is built from staging and published with the bundle, both or neither;
        # an interrupt is honoured until the swap starts, never halfway through it
        with phases("publish"):
            staged = Staged(
                story_id, staging, bundle_plan.exported_at, built.unchanged_since, built.held, built.sources
            )
            published = destination.publish(
                staged, options.overwrite, options.archive, lambda: stop_if_cancelled(cancel)
            )
    return built, published


def _source(assets_root: str | Path | MediaSource | None) -> MediaSource:
    from bundler.storage import MediaSource, open_source

    return assets_root if isinstance(assets_root, MediaSource) else open_source(assets_root)


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


def _unreadable(story_id: StoryId, exc: StoryNotFoundError | JsonTooDeepError, started: float) -> StoryReport:
    """Docs/design.md §2 lists "story not found" among the story errors, and so is a story whose rows
    cannot be read: problems, exit 1."""
    problems = exc.problems if isinstance(exc, JsonTooDeepError) else (error("story-not-found", str(exc)),)
    stats = {"errors": len(problems), "warnings": 0, "seconds": round(time.perf_counter() - started, 3)}
    return StoryReport(story_id, False, problems, stats)
