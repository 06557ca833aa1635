"""``<story-id>/current.json``: the pointer readers follow to a story's published version."""

from __future__ import annotations

import json
from typing import Any

from bundler.errors import EnvError
from bundler.support.documents import MAX_POINTER_BYTES, DocumentError, check_size, parse_json

POINTER_NAME = "current.json"
POINTER_FORMAT = "story-bundle-pointer"
VERSION_DIGITS = 16


def pointer_document(story_id: str, version: str, manifest_sha: str, archive_name: str | None) -> bytes:
    document: dict[str, Any] = {
        "format": POINTER_FORMAT,
        "formatVersion": 1,
        "storyId": story_id,
        "version": version,
        "bundlePath": f"{version}/",
        "manifestSha256": manifest_sha,
        "archivePath": archive_name,
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def parse_pointer(data: bytes, where: str) -> dict[str, Any]:
    try:  # capped and depth-safe: a pointer nested thousands deep is no pointer, not a crash
        document = parse_json(check_size(data, MAX_POINTER_BYTES))
    except DocumentError:
        document = None
    path = document.get("bundlePath") if isinstance(document, dict) else None
    if not isinstance(path, str) or not path.strip("/") or ".." in path.split("/"):
        raise EnvError(f"{where}/{POINTER_NAME} is not a bundle pointer.")
    return document  # type: ignore[no-any-return]
