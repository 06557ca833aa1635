"""What the planner produces: the bundle, decided, before any byte is copied."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from bundler.media.encode import KEY_FRAME_MEDIA_TYPE, NARRATION_MEDIA_TYPE, WebSettings, encoder_versions
from bundler.media.structure import MediaKind
from bundler.problems import Problem
from bundler.records import Line

MEDIA_TYPES: Mapping[MediaKind, str] = {"image": "image/png", "audio": "audio/wav", "music": "audio/mp4"}


@dataclass(frozen=True, slots=True)
class MediaRequest:
    """A stored path the planner wants checked on disk (relative to the assets root)."""

    relative: str
    kind: MediaKind


class SourceHandle(Protocol):
    """A media file that passed every check, as its backend knows it (a local file, a stored
    object): the plan only needs its size and a name for messages."""

    @property
    def size(self) -> int: ...

    @property
    def location(self) -> str: ...  # a resolved path, or an object key


@dataclass(frozen=True, slots=True)
class MediaStatus:
    """The outcome of checking one ``MediaRequest``: a usable file or a problem code."""

    source: SourceHandle | None = None
    code: str | None = None  # missing-media | wrong-media-format | unsafe-asset-path
    detail: str = ""


Made = Literal["copied", "webp", "m4a"]


@dataclass(frozen=True, slots=True)
class Encoding:
    """How a file's bytes are made when they are not the source's: encoded by ``media.encode``."""

    format: Literal["webp", "m4a"]
    settings: WebSettings

    def recipe(self) -> str:
        """What the encoded bytes are a function of, besides the source's bytes: the reuse key's other half.

        Format, settings key and the encoder libraries' versions (another libwebp may write other bytes).
        """
        return _recipe(self.format, self.settings)


@functools.cache  # asked once per file by reuse checks; the libraries do not change within a run
def _recipe(format: str, settings: WebSettings) -> str:
    return f"{format} {settings.key()} {encoder_versions()}"


@dataclass(frozen=True, slots=True)
class FileCopy:
    """One file of the bundle: where it comes from, where it goes and how its bytes are made."""

    target: str  # bundle-relative POSIX path, e.g. assets/shots/<uuid>/1_key_frame.png
    source: SourceHandle
    kind: MediaKind  # of the source, as checked (an encoded key frame's source is still a PNG)
    encoding: Encoding | None = None  # None: the source's bytes, copied

    @property
    def made(self) -> Made:
        return "copied" if self.encoding is None else self.encoding.format

    @property
    def media_type(self) -> str:
        if self.encoding is not None:
            return KEY_FRAME_MEDIA_TYPE if self.encoding.format == "webp" else NARRATION_MEDIA_TYPE
        return MEDIA_TYPES[self.kind]


@dataclass(frozen=True, slots=True)
class PlannedShot:
    shot_index: int
    image: FileCopy | None
    audio: FileCopy | None
    lines: tuple[Line, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "shotIndex": self.shot_index,
            "imagePath": self.image.target if self.image else None,
            "audioPath": self.audio.target if self.audio else None,
            "lines": [{"speaker": speaker, "text": text} for speaker, text in self.lines],
        }


NextType = Literal["terminal", "linear", "branch", "incomplete"]


@dataclass(frozen=True, slots=True)
class Choice:
    scenelet_ref: str
    label: str


@dataclass(frozen=True, slots=True)
class Next:
    type: NextType
    scenelet_ref: str | None = None  # linear
    choice_prompt: str | None = None  # branch
    choices: tuple[Choice, ...] = ()  # branch

    def to_json(self) -> dict[str, Any]:
        if self.type == "linear":
            return {"type": "linear", "sceneletId": self.scenelet_ref}
        if self.type == "branch":
            return {
                "type": "branch",
                "choicePrompt": self.choice_prompt,
                "choices": [{"sceneletId": c.scenelet_ref, "label": c.label} for c in self.choices],
            }
        return {"type": self.type}

    def targets(self) -> tuple[str, ...]:
        if self.type == "linear" and self.scenelet_ref:
            return (self.scenelet_ref,)
        return tuple(c.scenelet_ref for c in self.choices)


@dataclass(frozen=True, slots=True)
class PlannedScenelet:
    id: str
    label: str
    description: str
    shots: tuple[PlannedShot, ...]
    next: Next
    branch_audio: FileCopy | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "description": self.description,
            "shots": [shot.to_json() for shot in self.shots],
            "next": self.next.to_json(),
            "branchAudioPath": self.branch_audio.target if self.branch_audio else None,
        }


@dataclass(frozen=True, slots=True)
class PlannedCue:
    cue_name: str
    scenelet_refs: tuple[str, ...]
    file: FileCopy

    def to_json(self) -> dict[str, Any]:
        return {"cueName": self.cue_name, "sceneletIds": list(self.scenelet_refs), "audioPath": self.file.target}


@dataclass(frozen=True)
class BundlePlan:
    story_id: str
    title: str
    exported_at: str
    root_id: str | None
    scenelets: tuple[PlannedScenelet, ...]
    cues: tuple[PlannedCue, ...]
    problems: tuple[Problem, ...]
    web: WebSettings | None = None  # the --web profile's settings; None: the master profile

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    def files(self) -> tuple[FileCopy, ...]:
        """Every media file to copy, once each, sorted by target path."""
        found: dict[str, FileCopy] = {}
        for scenelet in self.scenelets:
            for shot in scenelet.shots:
                for copy in (shot.image, shot.audio):
                    if copy:
                        found[copy.target] = copy
            if scenelet.branch_audio:
                found[scenelet.branch_audio.target] = scenelet.branch_audio
        for cue in self.cues:
            found[cue.file.target] = cue.file
        return tuple(found[target] for target in sorted(found))

    def shot_count(self) -> int:
        return sum(len(s.shots) for s in self.scenelets)
