"""Human and machine renderings of story reports (stderr lines, GitHub workflow commands, tables)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from bundler.api import StoryReport
from bundler.cli.common import Output, escape, terminal_text
from bundler.problems import Problem


def github_escape(text: str, *, property_value: bool = False) -> str:
    """Workflow-command escaping: ``%``, CR and LF always; ``:`` and ``,`` in properties."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def github_command(problem: Problem, story_id: str) -> str:
    where = problem.scenelet_label or problem.scenelet_ref or story_id
    title = github_escape(terminal_text(f"{problem.code} in {where}"), property_value=True)
    return f"::{problem.severity} title={title}::{github_escape(terminal_text(problem.one_line()))}"


def print_problems(console: Any, output: Output, report: StoryReport, prefix: str = "") -> None:
    for problem in report.problems:
        style = "red" if problem.severity == "error" else "yellow"
        console.print(f"{escape(prefix)}[{style}]{problem.severity}[/] {escape(problem.one_line().split(' ', 1)[1])}")
        if output.github:
            # workflow commands are read from stdout; with --json stdout belongs to the document
            stream = sys.stderr if output.json else sys.stdout
            stream.write(github_command(problem, report.story_id) + "\n")


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"


def summary_line(report: StoryReport, verb: str) -> str:
    stats = report.stats
    parts = [f"{stats.get('scenelets', 0)} scenelets", f"{stats.get('shots', 0)} shots"]
    if "files" in stats:
        parts.append(f"{stats['files']} files")
    if "bytes" in stats:
        parts.append(human_bytes(int(stats["bytes"])))
    parts.append(f"{stats.get('warnings', 0)} warnings")
    if "seconds" in stats:
        parts.append(f"{stats['seconds']:.2f} s")
    where = f" -> {report.bundle_path}" if report.bundle_path else ""
    return f"{verb} {report.story_id}{where} ({', '.join(parts)})"


def failure_reason(report: StoryReport) -> str:
    """Why a story failed, saying so when --strict turned its warnings into errors."""
    errors = report.stats.get("errors", 0)
    strict = report.stats.get("warningsAsErrors", 0)
    if strict:
        return f"{errors} error(s), {strict} of them warnings counted as errors under --strict"
    return f"{errors} error(s)"


def phases_line(report: StoryReport) -> str:
    """``  phases: load 0.12 s, plan 0.01 s, ...`` (--verbose)."""
    phases = report.stats.get("phases") or {}
    return "  phases: " + ", ".join(f"{name} {float(seconds):.3f} s" for name, seconds in phases.items())


def summary_table(reports: Sequence[StoryReport], title: str) -> Any:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("story", no_wrap=True, min_width=36)
    for column in ("status", "scenelets", "files", "bytes", "warnings", "time"):
        table.add_column(column, justify="left" if column == "status" else "right")
    for report in reports:
        stats = report.stats
        status = "[green]ok[/]" if report.ok else f"[red]failed ({stats.get('exitCode', report.exit_code)})[/]"
        table.add_row(
            escape(report.story_id),
            status,
            str(stats.get("scenelets", "-")),
            str(stats.get("files", "-")),
            human_bytes(int(stats["bytes"])) if "bytes" in stats else "-",
            str(stats.get("warnings", "-")),
            f"{stats['seconds']:.2f} s" if "seconds" in stats else "-",
        )
    return table
