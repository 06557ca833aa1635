"""``verify``, the story graph: scenelets, shots, next steps, reachability from the root and
music, checked on the parsed manifest against the files read (``verify._Checks`` runs them)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from bundler.bundle.manifest import MANIFEST_NAME as MANIFEST
from bundler.bundle.reader import Digest, is_safe_path
from bundler.media.structure import FORMAT_NAMES, MediaKind, bundled_kind, sniff
from bundler.problems import Problem, error

_NEXT_KEYS = {
    "terminal": {"type"},
    "incomplete": {"type"},
    "linear": {"type", "sceneletId"},
    "branch": {"type", "choicePrompt", "choices"},
}
_SHOT_KEYS = {"shotIndex", "imagePath", "audioPath", "lines"}
# the exact keys of each object of the format (`bundler schema manifest`)
OBJECT_KEYS = {
    "manifest": {"format", "formatVersion", "generator", "metadata", "rootSceneletId", "scenelets", "music", "files"},
    "metadata": {"storyId", "title", "exportedAt"},
    "scenelet": {"id", "label", "description", "shots", "next", "branchAudioPath"},
    "music": {"cues", "sceneletCueMap"},
    "files entry": {"path", "bytes", "sha256", "mediaType"},
    "music cue": {"cueName", "sceneletIds", "audioPath"},
}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_LABEL = re.compile(r"scenelet-[1-9][0-9]*")


class Listed(NamedTuple):
    bytes: int | None
    sha256: str | None


class GraphChecks:
    """The checks of the story graph; problems accumulate so one run reports them all."""

    def __init__(self, files: Mapping[str, Digest]) -> None:
        self.files = files
        self.listed: dict[str, Listed] = {}
        self.problems: list[Problem] = []
        self.scenelet_count = 0

    def problem(self, code: str, message: str, path: str = MANIFEST, **where: Any) -> None:
        self.problems.append(error(code, message, path=path, **where))

    def exact_keys(self, value: Any, kind: str, path: str = MANIFEST, **where: Any) -> None:
        """An object of the format carries exactly its keys: a missing or unknown one is a malformed manifest."""
        if not isinstance(value, dict):
            return
        expected = OBJECT_KEYS[kind]
        missing, unknown = sorted(expected - set(value)), sorted(set(value) - expected)
        if missing or unknown:
            parts = [f"missing {', '.join(missing)}"] if missing else []
            parts += [f"unknown {', '.join(map(str, unknown))}"] if unknown else []
            self.problem("invalid-manifest", f"{kind} has {'; '.join(parts)}", path, **where)

    def reference(self, value: Any, kind: MediaKind, what: str, **where: Any) -> None:
        """A media path the manifest points at: safe, listed, and of the right format."""
        if value is None:
            return
        if not isinstance(value, str):
            self.problem("invalid-manifest", f"{what} is not a string or null", **where)
        elif not is_safe_path(value):
            self.problem("unsafe-path", f"{what} is not a safe relative path", value, **where)
        elif value not in self.listed:
            self.problem("dangling-reference", f"{what} is not a file listed in the bundle", value, **where)
        elif value in self.files and not sniff(self.files[value].head, kind := bundled_kind(value, kind)):
            self.problem("wrong-media-format", f"{what} is not {FORMAT_NAMES[kind]}", value, **where)

    def check_scenelets(self, scenelets: Any) -> dict[str, dict[str, Any]]:
        """Well-formed scenelets by id (first occurrence wins); checks each one's own fields."""
        if not isinstance(scenelets, list):
            self.problem("invalid-manifest", "scenelets is not a list")
            return {}
        by_id: dict[str, dict[str, Any]] = {}
        for position, scenelet in enumerate(scenelets):
            uid = scenelet.get("id") if isinstance(scenelet, dict) else None
            if not isinstance(uid, str) or not UUID.fullmatch(uid):
                self.problem("invalid-manifest", f"scenelets[{position}] has no UUID id")
            elif uid in by_id:
                self.problem("duplicate-scenelet", "appears twice in scenelets", scenelet_ref=uid)
            else:
                by_id[uid] = scenelet
        self.scenelet_count = len(by_id)
        for uid, scenelet in by_id.items():
            label = scenelet.get("label")
            where: dict[str, Any] = {"scenelet_ref": uid, "scenelet_label": label if isinstance(label, str) else None}
            self.exact_keys(scenelet, "scenelet", **where)
            if (
                not isinstance(label, str)
                or not _LABEL.fullmatch(label)
                or not isinstance(scenelet.get("description"), str)
            ):
                self.problem("invalid-manifest", "scenelet needs a label scenelet-N and a description string", **where)
            self.check_shots(scenelet.get("shots"), where)
            next_type = self.check_next(scenelet.get("next"), by_id, where)
            branch_audio = scenelet.get("branchAudioPath")
            if branch_audio is not None and next_type != "branch":
                self.problem("invalid-manifest", "branch narration on a scenelet that is not a branch", **where)
            self.reference(branch_audio, "audio", "branchAudioPath", **where)
        return by_id

    def check_shots(self, shots: Any, where: dict[str, Any]) -> None:
        if not isinstance(shots, list) or not shots:
            self.problem("unplayable-scenelet", "has no shots", **where)
            return
        previous = 0
        for shot in shots:
            if not isinstance(shot, dict) or set(shot) != _SHOT_KEYS:
                self.problem("invalid-manifest", "shot needs exactly shotIndex, imagePath, audioPath, lines", **where)
                continue
            index = shot["shotIndex"]
            if not isinstance(index, int) or isinstance(index, bool) or index <= previous:
                self.problem("invalid-manifest", f"shotIndex {index!r} is not increasing", **where)
            else:
                previous = index
            at = {**where, "shot_index": index if isinstance(index, int) else None}
            if shot["imagePath"] is None and shot["audioPath"] is None:
                self.problem("invalid-manifest", "shot has neither imagePath nor audioPath", **at)
            self.reference(shot["imagePath"], "image", "imagePath", **at)
            self.reference(shot["audioPath"], "audio", "audioPath", **at)
            if not _valid_lines(shot["lines"]):
                self.problem("invalid-manifest", "lines must be a list of {speaker, text} strings", **at)

    def check_next(self, step: Any, by_id: Mapping[str, Any], where: dict[str, Any]) -> str | None:
        kind = step.get("type") if isinstance(step, dict) else None
        if not isinstance(kind, str) or kind not in _NEXT_KEYS or set(step) != _NEXT_KEYS[kind]:
            self.problem("invalid-manifest", f"next is not a valid step (type {kind!r})", **where)
            return None
        if kind == "linear":
            self.target(step["sceneletId"], by_id, "next.sceneletId", where)
        elif kind == "branch":
            prompt, choices = step["choicePrompt"], step["choices"]
            if not isinstance(prompt, str) or not prompt.strip():
                self.problem("invalid-manifest", "branch has a blank choicePrompt", **where)
            if not isinstance(choices, list) or len(choices) < 2:
                self.problem("invalid-manifest", "branch offers fewer than two choices", **where)
                return str(kind)
            for choice in choices:
                if not isinstance(choice, dict) or set(choice) != {"sceneletId", "label"}:
                    self.problem("invalid-manifest", "choice needs exactly sceneletId and label", **where)
                    continue
                if not isinstance(choice["label"], str) or not choice["label"].strip():
                    self.problem("invalid-manifest", "choice has a blank label", **where)
                self.target(choice["sceneletId"], by_id, "choice sceneletId", where)
        return str(kind)

    def target(self, uid: Any, by_id: Mapping[str, Any], what: str, where: dict[str, Any]) -> None:
        if not isinstance(uid, str) or uid not in by_id:
            self.problem("unknown-scenelet", f"{what} {uid!r} is not a bundled scenelet", **where)

    def check_root_and_reachability(self, root: Any, by_id: Mapping[str, dict[str, Any]]) -> None:
        if not isinstance(root, str) or root not in by_id:
            self.problem("unknown-scenelet", f"rootSceneletId {root!r} is not a bundled scenelet")
            return
        seen = {root}
        pending = [root]  # iterative: a line of thousands of scenelets must not recurse
        while pending:
            for target in _targets(by_id[pending.pop()].get("next")):
                if isinstance(target, str) and target in by_id and target not in seen:
                    seen.add(target)
                    pending.append(target)
        for uid in by_id:
            if uid not in seen:
                self.problem("unreachable-scenelet", "cannot be reached from the root", scenelet_ref=uid)

    def check_music(self, music: Any, by_id: Mapping[str, Any]) -> None:
        if not isinstance(music, dict):
            self.problem("invalid-manifest", "music is not an object")
            return
        self.exact_keys(music, "music")
        cues, cue_map = music.get("cues"), music.get("sceneletCueMap")
        names: set[str] = set()
        for position, cue in enumerate(cues if isinstance(cues, list) else ()):
            self.exact_keys(cue, "music cue")
            name = cue.get("cueName") if isinstance(cue, dict) else None
            ids = cue.get("sceneletIds") if isinstance(cue, dict) else None
            if not isinstance(name, str) or not name.strip() or not isinstance(ids, list):
                self.problem("invalid-manifest", f"music cue {position} needs cueName and sceneletIds")
                continue
            names.add(name)
            for uid in ids:
                self.target(uid, by_id, f"music cue {name!r} sceneletId", {})
            if cue.get("audioPath") is None:
                self.problem("invalid-manifest", f"music cue {name!r} has no audioPath")
            self.reference(cue.get("audioPath"), "music", f"audioPath of music cue {name!r}")
        if not isinstance(cues, list) or not isinstance(cue_map, dict):
            self.problem("invalid-manifest", "music needs a cues list and a sceneletCueMap object")
            return
        for uid, name in cue_map.items():
            self.target(uid, by_id, "sceneletCueMap key", {})
            if not isinstance(name, str) or name not in names:
                self.problem("unknown-cue", f"sceneletCueMap names unknown cue {name!r}", scenelet_ref=uid)


def _valid_lines(lines: Any) -> bool:
    return isinstance(lines, list) and all(
        isinstance(line, dict)
        and set(line) == {"speaker", "text"}
        and isinstance(line["speaker"], str)
        and isinstance(line["text"], str)
        for line in lines
    )


def _targets(step: Any) -> list[Any]:
    if not isinstance(step, dict):
        return []
    if step.get("type") == "linear":
        return [step.get("sceneletId")]
    if step.get("type") == "branch" and isinstance(step.get("choices"), list):
        return [c.get("sceneletId") for c in step["choices"] if isinstance(c, dict)]
    return []
