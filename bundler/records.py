"""Immutable records read from the pipeline's database (docs/design.md §1)."""

from __future__ import annotations

from collections.abc import Iterable
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
    scenelet_label: str  # the stored label (the shots.scenelet_id column)
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
class ShotGroup:
    """The shots of one scenelet that store the same label and sequence (usually all of its shots).

    Bundling reads shots a scenelet at a time: the label, sequence and newest
    timestamp once per group instead of once per shot. ``shots`` may leave out
    shots that store no media path at all (NULL, blank or ``N/A`` for both key
    frame and narration): they never reach a bundle, and ``shot_count`` still
    counts them. The database load leaves them out; see ``bundler.pipeline.load``.
    """

    scenelet_ref: str
    scenelet_label: str  # the stored label (the shots.scenelet_id column)
    scenelet_sequence: int
    shot_count: int
    newest: datetime | None  # newest created_at / updated_at of the group's shots
    shots: tuple[ShotRecord, ...]  # by shot_index


@dataclass(frozen=True, slots=True)
class StorySnapshot:
    """One consistent read of a story: the input of the planner."""

    story: StoryRecord
    scenelets: tuple[SceneletRecord, ...]
    shot_groups: tuple[ShotGroup, ...]  # by sequence, scenelet_ref, first shot index

    @classmethod
    def of_shots(
        cls, story: StoryRecord, scenelets: Iterable[SceneletRecord], shots: Iterable[ShotRecord]
    ) -> StorySnapshot:
        """A snapshot from individual shot records (tests, tools): grouped as the load groups them."""
        groups: dict[tuple[str, str, int], list[ShotRecord]] = {}
        for shot in shots:
            groups.setdefault((shot.scenelet_ref, shot.scenelet_label, shot.scenelet_sequence), []).append(shot)
        built = []
        for (ref, label, sequence), members in groups.items():
            members.sort(key=lambda s: s.shot_index)
            stamps = [t for s in members for t in (s.created_at, s.updated_at) if t is not None]
            built.append(ShotGroup(ref, label, sequence, len(members), max(stamps, default=None), tuple(members)))
        built.sort(key=lambda g: (g.scenelet_sequence, g.scenelet_ref, g.shots[0].shot_index))
        return cls(story, tuple(scenelets), tuple(built))
