"""The bundle's profile (DESIGN §3): master (the sources' bytes) or ``--web`` (encoded for viewers
on a network). Pure: the web profile renames key frames and narration and says how their bytes
are made; the manifest's shape, the checks and music stay as the master profile has them."""

from __future__ import annotations

from dataclasses import replace

from bundler.media.encode import KEY_FRAME_SUFFIX, NARRATION_SUFFIX, WebSettings
from bundler.pipeline.plan.types import BundlePlan, Encoding, FileCopy, PlannedScenelet, PlannedShot

# the master profile's suffix of each encoded kind, as the planner names the targets
_MASTER_SUFFIX = {"image": ".png", "audio": ".wav"}


def with_profile(plan: BundlePlan, web: WebSettings | None) -> BundlePlan:
    """``plan`` as the web profile builds it (key frames WebP, narration M4A), or as it is for master."""
    if web is None:
        return plan
    encodings = {"image": Encoding("webp", web), "audio": Encoding("m4a", web)}
    suffixes = {"image": KEY_FRAME_SUFFIX, "audio": NARRATION_SUFFIX}

    def encoded(copy: FileCopy | None) -> FileCopy | None:
        if copy is None or copy.kind not in encodings:
            return copy  # music is played as it is
        stem = copy.target.removesuffix(_MASTER_SUFFIX[copy.kind])
        return replace(copy, target=stem + suffixes[copy.kind], encoding=encodings[copy.kind])

    def scenelet(planned: PlannedScenelet) -> PlannedScenelet:
        shots = tuple(PlannedShot(s.shot_index, encoded(s.image), encoded(s.audio), s.lines) for s in planned.shots)
        return replace(planned, shots=shots, branch_audio=encoded(planned.branch_audio))

    return replace(plan, scenelets=tuple(scenelet(s) for s in plan.scenelets), web=web)
