"""The story YAML format shared by ``bundler db seed`` and ``bundler export``: its keys, the
documents it holds, and deterministic writing. Reading (strict, with line numbers) is
``story_yaml.parse``. The full format is in docs/story-yaml.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from bundler.errors import InputError
from bundler.media.structure import MediaKind

FORMAT = "bundler-story/1"
ROLES = ("root", "branch", "linear", "terminal")

TOP_KEYS = {"format": True, "story": True, "scenelets": True, "media": False}  # key -> required
STORY_KEYS = {"id": True, "title": True, "initial_prompt": True, "created_at": True, "audio_design_document": False}
SCENELET_KEYS = {
    "label": False,
    "id": True,
    "parent": True,
    "role": False,
    "branch_point": False,
    "terminal": False,
    "choice_label": False,
    "choice_prompt": False,
    "created_at": False,
    "description": True,
    "dialogue": False,
    "shot_suggestions": False,
    "content_extra": False,
    "branch_audio": False,
    "shots": False,
}
SHOT_KEYS = {
    "index": True,
    "key_frame": False,
    "audio": False,
    "video": False,
    "stored_label": False,
    "stored_sequence": False,
    "storyboard": True,
}
# content keys that have their own YAML field; anything else travels in content_extra
CONTENT_FIELDS = ("description", "dialogue", "shot_suggestions")


class StoryFileError(InputError):
    """A story YAML file that cannot be seeded; the message names file, line and field."""


@dataclass(frozen=True)
class ShotDoc:
    index: int
    storyboard: Any
    key_frame: str | None
    audio: str | None
    video: str | None
    stored_label: str | None
    stored_sequence: int | None
    line: int
    key_lines: Mapping[str, int]  # field -> line, for messages


@dataclass(frozen=True)
class SceneletDoc:
    id: str
    parent: str | None
    label: str | None  # as written (checked later against the recomputed label)
    role: str | None
    branch_point: bool
    terminal: bool
    choice_label: str | None
    choice_prompt: str | None
    created_at: datetime | None
    content: dict[str, Any]
    branch_audio: str | None
    shots: tuple[ShotDoc, ...]
    where: str  # "scenelets[3]", for messages
    line: int
    key_lines: Mapping[str, int]


@dataclass(frozen=True)
class StoryDoc:
    id: str
    title: str
    initial_prompt: str
    created_at: datetime
    audio_design_document: Any
    media: str | None
    scenelets: tuple[SceneletDoc, ...]


# --------------------------------------------------------------------------- writing


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # never emit &anchors: each value is written where it belongs


# line breaks other than \n: PyYAML's emitter mangles them in block and single-quoted
# scalars, so such text is double-quoted, where they are escaped
_OTHER_BREAKS = ("\r", "\x85", "\u2028", "\u2029")


def _represent_str(dumper: _Dumper, data: str) -> yaml.ScalarNode:
    style: str | None = None
    if any(b in data for b in _OTHER_BREAKS):
        style = '"'
    elif "\n" in data:
        style = "|"  # multi-line text reads best as a literal block; PyYAML quotes when it must
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_document(document: Mapping[str, Any]) -> str:
    """Deterministic YAML: keys in the order given, no line wrapping, UTF-8 text."""
    return yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=2**31 - 1,  # no wrapping: one field per line keeps diffs readable
        indent=2,
    )


def sorted_json(value: Any) -> Any:
    """JSON with object keys sorted, so output does not depend on JSONB's internal key order."""
    if isinstance(value, dict):
        return {key: sorted_json(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_json(item) for item in value]
    return value


def dialogue_entry(entry: Any) -> Any:
    """``character`` and ``line`` first (as people read a script), other keys sorted."""
    if not isinstance(entry, dict):
        return sorted_json(entry)
    first = [key for key in ("character", "line") if key in entry]
    rest = sorted(key for key in entry if key not in first)
    return {key: sorted_json(entry[key]) for key in [*first, *rest]}


def format_timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with ``Z``; microseconds only when present (PostgreSQL's precision)."""
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return text + "Z"


def role_of(parent_id: str | None, terminal: bool, parent_is_branch_point: bool) -> str:
    """The pipeline's role rule (root, terminal, branch, linear), in that precedence."""
    if parent_id is None:
        return "root"
    if terminal:
        return "terminal"
    return "branch" if parent_is_branch_point else "linear"


def stored_paths(doc: StoryDoc) -> Iterable[tuple[str, int, str, MediaKind]]:
    """Every stored media path of the document: (field path, line, stored value, media kind)."""
    for scenelet in doc.scenelets:
        if scenelet.branch_audio is not None:
            yield f"{scenelet.where}.branch_audio", scenelet.key_lines["branch_audio"], scenelet.branch_audio, "audio"
        for i, shot in enumerate(scenelet.shots):
            where = f"{scenelet.where}.shots[{i}]"
            if shot.key_frame is not None:
                yield f"{where}.key_frame", shot.key_lines["key_frame"], shot.key_frame, "image"
            if shot.audio is not None:
                yield f"{where}.audio", shot.key_lines["audio"], shot.audio, "audio"
