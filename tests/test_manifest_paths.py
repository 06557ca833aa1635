"""Helpers to read every path a manifest references."""

from __future__ import annotations

from typing import Any


def referenced_paths(manifest: dict[str, Any]) -> set[str]:
    paths = set()
    for scenelet in manifest["scenelets"]:
        for shot in scenelet["shots"]:
            paths.update(p for p in (shot["imagePath"], shot["audioPath"]) if p)
        if scenelet["branchAudioPath"]:
            paths.add(scenelet["branchAudioPath"])
    paths.update(cue["audioPath"] for cue in manifest["music"]["cues"])
    return paths


def test_referenced_paths_reads_every_kind() -> None:
    manifest = {
        "scenelets": [
            {"shots": [{"imagePath": "a.png", "audioPath": None}], "branchAudioPath": "b.wav"},
            {"shots": [{"imagePath": None, "audioPath": "c.wav"}], "branchAudioPath": None},
        ],
        "music": {"cues": [{"audioPath": "m.m4a"}]},
    }
    assert referenced_paths(manifest) == {"a.png", "b.wav", "c.wav", "m.m4a"}
