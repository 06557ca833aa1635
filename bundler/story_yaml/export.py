"""``bundler export``: one story as story YAML (docs/story-yaml.md), deterministically.

Scenelets come in the recomputed pre-order, so the document reads like the
script. Scenelets the root does not reach (broken trees) follow with
``label: null`` so nothing stored is hidden; such a file does not seed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import IsolationLevel

from bundler.db.connect import set_local_timeouts
from bundler.db.jsonb import JsonTooDeepError, located
from bundler.db.repository import Repository, require_uuid
from bundler.errors import InputError, StoryNotFoundError
from bundler.pipeline.plan.tree import build_tree
from bundler.records import SceneletRecord, ShotRecord, StoryRecord
from bundler.story_yaml.format import (
    CONTENT_FIELDS,
    FORMAT,
    dialogue_entry,
    dump_document,
    format_timestamp,
    role_of,
    sorted_json,
)


def export_story(conn: psycopg.Connection, story_id: str) -> str:
    try:
        return _export_story(conn, story_id)
    except RecursionError:  # JSON that parsed but nests too deeply to copy and write as YAML
        raise JsonTooDeepError(
            f"Story {story_id} cannot be exported: a JSON value (content, audio_design_document or "
            "storyboard_payload) is nested too deeply to write as YAML."
        ) from None


def _export_story(conn: psycopg.Connection, story_id: str) -> str:
    story_id = require_uuid(story_id, "Story id")
    repo = Repository(conn)
    with _snapshot(conn):
        with located(conn, story_id, "audio_design_document"):
            story = repo.get_story(story_id)
        if story is None:
            raise StoryNotFoundError(story_id)
        with located(conn, story_id, "content"):
            scenelets = repo.list_scenelets(story_id)
        with located(conn, story_id, "storyboard_payload"):
            shots = repo.get_shots_by_story(story_id)
    return dump_document(story_document(story, scenelets, shots))


@contextmanager
def _snapshot(conn: psycopg.Connection) -> Iterator[None]:
    """One REPEATABLE READ READ ONLY transaction, so the three reads see one state of the story.

    The connection's settings are restored afterwards: callers may write with it next.
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        with conn.transaction():  # settings cannot change mid-transaction; keep the caller's
            yield
        return
    saved = (conn.isolation_level, conn.read_only)
    conn.isolation_level, conn.read_only = IsolationLevel.REPEATABLE_READ, True
    try:
        with conn.transaction():
            set_local_timeouts(conn)
            yield
    finally:
        conn.isolation_level, conn.read_only = saved


def story_document(
    story: StoryRecord, scenelets: Sequence[SceneletRecord], shots: dict[str, list[ShotRecord]]
) -> dict[str, Any]:
    tree = build_tree(scenelets)
    by_id = {s.id: s for s in scenelets}
    reached = set(tree.order)
    # unreachable scenelets keep storage order (created_at, id), as list_scenelets returns them
    ordered = [by_id[i] for i in tree.order] + [s for s in scenelets if s.id not in reached]
    positions = {scenelet_ref: n for n, scenelet_ref in enumerate(tree.order, start=1)}
    return {
        "format": FORMAT,
        "story": {
            "id": story.id,
            "title": story.display_name,
            "initial_prompt": story.initial_prompt,
            "created_at": format_timestamp(story.created_at),
            "audio_design_document": sorted_json(story.audio_design_document),
        },
        "scenelets": [
            _scenelet(s, tree.labels.get(s.id), positions.get(s.id), by_id, shots.get(s.id, [])) for s in ordered
        ],
    }


def _scenelet(
    s: SceneletRecord,
    label: str | None,
    sequence: int | None,
    by_id: dict[str, SceneletRecord],
    shots: list[ShotRecord],
) -> dict[str, Any]:
    """``label``/``sequence``: recomputed ``scenelet-N`` and N (None when the root does not reach ``s``)."""
    if not isinstance(s.content, dict):
        raise InputError(f"Scenelet {s.id} content is not a JSON object; the story cannot be exported.")
    parent = by_id.get(s.parent_id) if s.parent_id else None
    item: dict[str, Any] = {
        "label": label,
        "id": s.id,
        "parent": s.parent_id,
        "role": role_of(s.parent_id, s.is_terminal_node, parent is not None and parent.is_branch_point),
        "branch_point": s.is_branch_point,
        "terminal": s.is_terminal_node,
        "choice_label": s.choice_label_from_parent,
        "choice_prompt": s.choice_prompt,
        "created_at": format_timestamp(s.created_at),
    }
    # content keys are written only when stored, so a missing key stays missing after a round trip
    content = s.content
    if "description" in content:
        item["description"] = sorted_json(content["description"])
    if "dialogue" in content:
        dialogue = content["dialogue"]
        item["dialogue"] = [dialogue_entry(e) for e in dialogue] if isinstance(dialogue, list) else dialogue
    if "shot_suggestions" in content:
        item["shot_suggestions"] = sorted_json(content["shot_suggestions"])
    extra = {key: value for key, value in content.items() if key not in CONTENT_FIELDS}
    if extra:
        item["content_extra"] = sorted_json(extra)
    item["branch_audio"] = s.branch_audio_file_path
    ordered = sorted(shots, key=lambda shot: shot.shot_index)
    item["shots"] = [_shot(shot, label, sequence) for shot in ordered]
    return item


def _shot(shot: ShotRecord, label: str | None, sequence: int | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "index": shot.shot_index,
        "key_frame": shot.key_frame_image_path,
        "audio": shot.audio_file_path,
    }
    if shot.video_file_path is not None:
        item["video"] = shot.video_file_path
    # stored labels are written only when they drift from the recomputed ones
    if shot.scenelet_label != label:
        item["stored_label"] = shot.scenelet_label
    if shot.scenelet_sequence != sequence:
        item["stored_sequence"] = shot.scenelet_sequence
    item["storyboard"] = sorted_json(shot.storyboard_payload)
    return item
