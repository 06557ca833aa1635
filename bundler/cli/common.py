"""What every command shares: output options, database options, and the one
place where errors become exit codes (docs/design.md §4)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

import click
import typer

from bundler.errors import BundlerError

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_ENV, EXIT_INTERNAL = 0, 1, 2, 3, 70

# Shared option declarations, so every command spells them the same way.
JsonOption = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks for internal errors.")]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="DATABASE_URL",
        help="PostgreSQL URL. Default: DATABASE_URL, then libpq PG* variables, then the embedded server.",
        show_default=False,
    ),
]
AssetsRootOption = Annotated[
    str | None,
    typer.Option(
        "--assets-root",
        envvar="BUNDLER_ASSETS_ROOT",
        help="Folder that stored media paths are relative to (default: ./generated).",
        show_default=False,
    ),
]
JobsOption = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        min=1,
        envvar="BUNDLER_JOBS",
        help="Parallel workers (default: the CPUs this process may use).",
        show_default=False,
    ),
]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        click_type=click.Choice(["text", "github"]),
        help="Problem output: text, or github (workflow commands; automatic when GITHUB_ACTIONS=true).",
        show_default=False,
    ),
]


QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print problems and the summary only (no progress, no table).")
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Also print how long each phase took.")]


@dataclass(frozen=True)
class Output:
    json: bool = False
    debug: bool = False
    github: bool = False
    quiet: bool = False
    verbose: bool = False

    @classmethod
    def from_options(
        cls, json_output: bool, debug: bool, fmt: str | None = None, *, quiet: bool = False, verbose: bool = False
    ) -> Output:
        if fmt not in (None, "text", "github"):
            raise typer.BadParameter("must be 'text' or 'github'", param_hint="--format")
        if quiet and verbose:
            raise typer.BadParameter("give --quiet or --verbose, not both", param_hint="--quiet")
        github = fmt == "github" or (fmt is None and os.environ.get("GITHUB_ACTIONS") == "true")
        return cls(json=json_output, debug=debug, github=github, quiet=quiet, verbose=verbose)

    def shows_progress(self, console: Any) -> bool:
        return bool(console.is_terminal) and not self.json and not self.quiet


def stderr_console() -> Any:
    """Progress, problems and summaries: stderr, so stdout stays for listings and JSON."""
    return _console(stderr=True)


def stdout_console() -> Any:
    """Tables and listings (`bundler stories | grep`)."""
    return _console(stderr=False)


def _console(*, stderr: bool) -> Any:
    from rich.console import Console

    # rich honours NO_COLOR itself; highlight off so ids are not recoloured
    console = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 160  # logs and pipes: never squeeze tables to 80 columns and cut ids
    return console


REPORT_VERSION = 1  # of the --json documents (`bundler schema report`)


_emitted: list[bool] = []  # a JSON document went out: an interruption after it adds none


def emit_json(document: dict[str, Any]) -> None:
    from bundler import __version__

    document = {**document, "reportVersion": REPORT_VERSION, "generator": f"bundler {__version__}"}
    _emitted.append(True)
    try:
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # a reader that closed early: the exit code still tells the outcome
        _quiet_stdout()


def fail(code: int) -> NoReturn:
    raise typer.Exit(code)


@contextmanager
def reported_errors(output: Output, json_context: dict[str, Any] | None = None) -> Iterator[None]:
    """Turn library errors into one stderr line (plus a JSON document) and an exit code.

    ``json_context`` holds the keys of the command's JSON report known before
    the failure (for example ``storyId``), so --json always yields a document.
    """
    try:
        yield
    except (typer.Exit, typer.Abort, typer.BadParameter, KeyboardInterrupt):
        raise
    except BrokenPipeError:  # `bundler stories | head -1`: the reader has all it wanted
        _quiet_stdout()
        fail(0)
    except BundlerError as exc:
        _report_failure(output, exc.exit_code, str(exc), json_context, exc)
    except Exception as exc:  # a bug: short message, traceback only with --debug
        if output.debug:
            import traceback

            traceback.print_exc()
        message = f"internal error: {type(exc).__name__}: {exc}"
        if not output.debug:
            message += " (run with --debug for the traceback)"
        _report_failure(output, EXIT_INTERNAL, message, json_context, None)


def _report_failure(
    output: Output,
    code: int,
    message: str,
    json_context: dict[str, Any] | None,
    exc: BundlerError | None,
) -> NoReturn:
    from bundler.db.conninfo import redact

    message = redact(message)
    stderr_console().print(f"[bold red]error[/]: {escape(message)}")
    if output.json:
        problems = getattr(exc, "problems", ())
        document: dict[str, Any] = {"ok": False, **(json_context or {})}
        document.setdefault("problems", [p.to_json() for p in problems])
        document["error"] = {"exitCode": code, "message": message}
        emit_json(document)
    fail(code)


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1: ESC, CR, LF, BEL, CSI...


def terminal_text(text: str) -> str:
    """Text from the database made harmless on a terminal: every control character shown as ``\\xNN``.

    No clear-screen, window-title or cursor escape gets through, and one problem stays one line.
    """
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


def escape(text: str) -> str:
    """Any text for rich output: control characters escaped, and ``[bold]`` printed literally."""
    from rich.markup import escape as rich_escape

    return rich_escape(terminal_text(text))


def run_app(app: typer.Typer, args: list[str]) -> int:
    """Run the app in click's standalone mode (usage errors exit 2, ``typer.Exit`` its code) and
    return the exit code instead of leaving the process."""
    # the alias command keeps its own name, so its shell completion registers for it
    invoked = os.path.basename(sys.argv[0])
    try:
        app(args=args, prog_name=invoked if invoked in ("bundler", "story-bundler") else "bundler")
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    return 0


def run_guarded(run: Callable[[], int], *, program: bool) -> int:
    """The whole command: a pipe closed early ends quietly; a signal before the run's handlers
    (``support.signals``) gives one line, 128 + N and, with --json, one document.

    ``program``: this is the process itself (not a test calling ``main``), so once the outcome
    is reported, signals wait: the interpreter's shutdown would otherwise end it as killed."""
    from bundler.errors import Interrupted
    from bundler.support.signals import started

    try:
        started()
        code = run()
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except Interrupted as exc:
        try:
            sys.stderr.write(f"error: {exc}\n")
            if "--json" in sys.argv[1:] and not _emitted:
                emit_json({"ok": False, "stories": [], "error": {"exitCode": exc.exit_code, "message": str(exc)}})
        except BrokenPipeError:
            _quiet_stdout()
        return exc.exit_code
    if program:
        _hold_signals()
    return code


def _hold_signals() -> None:
    # everything is reported: the interpreter's shutdown resets the handlers to the default, so a
    # signal now would end the process as killed (-15) after it reported its outcome; it waits instead
    import signal

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def _quiet_stdout() -> None:
    # the reader is gone: later flushes (at exit too) must not raise again
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
