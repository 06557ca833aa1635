"""Writes small, valid story bundles (docs/design.md §3) straight to disk, without a database.

The story: a root branch point (two shots, branch narration) offering two
choices; the first leads on to a terminal scenelet, the second is incomplete.
Two music cues, one of them with a name that needs sanitizing. Media are real
(tiny PNG, WAV and M4A files), checksums and sizes are real, so the bundle
passes ``sha256sum -c SHA256SUMS`` like a bundle from ``bundler assemble``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bundler.bundle.manifest import FileEntry, dumps, sha256sums
from tests.media_files import m4a_bytes, png_bytes, wav_bytes

STORY_ID = "5f0c7c1e-3a51-4c8e-9b9e-0d2f4f7f6a01"
ROOT = "0a7e5d3c-1111-4aaa-8bbb-000000000001"
LEFT = "0a7e5d3c-2222-4aaa-8bbb-000000000002"
RIGHT = "0a7e5d3c-3333-4aaa-8bbb-000000000003"
END = "0a7e5d3c-4444-4aaa-8bbb-000000000004"
EXPORTED_AT = "2024-05-01T12:30:45Z"

MEDIA_TYPES = {".png": "image/png", ".wav": "audio/wav", ".m4a": "audio/mp4", ".html": "text/html"}


def _shots(ref: str, *specs: tuple[int, bool, bool]) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    shots: list[dict[str, Any]] = []
    media: dict[str, bytes] = {}
    for index, image, audio in specs:
        image_path = f"assets/shots/{ref}/{index}_key_frame.png" if image else None
        audio_path = f"assets/shots/{ref}/{index}_audio.wav" if audio else None
        if image_path:
            media[image_path] = png_bytes(rgb=(index * 40, len(media), 7))
        if audio_path:
            media[audio_path] = wav_bytes(frames=40 + index + len(media))
        shots.append({"shotIndex": index, "imagePath": image_path, "audioPath": audio_path, "lines": []})
    return shots, media


def story_manifest() -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest (without ``files``) and the media files it points at."""
    media: dict[str, bytes] = {}

    def scenelet(uid: str, label: str, shots: list[dict[str, Any]], step: dict[str, Any]) -> dict[str, Any]:
        branch_audio = f"assets/branches/{uid}/branch_audio.wav" if step["type"] == "branch" else None
        if branch_audio:
            media[branch_audio] = wav_bytes(frames=99)
        return {
            "id": uid,
            "label": label,
            "description": f"Scene {label}",
            "shots": shots,
            "next": step,
            "branchAudioPath": branch_audio,
        }

    root_shots, found = _shots(ROOT, (1, True, True), (2, True, False))
    media |= found
    left_shots, found = _shots(LEFT, (1, False, True))
    media |= found
    end_shots, found = _shots(END, (1, True, True))
    media |= found
    right_shots, found = _shots(RIGHT, (1, True, False))
    media |= found
    branch = {
        "type": "branch",
        "choicePrompt": "Which way?",
        "choices": [{"sceneletId": LEFT, "label": "Left"}, {"sceneletId": RIGHT, "label": "Right"}],
    }
    scenelets = [
        scenelet(ROOT, "scenelet-1", root_shots, branch),
        scenelet(LEFT, "scenelet-2", left_shots, {"type": "linear", "sceneletId": END}),
        scenelet(END, "scenelet-3", end_shots, {"type": "terminal"}),
        scenelet(RIGHT, "scenelet-4", right_shots, {"type": "incomplete"}),
    ]
    media["assets/music/Night Watch.m4a"] = m4a_bytes()
    media["assets/music/Storm- Rising.m4a"] = m4a_bytes()
    music = {
        "cues": [
            {"cueName": "Night Watch", "sceneletIds": [ROOT, LEFT], "audioPath": "assets/music/Night Watch.m4a"},
            {"cueName": "Storm: Rising", "sceneletIds": [END], "audioPath": "assets/music/Storm- Rising.m4a"},
        ],
        "sceneletCueMap": {ROOT: "Night Watch", LEFT: "Night Watch", END: "Storm: Rising"},
    }
    manifest = {
        "format": "story-bundle",
        "formatVersion": 1,
        "generator": "bundler 0.1.0",
        "metadata": {"storyId": STORY_ID, "title": "The Lantern Keeper", "exportedAt": EXPORTED_AT},
        "rootSceneletId": ROOT,
        "scenelets": scenelets,
        "music": music,
    }
    return manifest, media


def make_bundle(out_dir: Path, story_id: str = STORY_ID) -> Path:
    """Write the bundle to ``out_dir/<story_id>/`` and return that folder."""
    manifest, media = story_manifest()
    manifest["metadata"]["storyId"] = story_id
    media["index.html"] = player_for(manifest)
    bundle = out_dir / story_id
    for path, content in media.items():
        target = bundle / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    manifest["files"] = [
        {
            "path": path,
            "bytes": len(media[path]),
            "sha256": hashlib.sha256(media[path]).hexdigest(),
            "mediaType": MEDIA_TYPES[Path(path).suffix],
        }
        for path in sorted(media)
    ]
    write_manifest(bundle, manifest)
    return bundle


def player_for(manifest: dict[str, Any]) -> bytes:
    """The real player for ``manifest`` (it embeds the manifest without ``files``)."""
    from bundler.player import render_player

    return render_player({k: v for k, v in manifest.items() if k != "files"}).encode("utf-8")


def read_manifest(bundle: Path) -> dict[str, Any]:
    return dict(json.loads((bundle / "manifest.json").read_text("utf-8")))


def write_manifest(bundle: Path, manifest: dict[str, Any]) -> None:
    """Write manifest.json and a matching SHA256SUMS with the bundler's own writers."""
    text = dumps(manifest)
    (bundle / "manifest.json").write_text(text, "utf-8")
    entries = [FileEntry(e["path"], e["bytes"], e["sha256"], e["mediaType"]) for e in manifest["files"]]
    data = text.encode("utf-8")
    entries.append(FileEntry("manifest.json", len(data), hashlib.sha256(data).hexdigest(), "application/json"))
    (bundle / "SHA256SUMS").write_text(sha256sums(entries), "utf-8")


def edit_manifest(bundle: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``change`` to the manifest and re-sign it, as a buggy or tampering writer would."""
    manifest = read_manifest(bundle)
    change(manifest)
    _sync_player(bundle, manifest)
    write_manifest(bundle, manifest)


def _sync_player(bundle: Path, manifest: dict[str, Any]) -> None:
    """A writer that tampers with the manifest keeps the player's copy in step (``verify`` compares them)."""
    player = bundle / "index.html"
    if not player.is_file():
        return
    old_sha = hashlib.sha256(player.read_bytes()).hexdigest()
    data = player_for(manifest)
    player.write_bytes(data)
    files = manifest.get("files")
    for entry in files if isinstance(files, list) else ():
        if isinstance(entry, dict) and entry.get("path") == "index.html" and entry.get("sha256") == old_sha:
            entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
