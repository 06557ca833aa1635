"""The command line: parses options, calls the library, renders results.

Command modules register themselves on ``app``; heavy imports happen inside
the commands so ``bundler --help`` stays fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="bundler",
    help="Assemble interactive branching stories from PostgreSQL into offline-playable bundles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Create the schema and load example stories.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _register() -> None:
    # imported for their side effect of adding commands to ``app``/``db_app``
    from importlib import import_module

    for name in ("assemble", "db", "export", "verify"):
        import_module(f"bundler.cli.commands_{name}")


def main() -> None:
    from bundler.cli.common import run_app

    _register()
    run_app(app)
