"""Stage 1: one consistent snapshot of a story (DESIGN §4, §6).

Three queries whatever the story size, inside one REPEATABLE READ READ ONLY
transaction, so a bundle never mixes two states of a story the pipeline is
still writing. Shots stream through a server-side cursor.
"""

from __future__ import annotations

import psycopg
from psycopg import IsolationLevel
from psycopg.rows import class_row

from bundler.db.repository import SCENELET_COLUMNS, STORY_COLUMNS
from bundler.errors import StoryNotFoundError
from bundler.models import SceneletRecord, ShotRecord, StoryRecord, StorySnapshot

# storyboard_payload is never read by bundling; leaving it out keeps memory flat
SHOT_QUERY = (
    "select story_id::text, scenelet_ref::text, scenelet_id, scenelet_sequence, shot_index, "
    "key_frame_image_path, audio_file_path, created_at, updated_at "
    "from shots where story_id = %s order by scenelet_sequence, scenelet_ref, shot_index"
)
SHOT_FETCH_SIZE = 5000


def load_snapshot(conn: psycopg.Connection, story_id: str) -> StorySnapshot:
    conn.isolation_level = IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    with conn.transaction():
        with conn.cursor(row_factory=class_row(StoryRecord)) as cur:
            story = cur.execute(f"select {STORY_COLUMNS} from stories where id = %s", (story_id,)).fetchone()
        if story is None:
            raise StoryNotFoundError(story_id)
        with conn.cursor(row_factory=class_row(SceneletRecord)) as cur:
            scenelets = cur.execute(
                f"select {SCENELET_COLUMNS} from scenelets where story_id = %s order by created_at, id", (story_id,)
            ).fetchall()
        shots: list[ShotRecord] = []
        with conn.cursor(name="bundler_shots") as cur:
            cur.itersize = SHOT_FETCH_SIZE
            cur.execute(SHOT_QUERY, (story_id,))
            for row in cur:
                shots.append(
                    ShotRecord(
                        story_id=row[0],
                        scenelet_ref=row[1],
                        scenelet_id=row[2],
                        scenelet_sequence=row[3],
                        shot_index=row[4],
                        key_frame_image_path=row[5],
                        audio_file_path=row[6],
                        created_at=row[7],
                        updated_at=row[8],
                    )
                )
    return StorySnapshot(story, tuple(scenelets), tuple(shots))
