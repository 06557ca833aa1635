"""The command line: parses options, calls the library, renders results.

Command modules register themselves on ``app``; heavy imports happen inside
the commands so ``bundler --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from bundler.support.signals import install_if_program

install_if_program()  # the console script imports this module first: signals during the imports too

import typer  # noqa: E402

app = typer.Typer(
    name="bundler",
    help="Assemble interactive branching stories from PostgreSQL into offline-playable bundles.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
db_app = typer.Typer(
    help="Create the schema, load example stories, and check or stop the embedded server.", no_args_is_help=True
)
app.add_typer(db_app, name="db")


def _print_version(value: bool) -> None:
    if value:
        from bundler import __version__

        typer.echo(f"bundler {__version__}")
        raise typer.Exit()


@app.callback()
def _main_options(
    version: Annotated[
        bool,
        typer.Option("--version", help="Show the version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """Assemble interactive branching stories from PostgreSQL into offline-playable bundles."""


COMMAND_MODULES = ("assemble", "db", "export", "verify", "schema", "releases")
# command word -> the module that defines it (``db`` also holds ``stories``); any other word,
# --help or a typo registers every module, so a new command works before it is listed here
_MODULE_OF = {
    "assemble": "assemble",
    "check": "assemble",
    "db": "db",
    "stories": "db",
    "export": "export",
    "verify": "verify",
    "schema": "schema",
    "releases": "releases",
    "rollback": "releases",
    "prune": "releases",
}


def _register(modules: tuple[str, ...] = COMMAND_MODULES) -> None:
    # imported for their side effect of adding commands to ``app``/``db_app``
    from importlib import import_module

    for name in modules:
        import_module(f"bundler.cli.commands_{name}")


def _modules_for(args: list[str]) -> tuple[str, ...]:
    """Only the module of the command being run (every one for --help, no command or an unknown one)."""
    module = _MODULE_OF.get(args[0]) if args else None
    return (module,) if module else COMMAND_MODULES


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command (``argv``, default ``sys.argv[1:]``) and return its exit code.

    Tests call it in-process; the console scripts exit with what it returns."""
    import gc
    import sys

    from bundler.cli.common import run_app, run_guarded

    args = list(sys.argv[1:] if argv is None else argv)
    # A short-lived process whose big allocations (100,000+ shot records, plans, manifests) are
    # acyclic and die by reference counting: full collections would only re-scan them again and
    # again (10-20% of `check` at 100,000 shots). Young objects are still collected.
    if argv is None:
        gc.set_threshold(50_000, 1000, 1000)

    def run() -> int:
        _register(_modules_for(args))
        return run_app(app, args)

    return run_guarded(run, program=argv is None)
