"""``bundler assemble`` and ``bundler check``: one story or many, in parallel.

Both commands take the same twelve options (which stories, where from, how strict, how to
report); they are declared once, in ``_batch_options``, and reach each command as one
``BatchOptions`` value (``batch_command``).
"""

from __future__ import annotations

import functools
import inspect
import signal
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer

from bundler.cli import app
from bundler.cli import web_options as web
from bundler.cli.batch import finish, run_batch
from bundler.cli.common import (
    AssetsRootOption,
    DatabaseUrlOption,
    DebugOption,
    FormatOption,
    JobsOption,
    JsonOption,
    Output,
    QuietOption,
    VerboseOption,
    reported_errors,
)

if TYPE_CHECKING:
    from bundler.report import StoryReport
    from bundler.support.cancel import Cancellation
    from bundler.support.progress import ProgressSink

StoryIdsArgument = Annotated[list[str] | None, typer.Argument(help="Story UUIDs.", show_default=False)]
AllOption = Annotated[bool, typer.Option("--all", help="Every story in the database.")]
ShardOption = Annotated[
    str | None,
    typer.Option(
        "--shard",
        help="With --all: only shard K of N (K/N, 1 <= K <= N; auto/N takes K from JOB_COMPLETION_INDEX + 1).",
        show_default=False,
    ),
]
StrictOption = Annotated[bool, typer.Option("--strict", help="Treat every warning as an error (release jobs).")]


def _batch_options(
    story_ids: StoryIdsArgument = None,
    all_stories: AllOption = False,
    shard: ShardOption = None,
    assets_root: AssetsRootOption = None,
    database_url: DatabaseUrlOption = None,
    strict: StrictOption = False,
    jobs: JobsOption = None,
    json_output: JsonOption = False,
    output_format: FormatOption = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    debug: DebugOption = False,
) -> None:
    """The options ``assemble`` and ``check`` share (a template: never called)."""


@dataclass(frozen=True)
class BatchOptions:
    story_ids: list[str] | None
    all_stories: bool
    shard: str | None
    assets_root: str | None
    database_url: str | None
    strict: bool
    jobs: int | None
    json_output: bool
    output_format: str | None
    quiet: bool
    verbose: bool
    debug: bool

    def output(self) -> Output:
        return Output.from_options(
            self.json_output, self.debug, self.output_format, quiet=self.quiet, verbose=self.verbose
        )

    @property
    def batch(self) -> bool:
        """The batch report shape for --all or several ids, even when the ids name the same story."""
        return self.all_stories or len(self.story_ids or ()) > 1


_SHARED = inspect.signature(_batch_options, eval_str=True).parameters


def batch_command(command: Callable[..., None]) -> Callable[..., None]:
    """``command(batch: BatchOptions, **own)`` as a typer command taking the shared options and its own."""
    own = [p for name, p in inspect.signature(command, eval_str=True).parameters.items() if name != "batch"]

    @functools.wraps(command)
    def wrapper(**values: Any) -> None:
        batch = BatchOptions(**{name: values.pop(name) for name in _SHARED})
        command(batch, **values)

    parameters = [*_SHARED.values(), *own]
    wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    del wrapper.__wrapped__  # typer reads the signature above, not the command's own
    return wrapper


@app.command("assemble")
@batch_command
def assemble_command(
    batch: BatchOptions,
    out: Annotated[
        str,
        typer.Option(
            "--out",
            envvar="BUNDLER_OUT",
            help="Output folder or s3://BUCKET/PREFIX; bundles go to OUT/<story-id>/.",
        ),
    ] = "bundles",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing bundle (after success).")] = False,
    exported_at: Annotated[
        str | None,
        typer.Option(
            "--exported-at",
            help="ISO 8601 export time (default: SOURCE_DATE_EPOCH, else newest row).",
        ),
    ] = None,
    archive: Annotated[
        str | None,
        typer.Option(
            "--archive",
            click_type=click.Choice(["zip", "tar.gz"]),
            help="Also write a deterministic zip or tar.gz beside the bundle.",
        ),
    ] = None,
    web_profile: web.WebOption = False,
    web_quality: web.WebQualityOption = web.DEFAULT_QUALITY,
    web_max_side: web.WebMaxSideOption = web.DEFAULT_MAX_SIDE,
    web_audio_kbps: web.WebAudioOption = web.DEFAULT_AUDIO_KBPS,
) -> None:
    """Build offline bundles: manifest.json, SHA256SUMS, media and index.html."""
    from bundler import api
    from bundler.db.sessions import Connections

    output = batch.output()
    context = _context(batch)
    with _cancel_on_signals(output, context) as cancel, reported_errors(output, context), ExitStack() as stack:
        web_settings = web.web_settings(web_profile, web_quality, web_max_side, web_audio_kbps)
        target, ids = _resolve_stories(batch)
        sessions = stack.enter_context(Connections(target))  # one connection per worker, not per story
        options = api.AssembleOptions(
            database=sessions,
            assets_root=batch.assets_root,
            strict=batch.strict,
            out_dir=out,
            overwrite=overwrite,
            exported_at=exported_at,
            archive=archive,  # type: ignore[arg-type]  # click checked the choice
            web=web_settings,
        )

        def run(story_id: str, workers: int, progress: ProgressSink | None) -> StoryReport:
            return api.assemble(story_id, options, jobs=workers, progress=progress, cancel=cancel)

        reports = run_batch(ids, batch.jobs, output, run, show_progress=True)
    finish(reports, output, "assembled", "Assembled", batch=batch.batch, cancel=cancel)


@app.command("check")
@batch_command
def check_command(
    batch: BatchOptions,
    explain: Annotated[
        str | None,
        typer.Option(
            "--explain", metavar="CODE", help="Print what a problem code means and its usual fix.", show_default=False
        ),
    ] = None,
) -> None:
    """Run every check of `assemble` and write nothing."""
    from bundler import api
    from bundler.db.sessions import Connections

    if explain is not None:
        _explain(explain)
        return
    output = batch.output()
    context = _context(batch)
    with _cancel_on_signals(output, context) as cancel, reported_errors(output, context), ExitStack() as stack:
        target, ids = _resolve_stories(batch)
        sessions = stack.enter_context(Connections(target))  # one connection per worker, not per story
        options = api.CheckOptions(database=sessions, assets_root=batch.assets_root, strict=batch.strict)

        def run(story_id: str, workers: int, progress: ProgressSink | None) -> StoryReport:
            return api.check(story_id, options, jobs=workers, cancel=cancel)

        reports = run_batch(ids, batch.jobs, output, run, show_progress=False)
    finish(reports, output, "checked", "Checked", batch=batch.batch, cancel=cancel)


def _explain(code: str) -> None:
    from bundler.problem_catalogue import CATALOGUE, explain

    entry = explain(code)
    if entry is None:
        raise typer.BadParameter(
            f"unknown problem code {code!r}; known codes: {', '.join(sorted(CATALOGUE))}", param_hint="--explain"
        )
    typer.echo(entry.text(), nl=False)


def _context(batch: BatchOptions) -> dict[str, Any]:
    """The JSON keys known before anything runs, so an early failure still yields the right shape."""
    if not batch.batch and batch.story_ids:
        return {"storyId": batch.story_ids[0], "bundlePath": None, "problems": [], "stats": {}}
    return {"stories": []}


@contextmanager
def _cancel_on_signals(output: Output, context: dict[str, Any]) -> Iterator[Cancellation]:
    """Ctrl-C and SIGTERM ask the run to stop: no new story starts, stories in progress are
    abandoned at their next chunk (their staging removed, old bundles kept), then exit 128+N;
    a run stuck on a store that stopped answering is ended after a grace period (``grace``)."""
    from bundler.cli.grace import Grace
    from bundler.support.cancel import Cancellation

    cancel = Cancellation()
    grace = Grace(output, context)

    def handle(number: int, _frame: Any) -> None:
        cancel.cancel(number)
        grace.start(number)

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.getsignal(signum) for signum in handled}
    for signum in handled:
        signal.signal(signum, handle)
    try:
        yield cancel
    finally:
        from bundler.support.signals import is_early_handler, settle

        grace.finish()
        if any(is_early_handler(handler) for handler in previous.values()):
            settle()  # the work is done: a later signal must not turn its report into an interruption
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _resolve_stories(batch: BatchOptions) -> tuple[Any, list[str]]:
    from bundler.api import parse_story_id
    from bundler.db.connect import connection, resolve_target
    from bundler.errors import UsageError
    from bundler.support.shard import Shard

    story_ids, all_stories, shard_text = batch.story_ids, batch.all_stories, batch.shard
    if bool(story_ids) == all_stories:
        raise typer.BadParameter("give one or more STORY_IDs, or --all (not both)", param_hint="STORY_ID")
    if shard_text is not None and not all_stories:
        raise typer.BadParameter("--shard selects among --all stories", param_hint="--shard")
    try:
        shard = Shard.parse(shard_text) if shard_text is not None else None
    except UsageError as exc:
        raise typer.BadParameter(str(exc), param_hint="--shard") from None
    try:
        ids: list[str] = [parse_story_id(value) for value in story_ids or ()]
    except UsageError as exc:
        raise typer.BadParameter(str(exc), param_hint="STORY_ID") from None
    target = resolve_target(batch.database_url)
    if all_stories:
        from bundler.db.listing import list_stories
        from bundler.errors import InputError

        with connection(target) as conn:
            every = [row.story_id for row in list_stories(conn)]
        if not every:
            raise InputError("No stories found in the database.")
        # a shard may hold none of them (more jobs than stories): nothing to do is not a failure
        ids = [story_id for story_id in every if shard is None or shard.takes(story_id)]
    return target, list(dict.fromkeys(ids))
