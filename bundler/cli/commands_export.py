"""``bundler export STORY_ID``: the story tree as story YAML (docs/story-yaml.md)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

import typer

from bundler.cli import app
from bundler.cli.common import DatabaseUrlOption, DebugOption, JsonOption, Output, emit_json, reported_errors


def _story_id(value: str) -> str:
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a UUID", param_hint="STORY_ID") from None


@app.command("export")
def export(
    story_id: Annotated[str, typer.Argument(help="Story UUID.", metavar="STORY_ID", show_default=False)],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the YAML to this file instead of stdout.", show_default=False),
    ] = None,
    database_url: DatabaseUrlOption = None,
    json_output: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Write a story as YAML: labels, UUIDs, content, shots and stored media paths.

    The output seeds back with `bundler db seed` (round trip).
    """
    output = Output.from_options(json_output, debug)
    story_id = _story_id(story_id)  # exit 2 before touching the database
    context = {"storyId": story_id, "out": str(out) if out else None}
    with reported_errors(output, context):
        from bundler.db.connect import connection, resolve_target
        from bundler.story_yaml.export import export_story

        target = resolve_target(database_url)
        with connection(target) as conn:
            text = export_story(conn, story_id)
        if out is not None:
            write_text_atomically(out, text)
        if output.json:
            # without --out the YAML has to travel inside the one JSON document
            emit_json({"ok": True, **context, **({} if out else {"yaml": text})})
        elif out is None:
            typer.echo(text, nl=False)


def write_text_atomically(path: Path, text: str) -> None:
    """Write beside the target, then rename: a reader never sees half a file."""
    import os
    import tempfile

    from bundler.errors import EnvError

    if path.is_dir():
        raise EnvError(f"--out {path} is a folder; give a file name.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
                stream.write(text)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise EnvError(f"Cannot write {path}: {exc.strerror or exc}.") from None
