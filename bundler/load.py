"""Stage 1: one consistent snapshot of a story (DESIGN §4, §6).

Three queries whatever the story size, inside one REPEATABLE READ READ ONLY
transaction, so a bundle never mixes two states of a story the pipeline is
still writing. Shots stream in chunks: one statement and no round trip per
chunk where libpq supports chunked results (libpq 17+), else through a
server-side cursor that fetches large batches.

Built for stories of 100,000+ shots: shot rows come in binary, timestamps are
converted to UTC on the server (no per-value time zone lookup in Python), and
the strings repeated on every shot (scenelet UUIDs, labels, ``N/A``, equal
timestamps) are shared instead of duplicated, which keeps memory flat.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import IsolationLevel
from psycopg.rows import class_row

from bundler.db.connect import set_local_timeouts
from bundler.db.repository import SCENELET_COLUMNS, STORY_COLUMNS
from bundler.errors import StoryNotFoundError
from bundler.models import SceneletRecord, ShotRecord, StoryRecord, StorySnapshot

# The narration script of a shot (DESIGN §3 `lines`) as a compact [[speaker, text], ...] array, or
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
# storyboard_payload itself and video_file_path are never read by bundling; leaving them out keeps memory flat
SHOT_QUERY = (
    "select scenelet_ref::text, scenelet_id, scenelet_sequence, shot_index, key_frame_image_path, audio_file_path, "
    f"created_at at time zone 'UTC', updated_at at time zone 'UTC', {LINES_SQL} "
    "from shots where story_id = %s order by scenelet_sequence, scenelet_ref, shot_index"
)
SHOT_FETCH_SIZE = 10_000
_CHUNKED_LIBPQ = 170000  # PQsetChunkedRowsMode


def load_snapshot(conn: psycopg.Connection, story_id: str) -> StorySnapshot:
    conn.isolation_level = IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    with conn.transaction():
        set_local_timeouts(conn)
        with conn.cursor(row_factory=class_row(StoryRecord)) as cur:
            story = cur.execute(f"select {STORY_COLUMNS} from stories where id = %s", (story_id,)).fetchone()
        if story is None:
            raise StoryNotFoundError(story_id)
        with conn.cursor(row_factory=class_row(SceneletRecord)) as cur:
            scenelets = cur.execute(
                f"select {SCENELET_COLUMNS} from scenelets where story_id = %s order by created_at, id", (story_id,)
            ).fetchall()
        shots = _load_shots(conn, story.id, scenelets)
    return StorySnapshot(story, tuple(scenelets), shots)


def _load_shots(conn: psycopg.Connection, story_id: str, scenelets: list[SceneletRecord]) -> tuple[ShotRecord, ...]:
    # one object per distinct value: every shot of a scenelet repeats its UUID and label
    shared: dict[Any, Any] = {s.id: s.id for s in scenelets}
    share = shared.setdefault
    stamps: dict[datetime | None, datetime | None] = {None: None}

    def utc(naive: datetime | None) -> datetime | None:
        try:
            return stamps[naive]
        except KeyError:
            aware = stamps[naive] = naive.replace(tzinfo=UTC)  # type: ignore[union-attr]
            return aware

    shots: list[ShotRecord] = []
    append = shots.append
    collecting = gc.isenabled()
    gc.disable()  # hundreds of thousands of new objects, none of them cyclic
    try:
        for ref, label, sequence, index, image, audio, created, updated, lines in _shot_rows(conn, story_id):
            if audio is not None and len(audio) <= 8:
                audio = share(audio, audio)  # "N/A", "" and the like
            append(
                ShotRecord(
                    story_id,
                    share(ref, ref),
                    share(label, label),
                    sequence,
                    index,
                    None,
                    image,
                    audio,
                    None,
                    utc(created),
                    utc(updated),
                    tuple((speaker, line) for speaker, line in lines) if lines else (),
                )
            )
    finally:
        if collecting:
            gc.enable()
    return tuple(shots)


def _shot_rows(conn: psycopg.Connection, story_id: str) -> Iterator[tuple[Any, ...]]:
    if psycopg.pq.version() >= _CHUNKED_LIBPQ and _stream_takes_size():
        with conn.cursor(binary=True) as cur:
            yield from cur.stream(SHOT_QUERY, (story_id,), size=SHOT_FETCH_SIZE)
        return
    with conn.cursor(name="bundler_shots", binary=True) as cur:
        cur.itersize = SHOT_FETCH_SIZE
        cur.execute(SHOT_QUERY, (story_id,))
        while rows := cur.fetchmany(SHOT_FETCH_SIZE):
            yield from rows


def _stream_takes_size() -> bool:
    """psycopg 3.2 added ``Cursor.stream(..., size=)``."""
    major, minor = (int(part) for part in psycopg.__version__.split(".")[:2])
    return (major, minor) >= (3, 2)
