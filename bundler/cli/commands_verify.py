"""``bundler verify``: check bundle folders or archives (docs/design.md §4)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from bundler.cli import app
from bundler.cli.common import (
    EXIT_INPUT,
    DebugOption,
    JobsOption,
    JsonOption,
    Output,
    QuietOption,
    VerboseOption,
    emit_json,
    escape,
    fail,
    reported_errors,
    stderr_console,
)
from bundler.problems import Problem


@app.command("verify")
def verify(
    bundles: Annotated[
        list[str],
        typer.Argument(
            help="Bundle folders, .zip / .tar.gz archives of them, s3://BUCKET/PREFIX/<story-id> URLs "
            "(through their current.json) or s3:// URLs of published versions.",
            show_default=False,
        ),
    ],
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Sizes and completeness only: skip hashing the media (much faster)."),
    ] = False,
    jobs: JobsOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    debug: DebugOption = False,
) -> None:
    """Check bundles: files complete, checksums valid, story graph consistent.

    Exit 0 when all are valid, 1 when one is not (each problem named on stderr), 3 when one cannot be read.
    """
    output = Output.from_options(json_output, debug, quiet=quiet, verbose=verbose)
    if len(bundles) == 1:
        bundle = bundles[0]
        with reported_errors(output, {"bundlePath": _shown(bundle), "stats": None}):
            report = _verify_one(bundle, jobs, quick, output)
        _print_report(bundle, report, quick)
        if output.json:
            emit_json(report.to_json())
        if not report.ok:
            fail(EXIT_INPUT)
        return
    _verify_batch(bundles, jobs, quick, output)


def _shown(bundle: str) -> str:
    """How the report names a bundle: an s3:// URL as given, a local path absolute."""
    from bundler.storage.ports import is_s3_url

    return bundle if is_s3_url(bundle) else str(Path(bundle).absolute())


def _verify_batch(bundles: list[str], jobs: int | None, quick: bool, output: Output) -> None:
    """Every bundle in turn (one unreadable bundle does not stop the others); exit code of the worst."""
    from bundler.errors import BundleUnreadableError

    documents, worst = [], 0
    for bundle in bundles:
        try:
            report = _verify_one(bundle, jobs, quick, output)
        except BundleUnreadableError as exc:
            stderr_console().print(f"[bold red]error[/]: {escape(str(exc))}")
            error = {"exitCode": exc.exit_code, "message": str(exc)}
            documents.append({"ok": False, "bundlePath": _shown(bundle), "problems": [], "stats": None, "error": error})
            worst = max(worst, exc.exit_code)
            continue
        _print_report(bundle, report, quick, verdict=not output.quiet)  # --quiet: the one summary line below
        documents.append(report.to_json())
        worst = max(worst, 0 if report.ok else EXIT_INPUT)
    valid = sum(1 for document in documents if document["ok"])
    stderr_console().print(f"{valid} of {len(bundles)} bundles valid")
    if output.json:
        emit_json({"ok": worst == 0, "bundles": documents})
    if worst:
        fail(worst)


def _verify_one(bundle: str, jobs: int | None, quick: bool, output: Output) -> Any:
    from bundler.api import verify
    from bundler.bundle.reader import Reading
    from bundler.support.workers import default_jobs

    console = stderr_console()
    progress = _ReadProgress(console, bundle) if output.shows_progress(console) else None
    started = time.perf_counter()
    try:
        report = verify(bundle, Reading(jobs=jobs or default_jobs(), quick=quick, progress=progress))
    finally:
        if progress:
            progress.close()
    if output.verbose:
        console.print(f"  {escape(bundle)}: read and checked in {time.perf_counter() - started:.3f} s")
    return report


def _print_report(bundle: str, report: Any, quick: bool, *, verdict: bool = True) -> None:
    console = stderr_console()
    for problem in report.problems:
        console.print(escape(_line(problem)))
    if not verdict:
        return
    stats = report.stats
    how = " (quick: sizes and completeness only)" if quick else ""
    if report.ok:
        console.print(f"{escape(bundle)} is valid{how}: {stats.files} files, {stats.bytes} bytes")
    else:
        count = len(report.problems)
        console.print(f"{escape(bundle)} is invalid{how}: {count} problem{'s' if count != 1 else ''}")


class _ReadProgress:
    """A bar of bytes read for one bundle (TTY only); advanced from the hashing threads."""

    def __init__(self, console: Any, label: str) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=console
        )
        self.label = escape(label[-40:])
        self.task: Any = None

    def start(self, total_bytes: int | None) -> None:
        self.progress.start()
        self.task = self.progress.add_task(self.label, total=total_bytes)

    def advance(self, count: int) -> None:
        self.progress.advance(self.task, count)

    def close(self) -> None:
        self.progress.stop()


def _line(problem: Problem) -> str:
    """``error code path: message``: the file leads, so each bad file is one greppable line."""
    where = [problem.scenelet_label or "", f"({problem.scenelet_ref})" if problem.scenelet_ref else ""]
    if problem.shot_index is not None:
        where.append(f"shot {problem.shot_index}")
    context = " ".join(part for part in where if part)
    return f"{problem.severity} {problem.code} {problem.path}: {problem.message}" + (f" [{context}]" if context else "")
