"""The pure planner: tree rules, next, reachability, music and problems (docs/design.md §2-3)."""

from __future__ import annotations

import pytest

from bundler.pipeline.plan.planner import analyze, plan
from bundler.pipeline.plan.types import BundlePlan, MediaRequest, MediaStatus
from bundler.storage.local.files import SourceFile
from tests.builders import ShotSpec, StoryBuilder, without_shots

EXPORTED = "2026-03-01T12:00:00.000Z"


def all_present(requests: frozenset[MediaRequest], missing: set[str] = frozenset()) -> dict[MediaRequest, MediaStatus]:
    """Every requested file exists with the right format, except ``missing`` ones."""
    return {
        r: MediaStatus(code="missing-media", detail="is missing (no such file under the assets root)")
        if r.relative in missing
        else MediaStatus(source=SourceFile(f"/assets/{r.relative}", 100, 0))
        for r in requests
    }


def plan_of(builder: StoryBuilder, missing: set[str] = frozenset()) -> BundlePlan:
    analysis = analyze(builder.snapshot())
    return plan(analysis, all_present(analysis.requests, missing), EXPORTED)


def codes(bundle: BundlePlan) -> list[str]:
    return [p.code for p in bundle.problems]


def nexts(bundle: BundlePlan) -> dict[str, dict[str, object]]:
    return {s.label: s.next.to_json() for s in bundle.scenelets}


def test_linear_story() -> None:
    b = StoryBuilder()
    root = b.scenelet(shots=2)
    middle = b.scenelet(root)
    end = b.scenelet(middle, terminal=True)
    bundle = plan_of(b)
    assert [s.id for s in bundle.scenelets] == [root, middle, end]
    assert nexts(bundle) == {
        "scenelet-1": {"type": "linear", "sceneletId": middle},
        "scenelet-2": {"type": "linear", "sceneletId": end},
        "scenelet-3": {"type": "terminal"},
    }
    assert bundle.problems == ()
    first = bundle.scenelets[0].shots[0].to_json()
    assert first == {
        "shotIndex": 1,
        "imagePath": f"assets/shots/{root}/1_key_frame.png",
        "audioPath": f"assets/shots/{root}/1_audio.wav",
        "lines": [],
    }
    assert len(bundle.files()) == 2 * 4


def test_branch_with_two_playable_children_in_script_order() -> None:
    b = StoryBuilder()
    root = b.scenelet(prompt="Which way?")
    left = b.scenelet(root, choice_label="Go left", terminal=True)
    right = b.scenelet(root, choice_label="Go right", terminal=True)
    bundle = plan_of(b)
    assert nexts(bundle)["scenelet-1"] == {
        "type": "branch",
        "choicePrompt": "Which way?",
        "choices": [{"sceneletId": left, "label": "Go left"}, {"sceneletId": right, "label": "Go right"}],
    }
    root_plan = bundle.scenelets[0]
    assert root_plan.branch_audio and root_plan.branch_audio.target == f"assets/branches/{root}/branch_audio.wav"
    assert bundle.problems == ()


def test_branch_with_one_playable_child_becomes_linear_without_branch_audio() -> None:
    b = StoryBuilder()
    root = b.scenelet(prompt="Which way?")
    left = b.scenelet(root, choice_label="Go left", terminal=True)
    right = b.scenelet(root, choice_label="Go right", terminal=True)
    without_shots(b, right)
    bundle = plan_of(b)
    assert nexts(bundle)["scenelet-1"] == {"type": "linear", "sceneletId": left}
    assert bundle.scenelets[0].branch_audio is None
    assert codes(bundle) == ["unplayable-scenelet"]
    assert bundle.problems[0].scenelet_ref == right and bundle.problems[0].scenelet_label == "scenelet-3"


def test_branch_with_no_playable_children_is_incomplete() -> None:
    b = StoryBuilder()
    root = b.scenelet(prompt="Which way?")
    for label in ("A", "B"):
        without_shots(b, b.scenelet(root, choice_label=label))
    bundle = plan_of(b)
    assert nexts(bundle) == {"scenelet-1": {"type": "incomplete"}}
    assert sorted(codes(bundle)) == ["incomplete-path", "unplayable-scenelet", "unplayable-scenelet"]
    assert not bundle.errors


def test_non_terminal_leaf_is_incomplete_with_warning() -> None:
    b = StoryBuilder()
    b.scenelet()
    bundle = plan_of(b)
    assert nexts(bundle) == {"scenelet-1": {"type": "incomplete"}}
    assert codes(bundle) == ["incomplete-path"]
    assert bundle.problems[0].severity == "warning"


def test_root_without_media_names_uuid_and_label() -> None:
    b = StoryBuilder()
    root = b.scenelet(shots=[ShotSpec(1, image=None, audio="N/A")])
    b.scenelet(root, terminal=True)
    bundle = plan_of(b)
    assert bundle.scenelets == ()
    [problem] = bundle.errors
    assert problem.code == "root-not-playable"
    assert problem.message == f"Root scenelet {root} (scenelet-1) does not have playable assets."


def test_multiple_roots_are_each_reported() -> None:
    b = StoryBuilder()
    first = b.scenelet(terminal=True)
    second = b.scenelet(terminal=True)
    bundle = plan_of(b)
    assert [p.code for p in bundle.errors] == ["multiple-roots", "multiple-roots"]
    assert {p.scenelet_ref for p in bundle.errors} == {first, second}
    assert bundle.root_id is None and bundle.scenelets == ()


def test_parent_cycle_is_an_error() -> None:
    b = StoryBuilder()
    root = b.scenelet(terminal=True)
    x, y = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"
    b.scenelet(y, scenelet_id=x)
    b.scenelet(x, scenelet_id=y)
    bundle = plan_of(b)
    assert [p.code for p in bundle.errors] == ["parent-cycle"]
    assert x in bundle.errors[0].message and y in bundle.errors[0].message
    assert [s.id for s in bundle.scenelets] == [root]


def test_parent_from_another_story_is_an_error() -> None:
    b = StoryBuilder()
    b.scenelet(terminal=True)
    stray = b.scenelet("11111111-1111-4111-8111-111111111111")
    bundle = plan_of(b)
    assert [(p.code, p.scenelet_ref) for p in bundle.errors] == [("foreign-parent", stray)]


def test_label_drift_is_a_warning_and_bundle_keys_by_uuid() -> None:
    b = StoryBuilder()
    root = b.scenelet()
    child = b.scenelet(root, terminal=True, shots=[ShotSpec(1, stored_label="scenelet-7")])
    bundle = plan_of(b)
    assert codes(bundle) == ["label-drift"]
    drift = bundle.problems[0]
    assert (drift.scenelet_ref, drift.scenelet_label) == (child, "scenelet-2")
    assert "scenelet-7" in drift.message
    assert bundle.scenelets[1].shots[0].image.target.startswith(f"assets/shots/{child}/")  # type: ignore[union-attr]


def test_na_audio_and_generated_prefix() -> None:
    b = StoryBuilder()
    root = b.scenelet(
        terminal=True,
        shots=[
            ShotSpec(1, audio=" n/a "),
            ShotSpec(2, image=None),
            ShotSpec(3, image="/generated/x/k.png", audio=None),
        ],
    )
    bundle = plan_of(b)
    shots = [s.to_json() for s in bundle.scenelets[0].shots]
    assert shots[0]["audioPath"] is None and shots[0]["imagePath"]
    assert shots[1]["imagePath"] is None and shots[1]["audioPath"] == f"assets/shots/{root}/2_audio.wav"
    assert shots[2]["imagePath"] == f"assets/shots/{root}/3_key_frame.png"
    sources = {f.target: f.source.path for f in bundle.files()}
    assert sources[f"assets/shots/{root}/3_key_frame.png"] == "/assets/x/k.png"
    assert bundle.problems == ()


def test_shot_without_any_media_is_left_out() -> None:
    b = StoryBuilder()
    b.scenelet(terminal=True, shots=[ShotSpec(1, image=None, audio="N/A"), ShotSpec(2)])
    bundle = plan_of(b)
    assert [s.shot_index for s in bundle.scenelets[0].shots] == [2]


@pytest.mark.parametrize(
    "stored",
    ["../outside.png", "generated/../../etc/passwd", "/etc/passwd/../x.png", "a/../../b.png", "C:\\x.png"],
)
def test_traversal_paths_are_unsafe_errors(stored: str) -> None:
    b = StoryBuilder()
    root = b.scenelet(terminal=True, shots=[ShotSpec(1, image=stored)])
    bundle = plan_of(b)
    [problem] = bundle.errors
    assert (problem.code, problem.scenelet_ref, problem.shot_index, problem.path) == (
        "unsafe-asset-path",
        root,
        1,
        stored,
    )


def test_missing_media_is_a_warning_and_drops_that_file() -> None:
    b = StoryBuilder()
    root = b.scenelet(terminal=True, shots=[ShotSpec(1), ShotSpec(2)])
    missing = f"{b.story_id}/shots/{root}/shot-2_key_frame.png"
    bundle = plan_of(b, missing={missing})
    assert [(p.code, p.severity, p.shot_index) for p in bundle.problems] == [("missing-media", "warning", 2)]
    assert bundle.scenelets[0].shots[1].to_json()["imagePath"] is None


def test_blank_prompt_and_blank_label_are_errors() -> None:
    b = StoryBuilder()
    root = b.scenelet(prompt="   ")
    b.scenelet(root, choice_label="Fine", terminal=True)
    blank = b.scenelet(root, choice_label=" ", terminal=True)
    bundle = plan_of(b)
    assert sorted((p.code, p.scenelet_ref) for p in bundle.errors) == sorted(
        [("blank-choice-prompt", root), ("blank-choice-label", blank)]
    )


def test_linear_scenelet_with_two_playable_children_is_an_error() -> None:
    b = StoryBuilder()
    root = b.scenelet()
    b.scenelet(root, terminal=True)
    b.scenelet(root, terminal=True)
    assert [p.code for p in plan_of(b).errors] == ["multiple-children"]


def test_unplayable_subtree_is_not_bundled() -> None:
    b = StoryBuilder()
    root = b.scenelet()
    hollow = b.scenelet(root)
    without_shots(b, hollow)
    b.scenelet(hollow, terminal=True)  # playable, but behind an unplayable parent
    bundle = plan_of(b)
    assert [s.id for s in bundle.scenelets] == [root]
    assert "1 descendant" in next(p.message for p in bundle.problems if p.code == "unplayable-scenelet")


def test_music_cues_resolve_labels_and_keep_first_claim() -> None:
    b = StoryBuilder()
    root = b.scenelet()
    second = b.scenelet(root)
    third = b.scenelet(second, terminal=True)
    b.music(("Opening: Dawn", ["scenelet-1", "scenelet-3"]), ("Theme", ["scenelet-2", "scenelet-3", "scenelet-9"]))
    bundle = plan_of(b)
    assert [c.to_json() for c in bundle.cues] == [
        {"cueName": "Opening: Dawn", "sceneletIds": [root, third], "audioPath": "assets/music/Opening- Dawn.m4a"},
        {"cueName": "Theme", "sceneletIds": [second], "audioPath": "assets/music/Theme.m4a"},
    ]
    assert sorted(codes(bundle)) == ["music-cue-conflict", "unknown-music-scenelet"]


def test_music_cue_with_missing_file_is_dropped_with_warning() -> None:
    b = StoryBuilder()
    b.scenelet(terminal=True)
    b.music(("Gone", ["scenelet-1"]))
    bundle = plan_of(b, missing={f"{b.story_id}/music/Gone.m4a"})
    assert bundle.cues == ()
    assert codes(bundle) == ["missing-media"]


def test_colliding_cue_file_names_get_suffixes() -> None:
    b = StoryBuilder()
    root = b.scenelet()
    child = b.scenelet(root)
    last = b.scenelet(child, terminal=True)
    b.music(("A/B", ["scenelet-1"]), ("A:B", ["scenelet-2"]), ("  A?B ", ["scenelet-3"]))
    paths = [c.file.target for c in plan_of(b).cues]
    assert paths == ["assets/music/A-B.m4a", "assets/music/A-B-2.m4a", "assets/music/A-B-3.m4a"]
    assert last


def test_unsafe_cue_name_is_an_error() -> None:
    b = StoryBuilder()
    b.scenelet(terminal=True)
    b.music(("../../escape", ["scenelet-1"]), write=False)
    assert [p.code for p in plan_of(b).errors] == ["unsafe-asset-path"]


def test_deep_linear_tree_needs_no_recursion() -> None:
    b = StoryBuilder()
    parent = b.scenelet()
    for _ in range(5000):
        parent = b.scenelet(parent)
    bundle = plan_of(b)
    assert len(bundle.scenelets) == 5001
    assert bundle.scenelets[-1].label == "scenelet-5001"


def test_problems_behind_an_unplayable_scenelet_are_reported() -> None:
    b = StoryBuilder()
    root = b.scenelet()
    hollow = b.scenelet(root, prompt="Which?", branch_audio="../../etc/branch.wav")
    without_shots(b, hollow)
    hidden = b.scenelet(
        hollow,
        choice_label="Go",
        terminal=True,
        shots=[ShotSpec(1, image="../../etc/passwd", stored_label="scenelet-7")],
    )
    bundle = plan_of(b)
    assert [s.id for s in bundle.scenelets] == [root]
    found = {(p.code, p.scenelet_ref, p.path) for p in bundle.problems}
    assert ("unsafe-asset-path", hidden, "../../etc/passwd") in found
    assert ("unsafe-asset-path", hollow, "../../etc/branch.wav") in found
    assert ("label-drift", hidden, None) in found
    assert len(bundle.problems) == len(set(bundle.problems))  # each once
    # no disk facts were asked for the hidden subtree beyond what analyze requests
    assert not any(r.relative.startswith("..") for r in analyze(b.snapshot()).requests)


def test_bundled_unsafe_path_is_reported_once() -> None:
    b = StoryBuilder()
    b.scenelet(terminal=True, shots=[ShotSpec(1), ShotSpec(2, image="../x.png", stored_label="scenelet-3")])
    bundle = plan_of(b)
    assert sorted(codes(bundle)) == ["label-drift", "unsafe-asset-path"]
