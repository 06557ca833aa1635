"""Build test stories once and use them three ways: as an in-memory snapshot
(planner tests), as database rows (integration tests) and as media files."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bundler.db.repository import Repository
from bundler.pipeline.plan.tree import build_tree
from bundler.records import NewShot, SceneletRecord, ShotRecord, StoryRecord, StorySnapshot
from tests.media_files import write_media

BASE_TIME = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DEFAULT = object()  # "use the conventional pipeline path"


@dataclass
class ShotSpec:
    index: int
    image: Any = DEFAULT  # DEFAULT, None, "N/A" or a stored path
    audio: Any = DEFAULT
    write_image: bool = True  # create the file under the assets root
    write_audio: bool = True
    stored_label: str | None = None  # override the recomputed label (label drift)


@dataclass
class SceneletSpec:
    id: str
    parent: str | None
    description: str
    choice_label: str | None
    choice_prompt: str | None
    branch_point: bool
    terminal: bool
    created_at: datetime
    branch_audio: str | None = None
    shots: list[ShotSpec] = field(default_factory=list)


class StoryBuilder:
    def __init__(self, title: str = "Test Story", story_id: str | None = None) -> None:
        self.story_id = story_id or str(uuid.uuid4())
        self.title = title
        self.scenelets: list[SceneletSpec] = []
        self.audio_design: Any = None
        self.extra_files: list[tuple[str, str]] = []  # (relative path, kind)

    def scenelet(
        self,
        parent: str | None = None,
        *,
        shots: int | list[ShotSpec] = 1,
        choice_label: str | None = None,
        prompt: str | None = None,
        terminal: bool = False,
        description: str | None = None,
        branch_audio: Any = DEFAULT,
        scenelet_id: str | None = None,
    ) -> str:
        """Add a scenelet; siblings come out in the order they were added (script order)."""
        scenelet_id = scenelet_id or str(uuid.uuid4())
        # earlier siblings get newer timestamps: the pipeline inserts branch children last-first
        created = BASE_TIME - timedelta(seconds=len(self.scenelets))
        specs = [ShotSpec(i) for i in range(1, shots + 1)] if isinstance(shots, int) else shots
        if branch_audio is DEFAULT:
            branch_audio = f"generated/{self.story_id}/branches/{scenelet_id}/branch_audio.wav" if prompt else None
        self.scenelets.append(
            SceneletSpec(
                scenelet_id,
                parent,
                description if description is not None else f"Scene {len(self.scenelets) + 1}",
                choice_label,
                prompt,
                prompt is not None,
                terminal,
                created,
                branch_audio,
                specs,
            )
        )
        return scenelet_id

    def music(self, *cues: tuple[str, list[str]], write: bool = True) -> None:
        self.audio_design = {
            "audio_design_document": {
                "music_and_ambience_cues": [
                    {"cue_name": name, "associated_scenelet_ids": labels} for name, labels in cues
                ]
            }
        }
        if write:
            for name, _ in cues:
                self.extra_files.append((f"{self.story_id}/music/{name}.m4a", "music"))

    # -- derived views ------------------------------------------------------------
    def records(self) -> list[SceneletRecord]:
        return [
            SceneletRecord(
                s.id,
                self.story_id,
                s.parent,
                s.choice_label,
                s.choice_prompt,
                {"description": s.description, "dialogue": [], "shot_suggestions": []},
                s.branch_point,
                s.terminal,
                s.branch_audio,
                s.created_at,
            )
            for s in self.scenelets
        ]

    def labels(self) -> dict[str, str]:
        return dict(build_tree(self.records()).labels)

    def image_path(self, scenelet_id: str, shot: ShotSpec) -> str | None:
        if shot.image is DEFAULT:
            return f"{self.story_id}/shots/{scenelet_id}/shot-{shot.index}_key_frame.png"
        return shot.image  # type: ignore[no-any-return]

    def audio_path(self, scenelet_id: str, shot: ShotSpec) -> str | None:
        if shot.audio is DEFAULT:
            return f"generated/{self.story_id}/shots/{scenelet_id}/{shot.index}_audio.wav"
        return shot.audio  # type: ignore[no-any-return]

    def shot_records(self) -> list[ShotRecord]:
        labels = self.labels()
        shots = []
        for s in self.scenelets:
            label = labels.get(s.id, "scenelet-999")
            for shot in s.shots:
                stored = shot.stored_label or label
                shots.append(
                    ShotRecord(
                        self.story_id,
                        s.id,
                        stored,
                        int(stored.rsplit("-", 1)[1]),
                        shot.index,
                        {"framingAndAngle": "wide"},
                        self.image_path(s.id, shot),
                        self.audio_path(s.id, shot),
                        None,
                        BASE_TIME,
                        BASE_TIME,
                    )
                )
        return shots

    def snapshot(self) -> StorySnapshot:
        story = StoryRecord(self.story_id, self.title, "prompt", self.audio_design, BASE_TIME, BASE_TIME)
        return StorySnapshot.of_shots(story, self.records(), self.shot_records())

    # -- side effects ---------------------------------------------------------------
    def write_media(self, assets_root: Path) -> None:
        from bundler.media.paths import is_skipped, normalize_stored_path

        for s in self.scenelets:
            for shot in s.shots:
                for stored, kind, wanted in (
                    (self.image_path(s.id, shot), "image", shot.write_image),
                    (self.audio_path(s.id, shot), "audio", shot.write_audio),
                ):
                    if wanted and not is_skipped(stored) and ".." not in str(stored):
                        write_media(assets_root / normalize_stored_path(str(stored)), kind)
            if s.branch_audio and not is_skipped(s.branch_audio):
                write_media(assets_root / normalize_stored_path(s.branch_audio), "audio")
        for relative, kind in self.extra_files:
            write_media(assets_root / relative, kind)

    def insert(self, conn: psycopg.Connection) -> str:
        repo = Repository(conn)
        with conn.transaction():
            repo.create_story(
                self.title,
                "prompt",
                story_id=self.story_id,
                audio_design_document=self.audio_design,
                created_at=BASE_TIME,
            )
            # parents first: insert in tree order where possible, then the rest (cycles are patched after)
            pending = list(self.records())
            inserted: set[str] = set()
            deferred: list[SceneletRecord] = []
            while pending:
                progress = False
                for record in list(pending):
                    if record.parent_id is None or record.parent_id in inserted:
                        self._insert_scenelet(repo, record, record.parent_id)
                        inserted.add(record.id)
                        pending.remove(record)
                        progress = True
                if not progress:  # a cycle or a foreign parent: insert without parent, then patch
                    record = pending.pop(0)
                    self._insert_scenelet(repo, record, None)
                    inserted.add(record.id)
                    deferred.append(record)
            for record in deferred:
                conn.execute("update scenelets set parent_id = %s where id = %s", (record.parent_id, record.id))
            by_ref: dict[str, list[ShotRecord]] = {}
            for shot in self.shot_records():
                by_ref.setdefault(shot.scenelet_ref, []).append(shot)
            for ref, shots in by_ref.items():
                for label in sorted({s.scenelet_label for s in shots}):
                    group = [s for s in shots if s.scenelet_label == label]
                    conn.execute(
                        "insert into shots (story_id, scenelet_ref, scenelet_id, scenelet_sequence, shot_index, "
                        "storyboard_payload, key_frame_image_path, audio_file_path, created_at, updated_at) "
                        "select %s, %s, %s, %s, unnest(%s::int[]), '{}'::jsonb, unnest(%s::text[]), "
                        "unnest(%s::text[]), %s, %s",
                        (
                            self.story_id,
                            ref,
                            label,
                            group[0].scenelet_sequence,
                            [s.shot_index for s in group],
                            [s.key_frame_image_path for s in group],
                            [s.audio_file_path for s in group],
                            BASE_TIME,
                            BASE_TIME,
                        ),
                    )
        return self.story_id

    @staticmethod
    def _insert_scenelet(repo: Repository, record: SceneletRecord, parent: str | None) -> None:
        repo.create_scenelet(
            record.story_id,
            record.content,
            scenelet_id=record.id,
            parent_id=parent,
            choice_label_from_parent=record.choice_label_from_parent,
            choice_prompt=record.choice_prompt,
            is_branch_point=record.is_branch_point,
            is_terminal_node=record.is_terminal_node,
            branch_audio_file_path=record.branch_audio_file_path,
            created_at=record.created_at,
        )


def without_shots(builder: StoryBuilder, scenelet_id: str) -> None:
    for s in builder.scenelets:
        if s.id == scenelet_id:
            s.shots = []


__all__ = ["DEFAULT", "NewShot", "ShotSpec", "StoryBuilder", "replace", "without_shots"]
