"""``bundler verify``: check a bundle folder or archive (DESIGN §4)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bundler.cli import app
from bundler.cli.common import (
    EXIT_INPUT,
    DebugOption,
    JsonOption,
    Output,
    emit_json,
    escape,
    fail,
    reported_errors,
    stderr_console,
)
from bundler.problems import Problem


@app.command("verify")
def verify(
    bundle: Annotated[
        str,
        typer.Argument(
            help="A bundle folder, a .zip / .tar.gz archive of one, or s3://BUCKET/PREFIX/<story-id> "
            "(through its current.json) or the s3:// URL of one published version.",
            show_default=False,
        ),
    ],
    json_output: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Check a bundle: files complete, checksums valid, story graph consistent.

    Exit 0 when valid, 1 when not (each problem named on stderr), 3 when it cannot be read.
    """
    from bundler.storage.base import is_s3_url
    from bundler.verify import verify_bundle

    output = Output.from_options(json_output, debug)
    shown = bundle if is_s3_url(bundle) else str(Path(bundle).absolute())
    with reported_errors(output, {"bundlePath": shown, "stats": None}):
        report = verify_bundle(bundle)
    console = stderr_console()
    for problem in report.problems:
        console.print(escape(_line(problem)))
    stats = report.stats
    if report.ok:
        console.print(f"{escape(str(bundle))} is valid: {stats.files} files, {stats.bytes} bytes")
    else:
        count = len(report.problems)
        console.print(f"{escape(str(bundle))} is invalid: {count} problem{'s' if count != 1 else ''}")
    if output.json:
        emit_json(report.to_json())
    if not report.ok:
        fail(EXIT_INPUT)


def _line(problem: Problem) -> str:
    """``error code path: message``: the file leads, so each bad file is one greppable line."""
    where = [problem.scenelet_label or "", f"({problem.scenelet_id})" if problem.scenelet_id else ""]
    if problem.shot_index is not None:
        where.append(f"shot {problem.shot_index}")
    context = " ".join(part for part in where if part)
    return f"{problem.severity} {problem.code} {problem.path}: {problem.message}" + (f" [{context}]" if context else "")
