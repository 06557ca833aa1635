"""The narration script (`lines`, docs/design.md §3) is extracted by the database from
real ``storyboard_payload`` rows of every shape the pipeline may leave."""

from __future__ import annotations

from typing import Any

import psycopg

from bundler.db.repository import Repository
from bundler.pipeline.load import load_snapshot
from bundler.records import NewShot

NARRATION = [
    {"source": "narrator", "line": "The storm had been building.", "delivery": "hushed"},
    {"source": "mara", "line": "   "},  # blank: skipped
    {"line": "  No speaker given.  "},
    "not an object",
    {"source": 7, "line": "A speaker that is no string."},
    {"source": "mara", "line": 5},  # not a string: skipped
    {"source": "mara"},  # no line: skipped
    {"source": " mara ", "line": "Last one."},
]


PAYLOADS: list[tuple[Any, list[tuple[str, str]]]] = [
    (
        {"audioAndNarrative": NARRATION},
        [
            ("narrator", "The storm had been building."),
            ("", "No speaker given."),
            ("", "A speaker that is no string."),
            ("mara", "Last one."),
        ],
    ),
    ({"audio_and_narrative": [{"source": "mara", "line": "Snake case."}]}, [("mara", "Snake case.")]),
    # the camelCase key holds no list: the snake_case one is used
    ({"audioAndNarrative": "oops", "audio_and_narrative": [{"source": "a", "line": "B"}]}, [("a", "B")]),
    ({"audioAndNarrative": {"line": "an object, not a list"}}, []),
    ({"framingAndAngle": "wide"}, []),
    ({"audioAndNarrative": []}, []),
    ([{"audioAndNarrative": [{"line": "payload is a list"}]}], []),
    ("a string payload", []),
    (42, []),
    # replaced below by a payload nested thousands deep, which Python could not even encode
    ({"deep": "placeholder"}, [("n", "Deep payload.")]),
]
DEPTH = 5000


def test_lines_come_from_the_payload_in_order(conn: psycopg.Connection) -> None:
    repo = Repository(conn)
    story_id = repo.create_story("Lines", "prompt")
    root = repo.create_scenelet(story_id, {"description": "d"}, is_terminal_node=True)
    shots = [NewShot(n, payload, f"{n}.png") for n, (payload, _) in enumerate(PAYLOADS, start=1)]
    repo.create_scenelet_shots(story_id, root, "scenelet-1", 1, shots)
    conn.execute(
        'update shots set storyboard_payload = (\'{"audioAndNarrative": [{"source": "n", '
        "\"line\": \"Deep payload.\"}], \"deep\": ' || repeat('[', %s) || repeat(']', %s) || '}')::jsonb "
        "where story_id = %s and shot_index = %s",
        (DEPTH, DEPTH, story_id, len(PAYLOADS)),
    )
    snapshot = load_snapshot(conn, story_id)
    shots = [shot for group in snapshot.shot_groups for shot in group.shots]
    got = {shot.shot_index: list(shot.lines) for shot in shots}
    assert got == {n: expected for n, (_, expected) in enumerate(PAYLOADS, start=1)}
    assert all(shot.storyboard_payload is None for shot in shots)  # never loaded into Python
    # a check renders no captions: it leaves the scripts in the database, and loads the same shots
    without = load_snapshot(conn, story_id, lines=False)
    bare = [shot for group in without.shot_groups for shot in group.shots]
    assert [shot.lines for shot in bare] == [()] * len(shots)
    assert [(s.shot_index, s.key_frame_image_path, s.audio_file_path) for s in bare] == [
        (s.shot_index, s.key_frame_image_path, s.audio_file_path) for s in shots
    ]
