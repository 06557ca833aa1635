"""``bundler releases``, ``rollback`` and ``prune``: the versions of a story published to a bucket
(DESIGN §4)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bundler.cli import app
from bundler.cli.common import DebugOption, JsonOption, Output, emit_json, escape, reported_errors, stderr_console

StoryUrlArgument = Annotated[
    str, typer.Argument(metavar="s3://BUCKET[/PREFIX]/STORY_ID", help="The story's folder in the bucket.")
]


@app.command("releases")
def releases_command(story: StoryUrlArgument, json_output: JsonOption = False, debug: DebugOption = False) -> None:
    """List a story's published versions, most recent first; the current one is marked."""
    from bundler.storage.s3.releases import open_story

    output = Output.from_options(json_output, debug)
    with reported_errors(output, {"story": story, "releases": []}):
        found = open_story(story)
    documents = [release.to_json() for release in found.releases]
    if output.json:
        emit_json({"ok": True, "story": story, "current": found.current, "releases": documents})
        return
    console = stderr_console()
    if not documents:
        console.print(f"no versions under {escape(story)}")
    for document in documents:
        console.print(escape(_line(document)))


def _line(release: dict[str, Any]) -> str:
    mark = "*" if release["current"] else " "
    state = "" if release["complete"] else "  (incomplete)"
    exported = release["exportedAt"] or "-"
    published = release["publishedAt"] or "-"
    return (
        f"{mark} {release['version']}  exported {exported}  published {published}  "
        f"{release['files']} files  {release['bytes']} bytes{state}"
    )


@app.command("rollback")
def rollback_command(
    story: StoryUrlArgument,
    version: Annotated[str, typer.Argument(help="The version to point current.json at (see `bundler releases`).")],
    json_output: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Point a story's current.json back at an earlier complete version (only over the pointer as read)."""
    from bundler.storage.s3.releases import rollback

    output = Output.from_options(json_output, debug)
    with reported_errors(output, {"story": story, "version": version}):
        found, moved = rollback(story, version)
    line = f"{story} now points at {version}" if moved else f"{story} already points at {version}"
    stderr_console().print(escape(line))
    if output.json:
        emit_json({"ok": True, "story": story, "version": version, "previous": found.current, "moved": moved})


@app.command("prune")
def prune_command(
    story: StoryUrlArgument,
    keep: Annotated[int, typer.Option("--keep", min=0, help="Published versions to keep, most recent first.")],
    min_age: Annotated[
        int,
        typer.Option("--min-age", min=0, help="Never delete a version published less than this many seconds ago."),
    ] = 3600,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be deleted; delete nothing.")] = False,
    json_output: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Delete a story's old versions (with their source records and archives); never the current one."""
    from bundler.storage.s3.releases import delete_releases, open_story, prune_plan

    output = Output.from_options(json_output, debug)
    with reported_errors(output, {"story": story, "deleted": []}):
        found = open_story(story)
        doomed = prune_plan(found, keep, min_age)
        objects = 0 if dry_run else delete_releases(found, doomed)
    console = stderr_console()
    verb = "would delete" if dry_run else "deleted"
    for release in doomed:
        console.print(escape(f"{verb} {release.version} ({len(release.objects)} files)"))
    kept = len(found.releases) - len(doomed)
    console.print(f"{len(doomed)} version(s) {verb}, {kept} kept")
    if output.json:
        deleted = [release.version for release in doomed]
        emit_json({"ok": True, "story": story, "dryRun": dry_run, "deleted": deleted, "objects": objects})
