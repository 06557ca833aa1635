"""``<story-id>/<version>.sources.json``: where each media file of a published version came from.

Beside the version, not in it, so the bundle stays exactly the bundle. A later run whose
media are in a bucket trusts a file whose key, size and ETag are the recorded ones: it is
neither read nor checked again. The record is a hint, never a requirement: one that is
missing, unreadable or of another shape is simply not trusted.

An encoded file (``--web``) is recorded with its source's size and SHA-256, like a copy (so the
record never passes an encoded file's bytes off as its source's), plus ``encoded``: the recipe
and the encoded file's SHA-256 and size, which let the next run reuse it instead of encoding.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, TypeGuard

from bundler.storage.ports import EncodedFrom, Provenance
from bundler.support.documents import DocumentError, parse_json

SOURCES_FORMAT = "story-bundle-sources"
SOURCES_SUFFIX = ".sources.json"


def sources_name(version: str) -> str:
    return f"{version}{SOURCES_SUFFIX}"


def sources_document(
    story_id: str, version: str, sources: Mapping[str, Provenance], stored: Mapping[str, str | None]
) -> bytes:
    """``stored``: each object of the version and its ETag as published, so a later run can tell an
    object changed in place (same size, other bytes) from the one it published."""
    files = {target: _entry(p) for target, p in sorted(sources.items())}
    document = {
        "format": SOURCES_FORMAT,
        "formatVersion": 1,
        "storyId": story_id,
        "version": version,
        "files": files,
        "stored": dict(sorted(stored.items())),
    }
    return (json.dumps(document, indent=1, sort_keys=True) + "\n").encode("utf-8")


def _entry(p: Provenance) -> dict[str, Any]:
    entry: dict[str, Any] = {"source": p.source, "size": p.size, "etag": p.etag, "sha256": p.sha256}
    if p.encoded is not None:
        entry["encoded"] = {"recipe": p.encoded.recipe, "sha256": p.encoded.sha256, "bytes": p.encoded.bytes}
    return entry


def parse_stored(data: bytes | None) -> dict[str, str]:
    """The ETags a record says the version's objects had when published (none: nothing to compare)."""
    try:
        document: Any = parse_json(data) if data else None
    except DocumentError:
        return {}
    stored = document.get("stored") if isinstance(document, dict) else None
    if not isinstance(stored, dict):
        return {}
    return {name: etag for name, etag in stored.items() if isinstance(name, str) and isinstance(etag, str)}


def parse_sources(data: bytes | None) -> dict[str, Provenance]:
    """The record's files by source (an ETag-less entry included: it proves nothing, but costs nothing);
    anything that is not a record of this format is no record at all."""
    try:
        document: Any = parse_json(data) if data else None
    except DocumentError:
        return {}
    if not isinstance(document, dict) or document.get("format") != SOURCES_FORMAT:
        return {}
    files = document.get("files")
    known: dict[str, Provenance] = {}
    for entry in files.values() if isinstance(files, dict) else ():
        if not isinstance(entry, dict):
            continue
        source, size, etag, sha256 = (entry.get(k) for k in ("source", "size", "etag", "sha256"))
        if isinstance(source, str) and _size(size) and (etag is None or isinstance(etag, str)) and _sha(sha256):
            # an encoded entry keeps the source's size and SHA-256 too: trusting it trusts the source
            found = Provenance(source, size, etag, sha256, _encoded(entry.get("encoded")))
            kept = known.get(source)
            if kept is None or (kept.encoded is None and kept == replace(found, encoded=None)):
                known[source] = found  # one source copied and encoded: the entry that says both
    return known


def encodings(known: Mapping[str, Provenance]) -> dict[tuple[str, str], tuple[str, int]]:
    """(source SHA-256, recipe) -> (encoded SHA-256, bytes) for every encoded file of a record."""
    return {
        (p.sha256, p.encoded.recipe): (p.encoded.sha256, p.encoded.bytes)
        for p in known.values()
        if p.encoded is not None
    }


def _encoded(value: Any) -> EncodedFrom | None:
    if not isinstance(value, dict):
        return None
    recipe, sha256, size = (value.get(k) for k in ("recipe", "sha256", "bytes"))
    if isinstance(recipe, str) and _sha(sha256) and _size(size):
        return EncodedFrom(recipe, sha256, size)
    return None


def _size(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _sha(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) == 64
