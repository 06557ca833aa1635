"""Running many stories and reporting them: one worker pool, a progress bar per story on a
terminal, one summary, one JSON document, the worst exit code (``assemble`` and ``check``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from bundler.cli.common import Output, emit_json, escape, fail, stderr_console

if TYPE_CHECKING:
    from bundler.report import StoryReport
    from bundler.support.cancel import Cancellation
    from bundler.support.progress import ProgressSink


def run_batch(
    ids: list[str],
    jobs: int | None,
    output: Output,
    run: Callable[[str, int, ProgressSink | None], StoryReport],
    *,
    show_progress: bool,
) -> list[StoryReport]:
    """Each story independently (one failing does not stop the others), up to ``jobs`` at once."""
    from bundler.errors import BundlerError
    from bundler.report import StoryReport
    from bundler.support.workers import default_jobs, run_parallel

    workers = jobs or default_jobs()
    parallel = max(1, min(workers, len(ids)))
    per_story = max(1, workers // parallel)
    console = stderr_console()
    bars = _Bars(console) if show_progress and output.shows_progress(console) else None

    def one(story_id: str) -> StoryReport:
        try:
            return run(story_id, per_story, bars.story(story_id) if bars else None)
        except BundlerError as exc:
            return StoryReport.failure(story_id, str(exc), exc.exit_code)
        except Exception as exc:
            if output.debug:
                console.print_exception()
            return StoryReport.failure(story_id, f"internal error: {type(exc).__name__}: {exc}", 70)

    if bars is None:
        return run_parallel(ids, one, parallel)
    with bars.progress:
        return run_parallel(ids, one, parallel)


class _Bars:
    """One progress bar per story, in bytes copied (TTY only)."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(), console=console
        )

    def story(self, story_id: str) -> ProgressSink:
        return _Bar(self.progress, story_id[:8])


class _Bar:
    def __init__(self, progress: Any, label: str) -> None:
        self.progress, self.label, self.task = progress, label, None

    def start(self, total_bytes: int | None) -> None:
        self.task = self.progress.add_task(self.label, total=total_bytes)

    def advance(self, count: int) -> None:
        self.progress.advance(self.task, count)


def finish(
    reports: list[StoryReport], output: Output, verb: str, title: str, *, batch: bool, cancel: Cancellation
) -> None:
    from bundler.cli.render import failure_reason, phases_line, print_problems, summary_line, summary_table

    console = stderr_console()
    # a signal that came after every story had finished stopped nothing: report what was done
    if cancel.signum is not None and any(r.exit_code >= 128 for r in reports):
        _finish_interrupted(reports, output, cancel.signum, batch=batch)

    for report in reports:
        print_problems(console, output, report, prefix=f"{report.story_id[:8]} " if batch else "")
        if report.error:
            console.print(f"[bold red]error[/]: {escape(report.error)}")
        elif report.ok:
            if not (batch and output.quiet):  # --quiet batch: the one summary line below
                console.print(escape(summary_line(report, verb)))
        else:
            console.print(f"[bold red]failed[/]: story {report.story_id}: {failure_reason(report)}; nothing written")
        if output.verbose and report.stats.get("phases"):
            console.print(escape(phases_line(report)))
    if batch and output.quiet:
        failed = sum(1 for r in reports if not r.ok)
        console.print(f"{title} {len(reports)} stories: {len(reports) - failed} ok, {failed} failed")
    elif batch:
        console.print(summary_table(reports, f"{title} {len(reports)} stories"))
    if output.json:
        if batch:
            emit_json({"ok": all(r.ok for r in reports), "stories": [r.to_json() for r in reports]})
        else:
            emit_json(reports[0].to_json())
    worst = max((r.exit_code for r in reports), default=0)
    if worst:
        fail(worst)


def _finish_interrupted(reports: list[StoryReport], output: Output, signum: int, *, batch: bool) -> NoReturn:
    """One line, the one JSON document, exit 128 + the signal number (130 Ctrl-C, 143 SIGTERM)."""
    finished = [r for r in reports if r.ok and r.bundle_path is not None]
    line = "interrupted; nothing was changed"
    if finished:
        line = f"interrupted; {len(finished)} finished bundle(s) kept, nothing else was changed"
    stderr_console().print(f"[bold red]{line}[/]")
    if output.json:
        if batch:
            emit_json({"ok": False, "stories": [r.to_json() for r in reports]})
        else:
            emit_json(reports[0].to_json())
    fail(128 + signum)
