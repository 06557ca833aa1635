"""Stage 1 against the real PostgreSQL: shots grouped per scenelet by the database, and the planner
deciding exactly what it decides from the individual shot records."""

from __future__ import annotations

import psycopg

from bundler.pipeline.load import load_snapshot
from bundler.pipeline.plan.analysis import default_exported_at
from bundler.pipeline.plan.planner import analyze, plan
from tests.builders import ShotSpec, StoryBuilder
from tests.test_planner import EXPORTED, all_present

# stored paths that mean "no media" to the planner, and look-alikes that must still reach it
NO_MEDIA = [None, "N/A", " n/a ", "", "   ", "N/a"]


def story() -> StoryBuilder:
    builder = StoryBuilder("Load")
    root = builder.scenelet(
        shots=[
            ShotSpec(1),
            ShotSpec(2, image=None, audio="N/A"),
            ShotSpec(3, image="  ", audio=" n/a "),
            ShotSpec(4, image="\tN/A", audio=None),  # tab-padded: the database sends it, the planner skips it
            ShotSpec(5, image="N/A", audio="n/A"),
            ShotSpec(6, image="N/A"),  # narration only
            ShotSpec(7, stored_label="scenelet-9"),  # label drift: a group of its own
            ShotSpec(8, image="../outside.png", audio=None),  # unsafe, reported
        ]
    )
    builder.scenelet(root, shots=[ShotSpec(1, image=None, audio="N/A"), ShotSpec(2, image="", audio="")])
    builder.scenelet(root, terminal=True, shots=[ShotSpec(1, audio="N/A")])
    return builder


def test_shots_come_grouped_and_only_media_free_shots_are_left_out(conn: psycopg.Connection) -> None:
    builder = story()
    builder.insert(conn)
    conn.commit()
    loaded = load_snapshot(conn, builder.story_id)

    root, empty, last = (s.id for s in builder.scenelets)
    groups = {(g.scenelet_ref, g.scenelet_label): g for g in loaded.shot_groups}
    labels = builder.labels()
    main = groups[(root, labels[root])]
    assert main.shot_count == 7
    assert [s.shot_index for s in main.shots] == [1, 4, 6, 8]
    assert groups[(root, "scenelet-9")].shot_count == 1
    assert groups[(empty, labels[empty])].shot_count == 2
    assert groups[(empty, labels[empty])].shots == ()
    assert [s.shot_index for s in groups[(last, labels[last])].shots] == [1]
    assert {s.id: s.description for s in loaded.scenelets} == {s.id: s.description for s in builder.records()}


def test_the_plan_from_the_database_is_the_plan_from_every_shot(conn: psycopg.Connection) -> None:
    builder = story()
    builder.insert(conn)
    conn.commit()
    from_rows = analyze(load_snapshot(conn, builder.story_id))
    from_records = analyze(builder.snapshot())  # every shot, one record each
    assert from_rows.requests == from_records.requests
    planned_rows = plan(from_rows, all_present(from_rows.requests), EXPORTED)
    planned_records = plan(from_records, all_present(from_records.requests), EXPORTED)
    assert planned_rows.scenelets == planned_records.scenelets
    assert planned_rows.problems == planned_records.problems
    assert {p.code for p in planned_rows.problems} >= {"label-drift", "unsafe-asset-path"}
    assert default_exported_at(from_rows.snapshot) == default_exported_at(from_records.snapshot)


def test_description_is_read_only_when_it_is_a_string(conn: psycopg.Connection) -> None:
    builder = StoryBuilder("Descriptions")
    first = builder.scenelet(shots=1)
    second = builder.scenelet(first, shots=1)
    third = builder.scenelet(second, shots=1, terminal=True)
    builder.insert(conn)
    conn.execute("update scenelets set content = '{\"description\": 5}' where id = %s", (second,))
    conn.execute("update scenelets set content = '\"just text\"' where id = %s", (third,))
    conn.commit()
    loaded = {s.id: s.description for s in load_snapshot(conn, builder.story_id).scenelets}
    assert loaded == {first: "Scene 1", second: "", third: ""}
