"""A 10,000-scenelet / 30,000-shot manifest built in memory, rendered into a player.

The player's load cost depends on the manifest's size and shape only, so the
big-story tests need no database and no media: the story has the shape of the
bench's player story (chains of 4 scenelets, branches of 2, 3 shots each with
one ~100-character caption line) and its media files are simply absent, which
the player shows as placeholders.
"""

from __future__ import annotations

import uuid
from collections import deque
from pathlib import Path
from typing import Any

from bundler.player import render_player

LINE = "the lamp went dark. " * 5


def _id(serial: int) -> str:
    return str(uuid.UUID(int=(7 << 64) | serial, version=4))


def big_manifest(scenelets: int = 10_000, shots: int = 3, chain: int = 4) -> dict[str, Any]:
    """A manifest of ``scenelets`` scenelets: chains of ``chain`` that end in a two-way branch."""
    ids = [_id(n) for n in range(1, scenelets + 1)]
    nexts: list[dict[str, Any]] = [{"type": "terminal"} for _ in ids]
    used = 1
    ends: deque[int] = deque([0])
    while ends and used < scenelets:
        at = ends.popleft()
        for _ in range(chain - 1):
            if used >= scenelets:
                break
            nexts[at] = {"type": "linear", "sceneletId": ids[used]}
            at, used = used, used + 1
        if used + 2 <= scenelets:
            choices = [{"label": f"Choice {n + 1}", "sceneletId": ids[used + n]} for n in range(2)]
            nexts[at] = {"type": "branch", "choicePrompt": "What now?", "choices": choices}
            ends.extend((used, used + 1))
            used += 2
    records = []
    for n, uid in enumerate(ids):
        folder = f"assets/shots/{uid}"
        records.append(
            {
                "id": uid,
                "label": f"scenelet-{n + 1}",
                "description": f"Scene {n + 1} of the big story.",
                "shots": [
                    {
                        "shotIndex": s,
                        "imagePath": f"{folder}/shot-{s}_key_frame.png",
                        "audioPath": f"{folder}/{s}_audio.wav",
                        "lines": [{"speaker": "narrator", "text": f"Line {s}: {LINE}"}],
                    }
                    for s in range(1, shots + 1)
                ],
                "next": nexts[n],
                "branchAudioPath": f"assets/branches/{uid}/branch_audio.wav" if nexts[n]["type"] == "branch" else None,
            }
        )
    return {
        "format": "story-bundle",
        "formatVersion": 1,
        "generator": "bundler test",
        "metadata": {"storyId": _id(0), "title": "A Very Big Story", "exportedAt": "2026-02-02T00:00:00Z"},
        "rootSceneletId": ids[0],
        "scenelets": records,
        "music": {"cues": [], "sceneletCueMap": {}},
    }


def write_big_player(folder: Path, scenelets: int = 10_000) -> Path:
    """``index.html`` of the big story in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "index.html"
    target.write_text(render_player(big_manifest(scenelets)), encoding="utf-8")
    return target
