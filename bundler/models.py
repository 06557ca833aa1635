"""Immutable records read from the pipeline's database (DESIGN §1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# One line of a shot's narration script: (speaker, text), as the player captions it.
Line = tuple[str, str]


@dataclass(frozen=True, slots=True)
class StoryRecord:
    id: str
    display_name: str
    initial_prompt: str
    audio_design_document: Any
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SceneletRecord:
    id: str
    story_id: str
    parent_id: str | None
    choice_label_from_parent: str | None
    choice_prompt: str | None
    content: Any
    is_branch_point: bool
    is_terminal_node: bool
    branch_audio_file_path: str | None
    created_at: datetime

    @property
    def description(self) -> str:
        """The scene description; malformed content yields '' (reported by the planner)."""
        if isinstance(self.content, dict):
            value = self.content.get("description")
            if isinstance(value, str):
                return value.strip()
        return ""


@dataclass(frozen=True, slots=True)
class ShotRecord:
    story_id: str
    scenelet_ref: str
    scenelet_id: str
    scenelet_sequence: int
    shot_index: int
    storyboard_payload: Any = None  # None when loaded for bundling, which never reads it
    key_frame_image_path: str | None = None
    audio_file_path: str | None = None
    video_file_path: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # the narration script extracted from storyboard_payload by the database (see load.LINES_SQL)
    lines: tuple[Line, ...] = ()


@dataclass(frozen=True, slots=True)
class NewShot:
    """A shot to persist through ``create_scenelet_shots``."""

    shot_index: int
    storyboard_payload: Any = None  # None when loaded for bundling, which never reads it
    key_frame_image_path: str | None = None
    audio_file_path: str | None = None
    video_file_path: str | None = None
    # defaults to now(); seeding passes a fixed time so a seeded story bundles reproducibly
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StorySnapshot:
    """One consistent read of a story: the input of the planner."""

    story: StoryRecord
    scenelets: tuple[SceneletRecord, ...]
    shots: tuple[ShotRecord, ...]
