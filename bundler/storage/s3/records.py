"""``<story-id>/<version>.sources.json``: where each media file of a published version came from.

Beside the version, not in it, so the bundle stays exactly the bundle. A later run whose
media are in a bucket trusts a file whose key, size and ETag are the recorded ones: it is
neither read nor checked again. The record is a hint, never a requirement: one that is
missing, unreadable or of another shape is simply not trusted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bundler.storage.ports import Provenance
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
    files = {
        target: {"source": p.source, "size": p.size, "etag": p.etag, "sha256": p.sha256}
        for target, p in sorted(sources.items())
    }
    document = {
        "format": SOURCES_FORMAT,
        "formatVersion": 1,
        "storyId": story_id,
        "version": version,
        "files": files,
        "stored": dict(sorted(stored.items())),
    }
    return (json.dumps(document, indent=1, sort_keys=True) + "\n").encode("utf-8")


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
        if (
            isinstance(source, str)
            and isinstance(size, int)
            and not isinstance(size, bool)
            and (etag is None or isinstance(etag, str))
            and isinstance(sha256, str)
            and len(sha256) == 64
        ):
            known[source] = Provenance(source, size, etag, sha256)
    return known
