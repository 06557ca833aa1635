"""``bundler db init|seed|status|stop`` and ``bundler stories``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bundler.cli import app, db_app
from bundler.cli.common import (
    AssetsRootOption,
    DatabaseUrlOption,
    DebugOption,
    JsonOption,
    Output,
    emit_json,
    escape,
    reported_errors,
    stderr_console,
    stdout_console,
)


@db_app.command("init")
def db_init(
    database_url: DatabaseUrlOption = None, json_output: JsonOption = False, debug: DebugOption = False
) -> None:
    """Create the pipeline schema (stories, scenelets, shots). Safe to run twice."""
    from bundler.db.connect import connection, resolve_target
    from bundler.db.repository import init_schema

    output = Output.from_options(json_output, debug)
    with reported_errors(output):
        target = resolve_target(database_url)
        with connection(target) as conn:
            init_schema(conn)
        if output.json:
            emit_json({"ok": True, "database": target.display})
        stderr_console().print(f"schema ready in {escape(target.display)}")


@db_app.command("seed")
def db_seed(
    file: Annotated[Path, typer.Argument(help="Story YAML file (the format `bundler export` writes).")],
    assets_root: AssetsRootOption = None,
    if_missing: Annotated[bool, typer.Option("--if-missing", help="Do nothing if the story already exists.")] = False,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Delete the story first if it exists (one transaction) and overwrite differing media files.",
        ),
    ] = False,
    database_url: DatabaseUrlOption = None,
    json_output: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Load a story from YAML, copying its media into the assets root."""
    from bundler.db.connect import connection, resolve_target
    from bundler.storage.local.files import resolve_assets_root
    from bundler.story_yaml.seed import seed_file

    output = Output.from_options(json_output, debug)
    if if_missing and replace:
        raise typer.BadParameter("use --if-missing or --replace, not both", param_hint="--replace")
    with reported_errors(output, {"file": str(file)}):
        target = resolve_target(database_url)
        root = resolve_assets_root(assets_root, create=True)
        with connection(target) as conn:
            result = seed_file(conn, file, root, if_missing=if_missing, replace=replace)
        if output.json:
            emit_json({"ok": True, **result.to_json()})
        stderr_console().print(escape(result.summary()))


@app.command("stories")
def stories(
    database_url: DatabaseUrlOption = None, json_output: JsonOption = False, debug: DebugOption = False
) -> None:
    """List stories: id, title, scenelets, shots, and whether the root is playable."""
    from bundler.db.connect import connection, resolve_target
    from bundler.db.listing import list_stories

    output = Output.from_options(json_output, debug)
    with reported_errors(output, {"stories": []}):
        target = resolve_target(database_url)
        with connection(target) as conn:
            rows = list_stories(conn)
        if output.json:
            emit_json({"ok": True, "stories": [row.to_json() for row in rows]})
            return
        from rich.table import Table

        table = Table(title=f"Stories in {escape(target.display)}")
        table.add_column("id", no_wrap=True, min_width=36)  # ids are copied from here: never cut them
        for column in ("title", "scenelets", "shots", "playable"):
            table.add_column(column, justify="right" if column in ("scenelets", "shots") else "left")
        for row in rows:
            table.add_row(
                row.story_id,
                escape(row.title),
                str(row.scenelets),
                str(row.shots),
                "yes" if row.root_playable else "[red]no[/]",
            )
        if rows:
            stdout_console().print(table)
        else:
            stderr_console().print("no stories yet: try `bundler db seed examples/lantern-keeper/story.yaml`")


@db_app.command("status")
def db_status(json_output: JsonOption = False, debug: DebugOption = False) -> None:
    """Show the embedded PostgreSQL: running or not, data folder, connection URI, version."""
    from bundler.db.embedded import data_dir, server_status

    output = Output.from_options(json_output, debug)
    with reported_errors(output):
        status = server_status(data_dir())
        if output.json:
            emit_json({"ok": True, **status.to_json()})
            return
        state = f"running (pid {status.pid})" if status.running else "not running"
        if not status.initialized:
            state += " (no database created yet)"
        for label, value in (
            ("embedded PostgreSQL", state),
            ("data folder", str(status.data_dir)),
            ("connection", status.uri or "-"),
            ("version", status.version or "-"),
        ):
            typer.echo(f"{label + ':':21}{value}")


@db_app.command("stop")
def db_stop(json_output: JsonOption = False, debug: DebugOption = False) -> None:
    """Stop the embedded PostgreSQL cleanly (nothing to do if it is not running)."""
    from bundler.db.embedded import data_dir, stop_server

    output = Output.from_options(json_output, debug)
    with reported_errors(output):
        folder = data_dir()
        stopped = stop_server(folder)
        if output.json:
            emit_json({"ok": True, "stopped": stopped, "dataDir": str(folder)})
        message = "stopped the embedded PostgreSQL in" if stopped else "the embedded PostgreSQL is not running in"
        stderr_console().print(f"{message} {escape(str(folder))}")
