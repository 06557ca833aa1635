"""Property tests over random trees: the planner's invariants hold for any shape."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bundler.bundle.manifest import manifest_document
from bundler.pipeline.plan.planner import analyze, plan
from bundler.pipeline.plan.tree import build_tree
from tests.builders import ShotSpec, StoryBuilder
from tests.test_planner import EXPORTED, all_present


@st.composite
def random_stories(draw: st.DrawFn) -> tuple[StoryBuilder, set[str]]:
    """A random tree: parents drawn among earlier nodes, random roles and media gaps."""
    b = StoryBuilder()
    size = draw(st.integers(1, 30))
    ids: list[str] = []
    for n in range(size):
        parent = None if n == 0 else ids[draw(st.integers(0, n - 1))]
        shot_count = draw(st.integers(0, 3))
        shots = [
            ShotSpec(
                i, image=draw(st.sampled_from([None, "N/A", ...])), audio=draw(st.sampled_from([None, "N/A", ...]))
            )
            for i in range(1, shot_count + 1)
        ]
        for shot in shots:  # ``...`` stands for "the conventional path"
            shot.image = shot.image if shot.image is not ... else ShotSpec(0).image
            shot.audio = shot.audio if shot.audio is not ... else ShotSpec(0).audio
        ids.append(
            b.scenelet(
                parent,
                shots=shots,
                prompt=draw(st.sampled_from([None, "Choose?"])),
                choice_label=draw(st.sampled_from([None, "", "Take it"])),
                terminal=draw(st.booleans()),
            )
        )
    missing_count = draw(st.integers(0, 3))
    missing = {
        f"{b.story_id}/shots/{ids[draw(st.integers(0, size - 1))]}/shot-1_key_frame.png" for _ in range(missing_count)
    }
    return b, missing


@settings(max_examples=150, deadline=None)
@given(random_stories())
def test_planner_invariants(story: tuple[StoryBuilder, set[str]]) -> None:
    builder, missing = story
    analysis = analyze(builder.snapshot())
    bundle = plan(analysis, all_present(analysis.requests, missing), EXPORTED)
    bundled = [s.id for s in bundle.scenelets]

    # labels are the pre-order numbering of the tree, root first
    tree = build_tree(builder.records())
    assert [tree.labels[i] for i in tree.order] == [f"scenelet-{n}" for n in range(1, len(tree.order) + 1)]
    assert [s.label for s in bundle.scenelets] == [tree.labels[i] for i in bundled]
    assert bundled == [i for i in tree.order if i in set(bundled)]  # emitted in pre-order
    if bundled:
        assert bundled[0] == bundle.root_id

    # every next target is bundled; every bundled scenelet is playable and reachable
    for scenelet in bundle.scenelets:
        assert scenelet.shots
        assert all(shot.image or shot.audio for shot in scenelet.shots)
        assert set(scenelet.next.targets()) <= set(bundled)
        if scenelet.next.type == "branch":
            assert len(scenelet.next.choices) >= 2
        else:
            assert scenelet.branch_audio is None
    reached = {bundle.root_id} | {t for s in bundle.scenelets for t in s.next.targets()}
    if not bundle.errors:  # with errors nothing is written, so orphans there do not matter
        assert set(bundled) <= reached

    # every manifest path is a listed file, and nothing is listed that is not referenced
    from tests.test_manifest_paths import referenced_paths

    files = [f.target for f in bundle.files()]
    document = manifest_document(bundle, [])
    assert referenced_paths(document) == set(files)

    # the root is bundled unless there is an error saying why not
    if not bundle.errors:
        assert bundled
    for problem in bundle.problems:
        assert problem.severity in ("error", "warning")
        assert problem.code and problem.code == problem.code.lower() and " " not in problem.code


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_manifest_writer_matches_the_json_module(document: dict[str, object]) -> None:
    import json

    from bundler.bundle.manifest import dumps

    assert dumps(document) == json.dumps(document, indent=2, ensure_ascii=False) + "\n"
