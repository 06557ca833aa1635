"""Stage 1: one consistent snapshot of a story (docs/design.md §4, §6).

Three queries whatever the story size, inside one REPEATABLE READ READ ONLY
transaction, so a bundle never mixes two states of a story the pipeline is
still writing.

Built for stories of 100,000+ shots, where turning rows into Python objects
costs more than the database spends producing them (bench/results.md, "Why
the code is shaped this way"). So the database does the per-row work it does in C:

* shots come one row per scenelet (per stored label and sequence, to be
  exact: ``records.ShotGroup``), their columns aggregated into arrays, with the
  group's newest timestamp computed by the server;
* shots that store no media at all are counted but not sent: a key frame and
  a narration that are each NULL or, after trimming spaces, empty or ``N/A``
  (ASCII letters, any case). That test only ever leaves out what the
  planner's own rule (``media.paths.is_skipped``) would skip too; the planner still
  applies that rule to every shot it receives;
* of a scenelet's ``content`` only the description is read, and only when it
  is a JSON string (what ``SceneletRecord.description`` uses), so no JSON
  document is parsed in Python.

Rows come in binary. Shot groups stream in chunks: one statement and no round
trip per chunk where libpq supports chunked results (libpq 17+), else through
a server-side cursor inside the transaction that fetches large batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import IsolationLevel
from psycopg.rows import class_row

from bundler.db.connect import set_local_timeouts
from bundler.db.jsonb import located
from bundler.db.repository import STORY_COLUMNS
from bundler.errors import StoryNotFoundError
from bundler.records import SceneletRecord, ShotGroup, ShotRecord, StoryRecord, StorySnapshot

# the columns of SceneletRecord but story_id (the story's own, shared); content reduced to its description
SCENELET_QUERY = (
    "select id::text, parent_id::text, choice_label_from_parent, choice_prompt, "
    "case when jsonb_typeof(content -> 'description') = 'string' then content ->> 'description' end, "
    "is_branch_point, is_terminal_node, branch_audio_file_path, created_at "
    "from scenelets where story_id = %s order by created_at, id"
)


# The narration script of a shot (docs/design.md §3 `lines`) as a compact [[speaker, text], ...] array, or
# null when there is none. Extracted by the server: storyboard payloads can be huge or deeply nested,
# and Python never parses them. Either key spelling; a payload that is no object, a list that is no
# array, entries that are no objects and lines that are not non-empty strings give nothing.
LINES_SQL = (
    "(select jsonb_agg(jsonb_build_array("
    "case when jsonb_typeof(e->'source') = 'string' then btrim(e->>'source') else '' end, btrim(e->>'line')"
    ") order by n) from jsonb_array_elements(case "
    "when jsonb_typeof(storyboard_payload->'audioAndNarrative') = 'array' then storyboard_payload->'audioAndNarrative' "
    "when jsonb_typeof(storyboard_payload->'audio_and_narrative') = 'array' "
    "then storyboard_payload->'audio_and_narrative' "
    "else '[]'::jsonb end) with ordinality as narration(e, n) "
    "where jsonb_typeof(e->'line') = 'string' and btrim(e->>'line') <> '')"
)


def _no_media(column: str) -> str:
    # "C" collation: upper() changes ASCII letters only, so nothing but n/a in some case becomes N/A
    return f"({column} is null or upper(btrim({column}) collate \"C\") in ('', 'N/A'))"


_LISTED = f"not ({_no_media('key_frame_image_path')} and {_no_media('audio_file_path')})"


def _shot_group_query(lines: bool) -> str:
    """One row per shot group: what every shot contributes (count, newest timestamp, first index) and,
    aggregated apart, the shots that store media. storyboard_payload itself and video_file_path are
    never read by bundling; leaving them out keeps memory flat. A group's lines come as one JSON array
    (one document to parse per scenelet, not per shot); a check, which renders no player, asks for none.

    Two aggregations joined, rather than one with a ``filter (where ...)`` per aggregate, so the
    no-media test runs once per shot instead of once per aggregate (about 40% less server time at
    100,000 shots: bench/results.md).
    """
    scripts = f"jsonb_agg(coalesce({LINES_SQL}, '[]') order by shot_index)" if lines else "null::jsonb"
    group = "scenelet_ref, scenelet_id, scenelet_sequence"
    return (
        f"with every_shot as (select {group}, count(*) as shot_count, "
        "max(greatest(created_at, updated_at)) as newest, min(shot_index) as first_index "
        f"from shots where story_id = %(story)s group by {group}), "
        f"with_media as (select {group}, array_agg(shot_index order by shot_index) as indexes, "
        "array_agg(key_frame_image_path order by shot_index) as images, "
        f"array_agg(audio_file_path order by shot_index) as audios, {scripts} as scripts "
        f"from shots where story_id = %(story)s and {_LISTED} group by {group}) "
        "select every_shot.scenelet_ref::text, every_shot.scenelet_id, every_shot.scenelet_sequence, shot_count, "
        "newest, indexes, images, audios, scripts "
        f"from every_shot left join with_media using ({group}) "
        "order by every_shot.scenelet_sequence, every_shot.scenelet_ref, first_index"
    )


SHOT_GROUP_QUERY = _shot_group_query(lines=True)
SHOT_GROUP_QUERY_NO_LINES = _shot_group_query(lines=False)
SHOT_FETCH_SIZE = 2_000  # groups per chunk
_CHUNKED_LIBPQ = 170000  # PQsetChunkedRowsMode


def load_snapshot(conn: psycopg.Connection, story_id: str, *, lines: bool = True) -> StorySnapshot:
    """The story, its scenelets and its shot groups; ``lines=False`` leaves the narration
    scripts out (every shot's ``lines`` is empty): what a check needs, which renders no captions."""
    conn.isolation_level = IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    with conn.transaction():
        set_local_timeouts(conn)
        # the one JSON document parsed in Python (see above): a value too deep to read is a story problem
        with located(conn, story_id, "audio_design_document"), conn.cursor(row_factory=class_row(StoryRecord)) as cur:
            story = cur.execute(f"select {STORY_COLUMNS} from stories where id = %s", (story_id,)).fetchone()
        if story is None:
            raise StoryNotFoundError(story_id)
        with conn.cursor(binary=True) as cur:
            scenelets = [
                SceneletRecord(id_, story.id, parent, label, prompt, {"description": text} if text else {}, *rest)
                for id_, parent, label, prompt, text, *rest in cur.execute(SCENELET_QUERY, (story_id,))
            ]
        groups = tuple(_shot_groups(conn, story.id, SHOT_GROUP_QUERY if lines else SHOT_GROUP_QUERY_NO_LINES))
    return StorySnapshot(story, tuple(scenelets), groups)


def _shot_groups(conn: psycopg.Connection, story_id: str, query: str) -> Iterator[ShotGroup]:
    for ref, label, sequence, count, newest, indexes, images, audios, scripts in _shot_rows(conn, story_id, query):
        shots = tuple(
            ShotRecord(
                story_id, ref, label, sequence, index, None, image, audio, None, None, None, tuple(map(tuple, lines))
            )
            for index, image, audio, lines in zip(
                indexes or (), images or (), audios or (), scripts or _no_scripts(indexes), strict=True
            )
        )
        yield ShotGroup(ref, label, sequence, count, newest, shots)


def _no_scripts(indexes: list[int] | None) -> tuple[list[Any], ...]:
    return ([],) * len(indexes or ())


def _shot_rows(conn: psycopg.Connection, story_id: str, query: str) -> Iterator[tuple[Any, ...]]:
    if psycopg.pq.version() >= _CHUNKED_LIBPQ and _stream_takes_size():
        with conn.cursor(binary=True) as cur:
            yield from cur.stream(query, {"story": story_id}, size=SHOT_FETCH_SIZE)
        return
    with conn.cursor(name="bundler_shots", binary=True) as cur:
        cur.itersize = SHOT_FETCH_SIZE
        cur.execute(query, {"story": story_id})
        while rows := cur.fetchmany(SHOT_FETCH_SIZE):
            yield from rows


def _stream_takes_size() -> bool:
    """psycopg 3.2 added ``Cursor.stream(..., size=)``."""
    major, minor = (int(part) for part in psycopg.__version__.split(".")[:2])
    return (major, minor) >= (3, 2)
