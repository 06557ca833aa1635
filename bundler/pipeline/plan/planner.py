"""Decide the bundle from one snapshot (docs/design.md §2, §3). Pure: disk facts come in as data.

Two steps so that file checks stay outside: ``analyze`` reads the snapshot and
lists the media it needs checked (``Analysis.requests``); the caller checks
them; ``plan`` turns the analysis and the check results into a ``BundlePlan``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import replace

from bundler.media.encode import WebSettings
from bundler.media.paths import UnsafePath
from bundler.media.structure import MediaKind
from bundler.pipeline.plan.analysis import Analysis, judge_stored_path, music_stored_path
from bundler.pipeline.plan.analysis import analyze as analyze
from bundler.pipeline.plan.music import RawCue, unique_file_names
from bundler.pipeline.plan.profile import with_profile
from bundler.pipeline.plan.types import (
    BundlePlan,
    Choice,
    FileCopy,
    MediaRequest,
    MediaStatus,
    Next,
    PlannedCue,
    PlannedScenelet,
    PlannedShot,
)
from bundler.problems import Problem, error, warning
from bundler.records import SceneletRecord


class _Planner:
    """Holds the lookups of one ``plan`` call; every method is pure."""

    def __init__(self, analysis: Analysis, media: Mapping[MediaRequest, MediaStatus]) -> None:
        self.analysis = analysis
        self.media = media
        self.tree = analysis.tree
        self.by_id = {s.id: s for s in analysis.snapshot.scenelets}
        self.problems: list[Problem] = list(analysis.problems)
        self.walked: set[str] = set()  # scenelets whose labels and shot paths ``reachable`` checked

    def where(self, scenelet_ref: str, shot_index: int | None = None, path: str | None = None) -> dict[str, object]:
        return {
            "scenelet_ref": scenelet_ref,
            "scenelet_label": self.tree.labels.get(scenelet_ref),
            "shot_index": shot_index,
            "path": path,
        }

    def copy_for(
        self, stored: str | None, kind: MediaKind, target: str, what: str, scenelet_ref: str, shot: int | None
    ) -> FileCopy | None:
        """The file to copy for a stored path, or None with a problem recorded."""
        relative = self.safe_path(stored, what, scenelet_ref, shot)
        if relative is None:
            return None
        status = self.media.get(MediaRequest(relative, kind))
        if status is None or status.source is None:
            code = status.code if status and status.code else "missing-media"
            detail = status.detail if status and status.detail else "is missing (no such file under the assets root)"
            severity = warning if code == "missing-media" else error
            self.problems.append(severity(code, f"The {what} {detail}.", **self.where(scenelet_ref, shot, stored)))
            return None
        return FileCopy(target, status.source, kind)

    def safe_path(self, stored: str | None, what: str, scenelet_ref: str, shot: int | None) -> str | None:
        """The path under the assets root; None for no media, or with ``unsafe-asset-path`` recorded."""
        paths = self.analysis.paths
        relative = paths[stored] if stored in paths else judge_stored_path(stored)
        if isinstance(relative, UnsafePath):
            self.problems.append(
                error(
                    "unsafe-asset-path",
                    f"The {what} path {relative}; refusing it.",
                    **self.where(scenelet_ref, shot, stored),
                )
            )
            return None
        return relative

    def check_every_scenelet(self) -> None:
        """Path safety and label drift need no disk, so every scenelet gets them, bundled or not.

        A bad path behind an unplayable scenelet is still a bad row (docs/design.md §3). The walk
        already checked the scenelets it entered; repeats are dropped by ``_reading_order``.
        """
        for scenelet in self.analysis.snapshot.scenelets:
            if scenelet.id not in self.walked:
                if scenelet.id in self.tree.labels:
                    self.check_labels(scenelet.id)
                for shot in self.analysis.shots_by_ref.get(scenelet.id, ()):
                    self.safe_path(shot.key_frame_image_path, "key frame", scenelet.id, shot.shot_index)
                    self.safe_path(shot.audio_file_path, "narration", scenelet.id, shot.shot_index)
            if scenelet.is_branch_point:
                self.safe_path(scenelet.branch_audio_file_path, "branch narration", scenelet.id, None)

    def shots_of(self, scenelet_ref: str) -> tuple[PlannedShot, ...]:
        planned = []
        for shot in self.analysis.shots_by_ref.get(scenelet_ref, ()):
            base = f"assets/shots/{scenelet_ref}/{shot.shot_index}"
            image = self.copy_for(
                shot.key_frame_image_path, "image", f"{base}_key_frame.png", "key frame", scenelet_ref, shot.shot_index
            )
            audio = self.copy_for(
                shot.audio_file_path, "audio", f"{base}_audio.wav", "narration", scenelet_ref, shot.shot_index
            )
            if image or audio:
                planned.append(PlannedShot(shot.shot_index, image, audio, shot.lines))
        return tuple(planned)

    def check_labels(self, scenelet_ref: str) -> None:
        label = self.tree.labels[scenelet_ref]
        sequence = int(label.removeprefix("scenelet-"))
        drifted = [pair for pair in self.analysis.stored_labels.get(scenelet_ref, ()) if pair != (label, sequence)]
        for stored_label, stored_sequence in drifted:
            self.problems.append(
                warning(
                    "label-drift",
                    f"Shots store label {stored_label!r} (sequence {stored_sequence}) but the tree now "
                    f"numbers this scenelet {label}; shots are grouped by UUID so the bundle is unaffected.",
                    **self.where(scenelet_ref),
                )
            )

    def reachable(self) -> Iterator[tuple[str, tuple[PlannedShot, ...]]]:
        """Pre-order walk that enters only playable scenelets, yielding each with its shots."""
        root = self.tree.root_id
        if root is None:
            return
        stack = [root]
        while stack:
            scenelet_ref = stack.pop()
            self.walked.add(scenelet_ref)
            self.check_labels(scenelet_ref)
            shots = self.shots_of(scenelet_ref)
            if not shots:
                if scenelet_ref == root:
                    self.problems.append(
                        error(
                            "root-not-playable",
                            f"Root scenelet {root} ({self.tree.labels[root]}) does not have playable assets.",
                            **self.where(root),
                        )
                    )
                else:
                    self.report_unplayable(scenelet_ref)
                continue
            yield scenelet_ref, shots
            if not self.by_id[scenelet_ref].is_terminal_node:
                stack.extend(reversed(self.tree.children.get(scenelet_ref, ())))

    def report_unplayable(self, scenelet_ref: str) -> None:
        hidden = _count_descendants(scenelet_ref, self.tree.children)
        tail = f"; its {hidden} descendant scenelet(s) are left out too" if hidden else ""
        self.problems.append(
            warning(
                "unplayable-scenelet",
                f"Scenelet has no shot with usable media and is left out of the bundle{tail}.",
                **self.where(scenelet_ref),
            )
        )

    def next_of(self, scenelet: SceneletRecord, bundled: set[str]) -> Next:
        children = self.tree.children.get(scenelet.id, ())
        where = self.where(scenelet.id)
        if scenelet.is_terminal_node:
            if children:
                self.problems.append(
                    warning(
                        "terminal-with-children",
                        f"Terminal scenelet has {len(children)} child scenelet(s); they are not bundled.",
                        **where,
                    )
                )
            return Next("terminal")
        playable = [c for c in children if c in bundled]
        if len(playable) == 1:
            return Next("linear", scenelet_ref=playable[0])
        if not playable:
            why = "has no children yet" if not children else "has no playable child"
            self.problems.append(
                warning("incomplete-path", f"Non-terminal scenelet {why}; the path ends here as incomplete.", **where)
            )
            return Next("incomplete")
        if not scenelet.is_branch_point:
            self.problems.append(
                error(
                    "multiple-children",
                    f"Scenelet is not a branch point but has {len(playable)} playable children.",
                    **where,
                )
            )
            return Next("incomplete")
        prompt = (scenelet.choice_prompt or "").strip()
        if not prompt:
            self.problems.append(error("blank-choice-prompt", "Branch point has a blank choice prompt.", **where))
        choices = []
        for child_id in playable:
            label = (self.by_id[child_id].choice_label_from_parent or "").strip()
            if not label:
                self.problems.append(
                    error(
                        "blank-choice-label",
                        f"Choice leading to this scenelet from branch point {scenelet.id} has a blank label.",
                        **self.where(child_id),
                    )
                )
            choices.append(Choice(child_id, label))
        return Next("branch", choice_prompt=prompt, choices=tuple(choices))

    def scenelets(self) -> tuple[PlannedScenelet, ...]:
        walked = list(self.reachable())
        bundled = {scenelet_ref for scenelet_ref, _ in walked}
        planned = []
        for scenelet_ref, shots in walked:
            scenelet = self.by_id[scenelet_ref]
            if not scenelet.description:
                self.problems.append(
                    warning("missing-description", "Scenelet content has no description.", **self.where(scenelet_ref))
                )
            next_step = self.next_of(scenelet, bundled)
            branch_audio = None
            if next_step.type == "branch":
                branch_audio = self.copy_for(
                    scenelet.branch_audio_file_path,
                    "audio",
                    f"assets/branches/{scenelet_ref}/branch_audio.wav",
                    "branch narration",
                    scenelet_ref,
                    None,
                )
            planned.append(
                PlannedScenelet(
                    scenelet_ref, self.tree.labels[scenelet_ref], scenelet.description, shots, next_step, branch_audio
                )
            )
        return tuple(planned)

    def music(self, bundled: list[str]) -> tuple[PlannedCue, ...]:
        story_id = self.analysis.snapshot.story.id
        position = {scenelet_ref: n for n, scenelet_ref in enumerate(bundled)}  # pre-order rank
        # cue ids are labels, resolved through the labels stored on shots (first shot wins)
        alias: dict[str, str] = {}
        for group in self.analysis.snapshot.shot_groups:  # in shot order
            alias.setdefault(group.scenelet_label.strip(), group.scenelet_ref)
        claimed: dict[str, str] = {}
        kept: list[tuple[RawCue, tuple[str, ...], FileCopy]] = []
        for cue in self.analysis.cues:
            members: dict[str, None] = {}  # insertion-ordered set: O(1) membership for long cues
            for ref in cue.scenelet_refs:
                scenelet_ref = alias.get(ref) or (ref if ref in self.by_id else None)
                if scenelet_ref is None:
                    self.problems.append(
                        warning(
                            "unknown-music-scenelet",
                            f"Music cue {cue.cue_name!r} names {ref!r}, which no shot of this story carries.",
                        )
                    )
                    continue
                if scenelet_ref not in position or scenelet_ref in members:
                    continue
                if scenelet_ref in claimed:
                    self.problems.append(
                        warning(
                            "music-cue-conflict",
                            f"Music cue {cue.cue_name!r} also claims this scenelet; cue "
                            f"{claimed[scenelet_ref]!r} keeps it.",
                            **self.where(scenelet_ref),
                        )
                    )
                    continue
                members[scenelet_ref] = None
            if not members:
                continue
            stored = music_stored_path(story_id, cue.cue_name)
            source = self.copy_for(stored, "music", "", f"music for cue {cue.cue_name!r}", next(iter(members)), None)
            if source is None:
                continue
            for scenelet_ref in members:
                claimed[scenelet_ref] = cue.cue_name
            kept.append((cue, tuple(sorted(members, key=position.__getitem__)), source))
        names = unique_file_names(cue.cue_name for cue, _, _ in kept)
        planned = []
        for (cue, cue_members, source), name in zip(kept, names, strict=True):
            planned.append(PlannedCue(cue.cue_name, cue_members, replace(source, target=f"assets/music/{name}.m4a")))
        return tuple(planned)


def plan(
    analysis: Analysis, media: Mapping[MediaRequest, MediaStatus], exported_at: str, profile: WebSettings | None = None
) -> BundlePlan:
    """The bundle; ``profile``: the ``--web`` settings (key frames WebP, narration M4A), None for master."""
    planner = _Planner(analysis, media)
    scenelets = planner.scenelets()
    planner.check_every_scenelet()
    cues = planner.music([s.id for s in scenelets])
    story = analysis.snapshot.story
    bundle = BundlePlan(
        story_id=story.id,
        title=story.display_name.strip(),
        exported_at=exported_at,
        root_id=analysis.tree.root_id,
        scenelets=scenelets,
        cues=cues,
        problems=_reading_order(planner.problems, analysis.tree.order),
    )
    return with_profile(bundle, profile)


def _reading_order(problems: list[Problem], order: tuple[str, ...]) -> tuple[Problem, ...]:
    """Once each; story-wide problems first, then by scenelet in tree order and shot index."""
    position = {scenelet_ref: n for n, scenelet_ref in enumerate(order)}

    def key(problem: Problem) -> tuple[int, int]:
        where = -1 if problem.scenelet_ref is None else position.get(problem.scenelet_ref, len(position))
        return where, problem.shot_index or 0

    return tuple(sorted(dict.fromkeys(problems), key=key))


def _count_descendants(scenelet_ref: str, children: Mapping[str, tuple[str, ...]]) -> int:
    count = 0
    queue = deque(children.get(scenelet_ref, ()))
    while queue:
        count += 1
        queue.extend(children.get(queue.popleft(), ()))
    return count
