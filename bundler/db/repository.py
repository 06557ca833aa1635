"""The pipeline's repository API over psycopg, returning typed records.

``create_scenelet_shots``, ``get_shots_by_story`` and ``get_shots_by_scenelet_ref``
mirror the pipeline's shots repository (docs/design.md §1); the story and scenelet
helpers serve seeding and listing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from bundler.db.connect import set_local_timeouts
from bundler.errors import InputError
from bundler.records import NewShot, SceneletRecord, ShotRecord, StoryRecord


class RepositoryError(InputError):
    pass


class SceneletShotsAlreadyExistError(RepositoryError):
    pass


STORY_COLUMNS = "id::text, display_name, initial_prompt, audio_design_document, created_at, updated_at"
SCENELET_COLUMNS = (
    "id::text, story_id::text, parent_id::text, choice_label_from_parent, choice_prompt, content, "
    "is_branch_point, is_terminal_node, branch_audio_file_path, created_at"
)
SHOT_COLUMNS = (
    "story_id::text, scenelet_ref::text, scenelet_id as scenelet_label, scenelet_sequence, shot_index, "
    "storyboard_payload, key_frame_image_path, audio_file_path, video_file_path, created_at, updated_at"
)


def require_uuid(value: str, what: str) -> str:
    """Trimmed canonical UUID text, or a ``RepositoryError`` naming ``what``."""
    text = (value or "").strip()
    if not text:
        raise RepositoryError(f"{what} must be provided.")
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise RepositoryError(f"{what} {text!r} is not a UUID.") from None


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


class Repository:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    # stories and scenelets -------------------------------------------------
    def create_story(
        self,
        display_name: str,
        initial_prompt: str,
        *,
        story_id: str | None = None,
        audio_design_document: Any = None,
        created_at: datetime | None = None,
    ) -> str:
        if not display_name or not display_name.strip():
            raise RepositoryError("Story display name must be a non-empty string.")
        row = self.conn.execute(
            "insert into stories (id, display_name, initial_prompt, audio_design_document, "
            "created_at, updated_at) values (coalesce(%s::uuid, gen_random_uuid()), %s, %s, %s, "
            "coalesce(%s, now()), coalesce(%s, now())) returning id::text",
            (
                require_uuid(story_id, "Story id") if story_id else None,
                display_name,
                initial_prompt,
                Jsonb(audio_design_document) if audio_design_document is not None else None,
                created_at,
                created_at,
            ),
        ).fetchone()
        assert row is not None
        return str(row[0])

    def get_story(self, story_id: str) -> StoryRecord | None:
        story_id = require_uuid(story_id, "Story id")
        with self.conn.cursor(row_factory=class_row(StoryRecord)) as cur:
            return cur.execute(f"select {STORY_COLUMNS} from stories where id = %s", (story_id,)).fetchone()

    def create_scenelet(
        self,
        story_id: str,
        content: Any,
        *,
        scenelet_id: str | None = None,
        parent_id: str | None = None,
        choice_label_from_parent: str | None = None,
        choice_prompt: str | None = None,
        is_branch_point: bool = False,
        is_terminal_node: bool = False,
        branch_audio_file_path: str | None = None,
        created_at: datetime | None = None,
    ) -> str:
        if content is None:
            raise RepositoryError("Scenelet content must be provided.")
        row = self.conn.execute(
            "insert into scenelets (id, story_id, parent_id, choice_label_from_parent, choice_prompt, "
            "content, is_branch_point, is_terminal_node, branch_audio_file_path, created_at) values "
            "(coalesce(%s::uuid, gen_random_uuid()), %s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now())) "
            "returning id::text",
            (
                require_uuid(scenelet_id, "Scenelet id") if scenelet_id else None,
                require_uuid(story_id, "Story id"),
                require_uuid(parent_id, "Parent scenelet id") if parent_id else None,
                choice_label_from_parent,
                choice_prompt,
                Jsonb(content),
                is_branch_point,
                is_terminal_node,
                branch_audio_file_path,
                created_at,
            ),
        ).fetchone()
        assert row is not None
        return str(row[0])

    def list_scenelets(self, story_id: str) -> list[SceneletRecord]:
        """Scenelets of a story ordered by ``created_at`` then id (storage order, not tree order)."""
        story_id = require_uuid(story_id, "Story id")
        with self.conn.cursor(row_factory=class_row(SceneletRecord)) as cur:
            return cur.execute(
                f"select {SCENELET_COLUMNS} from scenelets where story_id = %s order by created_at, id",
                (story_id,),
            ).fetchall()

    # shots -------------------------------------------------------------------
    def create_scenelet_shots(
        self,
        story_id: str,
        scenelet_ref: str,
        scenelet_id: str,
        scenelet_sequence: int,
        shots: Sequence[NewShot],
    ) -> None:
        """Insert all shots of one scenelet, or none (refuses if the scenelet already has shots).

        The pipeline's API, named after the columns: ``scenelet_ref`` is the scenelet's UUID,
        ``scenelet_id`` the label stored on its shots (``scenelet-N``)."""
        story_id = require_uuid(story_id, "Story id")
        scenelet_ref = require_uuid(scenelet_ref, "Scenelet reference")
        if not scenelet_id or not scenelet_id.strip():
            raise RepositoryError("Scenelet id must be provided to persist shots.")
        if not _positive_int(scenelet_sequence):
            raise RepositoryError("Scenelet sequence must be a positive integer.")
        if not shots:
            raise RepositoryError("At least one shot must be provided for persistence.")
        for position, shot in enumerate(shots, start=1):
            if not _positive_int(shot.shot_index):
                raise RepositoryError(f"Shot {position}: shot index must be a positive integer.")
            if shot.storyboard_payload is None:
                raise RepositoryError(f"Shot {position} storyboard payload must be provided.")
        indexes = [shot.shot_index for shot in shots]
        if len(set(indexes)) != len(indexes):
            raise RepositoryError(f"Duplicate shot index in scenelet {scenelet_id.strip()}.")
        with self.conn.transaction():
            exists = self.conn.execute(
                "select 1 from shots where story_id = %s and scenelet_ref = %s limit 1",
                (story_id, scenelet_ref),
            ).fetchone()
            if exists:
                raise SceneletShotsAlreadyExistError(
                    f"Shots already exist for story {story_id} scenelet {scenelet_id.strip()}."
                )
            with self.conn.cursor() as cur:
                cur.executemany(
                    "insert into shots (story_id, scenelet_ref, scenelet_id, scenelet_sequence, "
                    "shot_index, storyboard_payload, key_frame_image_path, audio_file_path, "
                    "video_file_path, created_at, updated_at) "
                    "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()), coalesce(%s, now()))",
                    [
                        (
                            story_id,
                            scenelet_ref,
                            scenelet_id.strip(),
                            scenelet_sequence,
                            shot.shot_index,
                            Jsonb(shot.storyboard_payload),
                            shot.key_frame_image_path,
                            shot.audio_file_path,
                            shot.video_file_path,
                            shot.created_at,
                            shot.created_at,
                        )
                        for shot in shots
                    ],
                )

    def get_shots_by_story(self, story_id: str) -> dict[str, list[ShotRecord]]:
        """Shots keyed by ``scenelet_ref`` (the UUID), ordered by sequence, ref, shot index."""
        story_id = require_uuid(story_id, "Story id")
        grouped: dict[str, list[ShotRecord]] = {}
        with self.conn.cursor(row_factory=class_row(ShotRecord)) as cur:
            cur.execute(
                f"select {SHOT_COLUMNS} from shots where story_id = %s "
                "order by scenelet_sequence, scenelet_ref::text, shot_index",
                (story_id,),
            )
            for shot in cur:
                grouped.setdefault(shot.scenelet_ref, []).append(shot)
        return grouped

    def get_shots_by_scenelet_ref(self, scenelet_ref: str) -> list[ShotRecord]:
        scenelet_ref = require_uuid(scenelet_ref, "Scenelet reference")
        with self.conn.cursor(row_factory=class_row(ShotRecord)) as cur:
            return cur.execute(
                f"select {SHOT_COLUMNS} from shots where scenelet_ref = %s order by shot_index",
                (scenelet_ref,),
            ).fetchall()


def init_schema(conn: psycopg.Connection) -> None:
    """Create the pipeline schema (idempotent)."""
    from importlib.resources import files

    sql = files("bundler.db").joinpath("schema.sql").read_text(encoding="utf-8")
    with conn.transaction():
        set_local_timeouts(conn)
        # concurrent `db init` runs would race on "create ... if not exists"; serialise them
        conn.execute("select pg_advisory_xact_lock(hashtext('bundler db init'))")
        if conn.info.server_version < 130000:
            conn.execute("create extension if not exists pgcrypto")
        conn.execute(sql)
