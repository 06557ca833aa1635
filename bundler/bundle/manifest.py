"""``manifest.json`` and ``SHA256SUMS`` (docs/design.md §3): pure functions of the plan and file list."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bundler.media.encode import encoder_versions
from bundler.pipeline.plan.types import BundlePlan

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
    """The manifest; ``files=None`` leaves ``files`` out (the copy embedded in the player, docs/design.md §5)."""
    from bundler import __version__  # here, not at import: ``verify`` and ``--help`` never pay for it

    cue_map = {scenelet_ref: cue.cue_name for cue in plan.cues for scenelet_ref in cue.scenelet_refs}
    order = {scenelet.id: n for n, scenelet in enumerate(plan.scenelets)}
    document = {
        "format": FORMAT,
        "formatVersion": FORMAT_VERSION,
        "generator": generator_line(__version__, plan),
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


def generator_line(version: str, plan: BundlePlan) -> str:
    """``bundler <version>``; a ``--web`` bundle adds what its encoded bytes are a function of:
    ``bundler 0.1.0; web web1-webp-q80-m4-max1600-aac48k; libwebp 1.5.0, libavcodec 61.19.101``."""
    if plan.web is None:
        return f"bundler {version}"

    return f"bundler {version}; web {plan.web.key()}; {encoder_versions()}"


def dump_bytes(document: dict[str, Any]) -> bytes:
    """UTF-8 JSON, 2-space indent, keys in contract order, trailing newline.

    Byte for byte what ``json.dumps(document, indent=2, ensure_ascii=False) + "\\n"``
    writes for documents whose numbers are integers (a manifest has no others),
    about 7x faster: orjson, with the json module for what orjson refuses
    (integers beyond 64 bits, lone surrogates, non-string keys).
    """
    import orjson

    try:
        return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def dumps(document: dict[str, Any]) -> str:
    """``dump_bytes`` as text."""
    return dump_bytes(document).decode("utf-8")


def sha256sums(entries: Sequence[FileEntry]) -> str:
    """``sha256sum`` format: every file but SHA256SUMS itself, sorted by path."""
    return "".join(f"{e.sha256}  {e.path}\n" for e in sorted(entries, key=lambda e: e.path))
