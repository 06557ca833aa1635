"""Planning, step one (pure): the snapshot read into a tree, with the media it needs checked.

``analyze`` builds the tree (labels, order, problems of the tree itself) and lists every stored
media path to check (``Analysis.requests``); the caller checks them, then ``planner.plan``
decides the bundle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from bundler.media.paths import UnsafePath, is_skipped, normalize_stored_path
from bundler.media.structure import MediaKind
from bundler.pipeline.plan.music import RawCue, parse_cues
from bundler.pipeline.plan.shot_rows import duplicate_shot_indexes
from bundler.pipeline.plan.tree import StoryTree, build_tree
from bundler.pipeline.plan.types import MediaRequest
from bundler.problems import Problem, error
from bundler.records import ShotRecord, StorySnapshot


@dataclass(frozen=True)
class Analysis:
    snapshot: StorySnapshot
    tree: StoryTree
    shots_by_ref: Mapping[str, tuple[ShotRecord, ...]]  # scenelet_ref -> shots by shot_index
    stored_labels: Mapping[str, tuple[tuple[str, int], ...]]  # scenelet_ref -> (label, sequence) pairs of its shots
    cues: tuple[RawCue, ...]
    paths: Mapping[str | None, StoredPath]  # every stored path the plan may use, judged once
    requests: frozenset[MediaRequest]
    problems: tuple[Problem, ...]  # found without looking at the disk


StoredPath = str | UnsafePath | None  # the path relative to the assets root, why it is unsafe, or None: no media


def judge_stored_path(stored: str | None) -> StoredPath:
    """What a stored media path means: no media (None), a path under the assets root, or unsafe."""
    if is_skipped(stored):
        return None
    assert stored is not None
    try:
        return normalize_stored_path(stored)
    except UnsafePath as exc:
        return exc


def analyze(snapshot: StorySnapshot) -> Analysis:
    tree = build_tree(snapshot.scenelets)
    by_id = {s.id: s for s in snapshot.scenelets}
    problems = list(tree.problems)
    grouped: dict[str, list[ShotRecord]] = {}
    labels: dict[str, set[tuple[str, int]]] = {}
    foreign: dict[str, int] = {}
    for group in snapshot.shot_groups:
        ref = group.scenelet_ref
        if ref in by_id:
            grouped.setdefault(ref, []).extend(group.shots)
            labels.setdefault(ref, set()).add((group.scenelet_label, group.scenelet_sequence))
        else:
            foreign[ref] = foreign.get(ref, 0) + group.shot_count
    for ref, count in sorted(foreign.items()):
        problems.append(
            error(
                "foreign-shot",
                f"{count} shot(s) of this story point at scenelet {ref}, which belongs to another story.",
                scenelet_ref=ref,
            )
        )
    shots_by_ref = {ref: tuple(sorted(shots, key=lambda s: s.shot_index)) for ref, shots in grouped.items()}
    problems.extend(duplicate_shot_indexes(shots_by_ref))
    cues, cue_problems = parse_cues(snapshot.story.audio_design_document)
    problems.extend(cue_problems)

    # Each distinct stored path is judged once (stories repeat them: "N/A" on most unrendered shots).
    paths: dict[str | None, StoredPath] = {}
    requests: set[MediaRequest] = set()

    def request(stored: str | None, kind: MediaKind) -> None:
        judged = paths[stored] if stored in paths else paths.setdefault(stored, judge_stored_path(stored))
        if type(judged) is str:  # unsafe paths are reported by ``plan`` where they are used
            requests.add(MediaRequest(judged, kind))

    for scenelet_ref in tree.order:
        for shot in shots_by_ref.get(scenelet_ref, ()):
            request(shot.key_frame_image_path, "image")
            request(shot.audio_file_path, "audio")
        scenelet = by_id[scenelet_ref]
        if scenelet.is_branch_point:
            request(scenelet.branch_audio_file_path, "audio")
    for cue in cues:
        request(music_stored_path(snapshot.story.id, cue.cue_name), "music")
    return Analysis(
        snapshot,
        tree,
        shots_by_ref,
        {ref: tuple(sorted(pairs)) for ref, pairs in labels.items()},  # tuples: a quarter of a set's memory
        cues,
        paths,
        frozenset(requests),
        tuple(problems),
    )


def music_stored_path(story_id: str, cue_name: str) -> str:
    """Music is not in the database: it lives at ``<story-id>/music/<cue_name>.m4a``."""
    return f"{story_id}/music/{cue_name}.m4a"


def default_exported_at(snapshot: StorySnapshot) -> str:
    """The newest row timestamp of the story: the same database state, the same bundle."""
    stamps = [snapshot.story.created_at, snapshot.story.updated_at]
    stamps += [s.created_at for s in snapshot.scenelets]
    stamps += [group.newest for group in snapshot.shot_groups if group.newest is not None]
    return format_timestamp(max(stamps))


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix (milliseconds, like the earlier player format)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
