"""``manifest.json`` and ``SHA256SUMS`` (DESIGN §3): pure functions of the plan and file list."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring as _encode_string  # the C escaper of ensure_ascii=False
from typing import Any

from bundler import __version__
from bundler.plan.types import BundlePlan

FORMAT = "story-bundle"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
SUMS_NAME = "SHA256SUMS"
PLAYER_NAME = "index.html"


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str
    bytes: int
    sha256: str
    media_type: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "bytes": self.bytes, "sha256": self.sha256, "mediaType": self.media_type}


def manifest_document(plan: BundlePlan, files: Sequence[FileEntry] | None) -> dict[str, Any]:
    """The manifest; ``files=None`` leaves ``files`` out (the copy embedded in the player, DESIGN §5)."""
    cue_map = {scenelet_id: cue.cue_name for cue in plan.cues for scenelet_id in cue.scenelet_ids}
    order = {scenelet.id: n for n, scenelet in enumerate(plan.scenelets)}
    document = {
        "format": FORMAT,
        "formatVersion": FORMAT_VERSION,
        "generator": f"bundler {__version__}",
        "metadata": {"storyId": plan.story_id, "title": plan.title, "exportedAt": plan.exported_at},
        "rootSceneletId": plan.root_id,
        "scenelets": [scenelet.to_json() for scenelet in plan.scenelets],
        "music": {
            "cues": [cue.to_json() for cue in plan.cues],
            "sceneletCueMap": {key: cue_map[key] for key in sorted(cue_map, key=order.__getitem__)},
        },
    }
    if files is not None:
        document["files"] = [entry.to_json() for entry in sorted(files, key=lambda e: e.path)]
    return document


class _Unsupported(Exception):
    pass


_SCALARS: dict[Any, str] = {None: "null", True: "true", False: "false"}


def _scalar(value: Any) -> str | None:
    """JSON text of a str, int, bool or None (exact types: the common case, fast); else None."""
    kind = type(value)
    if kind is str:
        return _encode_string(value)
    if kind is int:
        return int.__repr__(value)
    if value is None or kind is bool:
        return _SCALARS[value]
    return None


def _pretty(value: Any, level: int, out: list[str]) -> None:
    """Append ``value`` as ``json.dumps(indent=2, ensure_ascii=False)`` writes it (str keys, JSON types)."""
    text = _scalar(value)
    if text is not None:
        out.append(text)
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = "\n" + "  " * (level + 1)
        separator = "{" + inner
        for key, item in value.items():
            if type(key) is not str:
                raise _Unsupported
            text = _scalar(item)
            if text is not None:
                out.append(f"{separator}{_encode_string(key)}: {text}")
            else:
                out.append(f"{separator}{_encode_string(key)}: ")
                _pretty(item, level + 1, out)
            separator = "," + inner
        out.append("\n" + "  " * level + "}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        inner = "\n" + "  " * (level + 1)
        separator = "[" + inner
        for item in value:
            text = _scalar(item)
            if text is not None:
                out.append(separator + text)
            else:
                out.append(separator)
                _pretty(item, level + 1, out)
            separator = "," + inner
        out.append("\n" + "  " * level + "]")
    else:
        raise _Unsupported  # floats, str/int subclasses and the rest: the json module's own rules


def dumps(document: dict[str, Any]) -> str:
    """UTF-8 JSON, 2-space indent, keys in contract order, trailing newline.

    Byte for byte what ``json.dumps(document, indent=2, ensure_ascii=False)``
    writes, several times faster and with a fraction of the memory: with
    ``indent`` the json module runs its pure-Python encoder, one tiny string per
    token (millions at 100,000 shots). Values that are not plain JSON types
    (floats, subclasses) go to the json module itself.
    """
    out: list[str] = []
    try:
        _pretty(document, 0, out)
    except _Unsupported:
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    out.append("\n")
    return "".join(out)


def sha256sums(entries: Sequence[FileEntry]) -> str:
    """``sha256sum`` format: every file but SHA256SUMS itself, sorted by path."""
    return "".join(f"{e.sha256}  {e.path}\n" for e in sorted(entries, key=lambda e: e.path))
