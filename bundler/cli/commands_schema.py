"""``bundler schema manifest|report|story``: the JSON Schema of each published format."""

from __future__ import annotations

from typing import Annotated

import click
import typer

from bundler.cli import app
from bundler.schemas import NAMES


@app.command("schema")
def schema(
    name: Annotated[
        str,
        typer.Argument(
            click_type=click.Choice(NAMES),
            help="manifest (manifest.json), report (the --json report) or story (the story YAML).",
            show_default=False,
        ),
    ],
) -> None:
    """Print the JSON Schema (draft 2020-12) of a published format on stdout."""
    from bundler.schemas import schema_text

    typer.echo(schema_text(name), nl=False)
