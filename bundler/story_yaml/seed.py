"""``bundler db seed``: load a story YAML file (docs/story-yaml.md) into the database.

Order of work, so that nothing is ever half-written:
1. parse and validate the whole file, the tree and every referenced media file;
2. in ONE transaction: insert the story, its scenelets and shots through the
   Repository API, then stage and move the media into the assets root;
3. commit. Any failure rolls the transaction back and removes the files this
   run added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from bundler.db.connect import set_local_timeouts
from bundler.db.repository import Repository
from bundler.errors import InputError
from bundler.pipeline.plan.tree import build_tree
from bundler.records import NewShot, SceneletRecord
from bundler.story_yaml.format import SceneletDoc, StoryDoc, StoryFileError, role_of
from bundler.story_yaml.parse import derive_created_at, load_story_file
from bundler.story_yaml.seed_media import Installed, MediaCopy, install_media, plan_media


class StoryExistsError(InputError):
    def __init__(self, story_id: str) -> None:
        super().__init__(f"Story {story_id} already exists; nothing was changed (--if-missing skips it).")
        self.story_id = story_id


@dataclass(frozen=True)
class SeedResult:
    story_id: str
    title: str
    scenelets: int  # rows written (0 when skipped)
    shots: int
    media_files: int  # files placed in the assets root
    skipped: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "storyId": self.story_id,
            "title": self.title,
            "scenelets": self.scenelets,
            "shots": self.shots,
            "mediaFiles": self.media_files,
            "skipped": self.skipped,
        }

    def summary(self) -> str:
        if self.skipped:
            return f"story {self.story_id} ({self.title}) already exists; skipped"
        return (
            f"seeded story {self.story_id} ({self.title}): {self.scenelets} scenelets, "
            f"{self.shots} shots, {self.media_files} media files"
        )


@dataclass(frozen=True)
class PlannedScenelet:
    doc: SceneletDoc
    created_at: datetime
    label: str  # recomputed scenelet-N
    sequence: int


def seed_file(
    conn: psycopg.Connection, path: Path, assets_root: Path, *, if_missing: bool = False, replace: bool = False
) -> SeedResult:
    doc = load_story_file(path)
    planned = plan_scenelets(doc, str(path))
    copies = plan_media(doc, path)
    root = assets_root.resolve()
    try:
        return _write(conn, doc, planned, copies, root, if_missing, replace)
    except psycopg.errors.UniqueViolation as exc:
        # a concurrent seed of the same story won the race after our existence check
        if exc.diag.constraint_name == "stories_pkey":
            if if_missing:
                return SeedResult(doc.id, doc.title, 0, 0, 0, skipped=True)
            raise StoryExistsError(doc.id) from None
        raise InputError(f"{path}: the database refused the story: {exc.diag.message_primary}") from None


def _write(
    conn: psycopg.Connection,
    doc: StoryDoc,
    planned: Sequence[PlannedScenelet],
    copies: Sequence[MediaCopy],
    root: Path,
    if_missing: bool,
    replace: bool = False,
) -> SeedResult:
    repo = Repository(conn)
    installed = Installed()
    try:
        with conn.transaction():
            set_local_timeouts(conn)
            if repo.get_story(doc.id) is not None:
                if replace:  # same transaction: on any failure the old story is still there
                    conn.execute("delete from stories where id = %s", (doc.id,))
                elif if_missing:
                    return SeedResult(doc.id, doc.title, 0, 0, 0, skipped=True)
                else:
                    raise StoryExistsError(doc.id)
            _refuse_foreign_scenelets(conn, doc)
            shots = _write_rows(repo, doc, planned)
            # media last, still inside the transaction: a copy failure rolls the rows back
            install_media(copies, root, installed, replace=replace)
    except BaseException:
        installed.undo()
        raise
    installed.commit()
    return SeedResult(doc.id, doc.title, len(planned), shots, len(copies))


def _write_rows(repo: Repository, doc: StoryDoc, planned: Sequence[PlannedScenelet]) -> int:
    """The story, its scenelets and their shots through the pipeline's Repository API; the shot count."""
    repo.create_story(
        doc.title,
        doc.initial_prompt,
        story_id=doc.id,
        audio_design_document=doc.audio_design_document,
        created_at=doc.created_at,
    )
    shots = 0
    for item in planned:
        scenelet = item.doc
        repo.create_scenelet(
            doc.id,
            scenelet.content,
            scenelet_id=scenelet.id,
            parent_id=scenelet.parent,
            choice_label_from_parent=scenelet.choice_label,
            choice_prompt=scenelet.choice_prompt,
            is_branch_point=scenelet.branch_point,
            is_terminal_node=scenelet.terminal,
            branch_audio_file_path=scenelet.branch_audio,
            created_at=item.created_at,
        )
        if scenelet.shots:
            # one label per scenelet: plan_scenelets checked the overrides agree across its shots
            first = scenelet.shots[0]
            repo.create_scenelet_shots(
                doc.id,
                scenelet.id,
                first.stored_label or item.label,
                first.stored_sequence or item.sequence,
                [
                    NewShot(s.index, s.storyboard, s.key_frame, s.audio, s.video, item.created_at)
                    for s in scenelet.shots
                ],
            )
            shots += len(scenelet.shots)
    return shots


def _refuse_foreign_scenelets(conn: psycopg.Connection, doc: StoryDoc) -> None:
    """Scenelet ids are global primary keys; name the clash instead of a driver error."""
    ids = [s.id for s in doc.scenelets]
    row = conn.execute(
        "select id::text, story_id::text from scenelets where id = any(%s::uuid[]) order by id limit 1", (ids,)
    ).fetchone()
    if row:
        raise InputError(f"Scenelet {row[0]} already exists in story {row[1]}; scenelet ids must be unique.")


# --------------------------------------------------------------------------- tree


def plan_scenelets(doc: StoryDoc, source: str) -> list[PlannedScenelet]:
    """Check the tree the file describes and compute labels, sequences and timestamps."""

    def fail(scenelet: SceneletDoc | None, field: str, problem: str, line: int | None = None) -> StoryFileError:
        if scenelet is None:
            return StoryFileError(f"{source}: {field}: {problem}")
        line = line or scenelet.key_lines.get(field, scenelet.line)
        return StoryFileError(f"{source}:{line}: {scenelet.where}.{field}: {problem}")

    by_id: dict[str, SceneletDoc] = {}
    for scenelet in doc.scenelets:
        if scenelet.id in by_id:
            raise fail(scenelet, "id", f"{scenelet.id} is already used by {by_id[scenelet.id].where}")
        by_id[scenelet.id] = scenelet
    roots = [s for s in doc.scenelets if s.parent is None]
    for scenelet in doc.scenelets:
        if scenelet.parent is not None and scenelet.parent not in by_id:
            raise fail(scenelet, "parent", f"{scenelet.parent} is not a scenelet in this file")
        if scenelet.parent == scenelet.id:
            raise fail(scenelet, "parent", "a scenelet cannot be its own parent")
    if not roots:
        raise fail(None, "scenelets", "no scenelet has parent: null; a story needs exactly one root")
    if len(roots) > 1:
        raise fail(roots[1], "parent", f"null makes a second root ({roots[0].where} is the root); only one is allowed")

    timed = [s for s in doc.scenelets if s.created_at is not None]
    if timed and len(timed) != len(doc.scenelets):
        missing = next(s for s in doc.scenelets if s.created_at is None)
        raise fail(missing, "created_at", "missing; give every scenelet a created_at, or none")
    stamps = {s.id: s.created_at for s in timed} if timed else derive_created_at(doc)

    records = [_record(doc, s, stamps.get(s.id) or doc.created_at) for s in doc.scenelets]
    tree = build_tree(records)
    errors = [p for p in tree.problems if p.severity == "error"]
    if errors:  # what is left after the checks above: parent cycles
        culprit = by_id.get(errors[0].scenelet_ref or "")
        raise fail(culprit, "parent", errors[0].message) if culprit else fail(None, "scenelets", errors[0].message)

    listed = [s.id for s in doc.scenelets]
    if list(tree.order) != listed:
        at = next(i for i, (a, b) in enumerate(zip(tree.order, listed, strict=True)) if a != b)
        moved = by_id[tree.order[at]]
        hint = "siblings are ordered newest created_at first" if timed else "each subtree must be contiguous"
        raise fail(moved, "id", f"listed out of pre-order: the tree puts it at scenelets[{at}] ({hint})")

    planned: list[PlannedScenelet] = []
    for position, scenelet in enumerate(doc.scenelets, start=1):
        label = f"scenelet-{position}"
        if scenelet.label is not None and scenelet.label != label:
            raise fail(scenelet, "label", f"{scenelet.label!r} does not match its pre-order position ({label})")
        parent = by_id.get(scenelet.parent or "")
        role = role_of(scenelet.parent, scenelet.terminal, parent is not None and parent.branch_point)
        if scenelet.role is not None and scenelet.role != role:
            raise fail(scenelet, "role", f"{scenelet.role!r} does not match the tree ({role})")
        planned.append(PlannedScenelet(scenelet, stamps.get(scenelet.id) or doc.created_at, label, position))
    _check_shots(planned, fail)
    return planned


def _record(doc: StoryDoc, s: SceneletDoc, created_at: datetime) -> SceneletRecord:
    return SceneletRecord(
        id=s.id,
        story_id=doc.id,
        parent_id=s.parent,
        choice_label_from_parent=s.choice_label,
        choice_prompt=s.choice_prompt,
        content=s.content,
        is_branch_point=s.branch_point,
        is_terminal_node=s.terminal,
        branch_audio_file_path=s.branch_audio,
        created_at=created_at,
    )


def _check_shots(planned: Sequence[PlannedScenelet], fail: Any) -> None:
    """What the repository and the unique (story, label, index) constraint would refuse, named by field."""
    taken: dict[tuple[str, int], str] = {}
    for item in planned:
        shots = item.doc.shots
        indexes = [shot.index for shot in shots]
        for i, shot in enumerate(shots):
            if indexes.index(shot.index) != i:
                raise fail(item.doc, f"shots[{i}].index", f"{shot.index} is used twice in this scenelet", shot.line)
            # the repository writes one label and sequence per scenelet
            if (shot.stored_label, shot.stored_sequence) != (shots[0].stored_label, shots[0].stored_sequence):
                problem = "stored_label/stored_sequence must be the same on every shot of a scenelet"
                raise fail(item.doc, f"shots[{i}]", problem, shot.line)
            key = (shot.stored_label or item.label, shot.index)
            if key in taken:
                problem = f"label {key[0]} shot {key[1]} is also stored by {taken[key]}"
                raise fail(item.doc, f"shots[{i}]", problem, shot.line)
            taken[key] = item.doc.where
