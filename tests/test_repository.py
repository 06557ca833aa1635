"""The pipeline's repository API against the real (embedded) PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from bundler.db.repository import (
    Repository,
    RepositoryError,
    SceneletShotsAlreadyExistError,
    init_schema,
)
from bundler.errors import InputError
from bundler.records import NewShot
from tests.conftest import new_database

T0 = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)
PAYLOAD = {"framingAndAngle": "Wide"}


@pytest.fixture
def repo(conn: psycopg.Connection) -> Repository:
    return Repository(conn)


def make_story(repo: Repository, scenelets: int = 1) -> tuple[str, list[str]]:
    """A story with a chain of ``scenelets`` scenelets; returns (story id, scenelet ids)."""
    story_id = repo.create_story("Repo Story", "prompt", created_at=T0)
    ids: list[str] = []
    for n in range(scenelets):
        ids.append(
            repo.create_scenelet(
                story_id,
                {"description": f"scene {n}", "shot_suggestions": []},
                parent_id=ids[-1] if ids else None,
                created_at=T0 + timedelta(minutes=n),
            )
        )
    return story_id, ids


def shot_count(conn: psycopg.Connection) -> int:
    row = conn.execute("select count(*) from shots").fetchone()
    assert row is not None
    return int(row[0])


# --------------------------------------------------------------------------- create_scenelet_shots


BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("blank story id", {"story_id": "  "}, "Story id must be provided."),
    ("story id not a UUID", {"story_id": "story-1"}, "Story id 'story-1' is not a UUID."),
    ("blank scenelet ref", {"scenelet_ref": ""}, "Scenelet reference must be provided."),
    ("ref not a UUID", {"scenelet_ref": "scenelet-1"}, "Scenelet reference 'scenelet-1' is not a UUID."),
    ("blank label", {"scenelet_id": " "}, "Scenelet id must be provided to persist shots."),
    ("sequence zero", {"scenelet_sequence": 0}, "Scenelet sequence must be a positive integer."),
    ("sequence negative", {"scenelet_sequence": -2}, "Scenelet sequence must be a positive integer."),
    ("sequence boolean", {"scenelet_sequence": True}, "Scenelet sequence must be a positive integer."),
    ("sequence float", {"scenelet_sequence": 1.0}, "Scenelet sequence must be a positive integer."),
    ("no shots", {"shots": []}, "At least one shot must be provided for persistence."),
    ("shot index zero", {"shots": [NewShot(0, PAYLOAD)]}, "Shot 1: shot index must be a positive integer."),
    (
        "second shot index boolean",
        {"shots": [NewShot(1, PAYLOAD), NewShot(True, PAYLOAD)]},
        "Shot 2: shot index must be a positive integer.",
    ),
    (
        "payload missing",
        {"shots": [NewShot(1, PAYLOAD), NewShot(2, None)]},
        "Shot 2 storyboard payload must be provided.",
    ),
    ("duplicate index", {"shots": [NewShot(3, PAYLOAD), NewShot(3, PAYLOAD)]}, "Duplicate shot index in scenelet"),
]


@pytest.fixture(scope="module")
def shared_conn(pg_admin_uri: str) -> Iterator[psycopg.Connection]:
    """One database for the refusals: each test checks that no shot was written."""
    with psycopg.connect(new_database(pg_admin_uri).conninfo, autocommit=True) as connection:
        yield connection


@pytest.mark.parametrize(("case", "override", "message"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_create_scenelet_shots_rejects_bad_input_and_writes_nothing(
    shared_conn: psycopg.Connection, case: str, override: dict[str, Any], message: str
) -> None:
    conn, repo = shared_conn, Repository(shared_conn)
    story_id, (ref,) = make_story(repo)
    call: dict[str, Any] = {
        "story_id": story_id,
        "scenelet_ref": ref,
        "scenelet_id": "scenelet-1",
        "scenelet_sequence": 1,
        "shots": [NewShot(1, PAYLOAD)],
    } | override

    with pytest.raises(RepositoryError) as caught:
        repo.create_scenelet_shots(**call)

    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, InputError)
    assert shot_count(conn) == 0


def test_create_scenelet_shots_stores_every_column(repo: Repository) -> None:
    story_id, (ref,) = make_story(repo)

    repo.create_scenelet_shots(
        f"  {story_id.upper()} ",  # ids are trimmed and canonicalised
        ref,
        " scenelet-1 ",
        1,
        [
            NewShot(2, {"b": [1, 2]}, key_frame_image_path="s/shot-2.png", audio_file_path="N/A"),
            NewShot(1, PAYLOAD, audio_file_path="generated/s/1_audio.wav", video_file_path="v.mp4"),
        ],
    )

    shots = repo.get_shots_by_scenelet_ref(ref)
    assert [(s.shot_index, s.scenelet_label, s.scenelet_sequence, s.story_id) for s in shots] == [
        (1, "scenelet-1", 1, story_id),
        (2, "scenelet-1", 1, story_id),
    ]
    assert (shots[0].storyboard_payload, shots[0].key_frame_image_path) == (PAYLOAD, None)
    assert (shots[0].audio_file_path, shots[0].video_file_path) == ("generated/s/1_audio.wav", "v.mp4")
    assert (shots[1].storyboard_payload, shots[1].key_frame_image_path, shots[1].audio_file_path) == (
        {"b": [1, 2]},
        "s/shot-2.png",
        "N/A",
    )
    assert shots[0].created_at is not None and shots[0].updated_at is not None


def test_create_scenelet_shots_refuses_a_scenelet_that_has_shots(repo: Repository, conn: psycopg.Connection) -> None:
    story_id, (ref,) = make_story(repo)
    repo.create_scenelet_shots(story_id, ref, "scenelet-1", 1, [NewShot(1, PAYLOAD)])

    with pytest.raises(SceneletShotsAlreadyExistError) as caught:
        # even under another label: existence is checked on the UUID, not on the label
        repo.create_scenelet_shots(story_id, ref, "scenelet-5", 5, [NewShot(2, PAYLOAD)])

    assert str(caught.value) == f"Shots already exist for story {story_id} scenelet scenelet-5."
    assert shot_count(conn) == 1


def test_create_scenelet_shots_is_all_or_nothing(repo: Repository, conn: psycopg.Connection) -> None:
    story_id, (first, second) = make_story(repo, 2)
    repo.create_scenelet_shots(story_id, first, "scenelet-1", 1, [NewShot(1, PAYLOAD)])

    # shot 5 is fine, shot 1 collides with the unique (story, label, index) of the first scenelet
    with pytest.raises(psycopg.errors.UniqueViolation):
        repo.create_scenelet_shots(story_id, second, "scenelet-1", 2, [NewShot(5, PAYLOAD), NewShot(1, PAYLOAD)])

    assert repo.get_shots_by_scenelet_ref(second) == []
    assert shot_count(conn) == 1


def test_create_scenelet_shots_needs_an_existing_scenelet(repo: Repository, conn: psycopg.Connection) -> None:
    story_id, _ = make_story(repo)

    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        repo.create_scenelet_shots(
            story_id, "00000000-0000-4000-8000-0000000000aa", "scenelet-9", 9, [NewShot(1, PAYLOAD)]
        )

    assert shot_count(conn) == 0


# --------------------------------------------------------------------------- reading shots


def test_get_shots_by_story_is_keyed_by_uuid_and_ordered_by_sequence_ref_index(repo: Repository) -> None:
    story_id, ids = make_story(repo, 4)
    a, b, c, d = ids
    # inserted out of order; b and c share sequence 2 (drift), so the ref text breaks the tie
    repo.create_scenelet_shots(story_id, d, "scenelet-10", 10, [NewShot(1, PAYLOAD)])
    repo.create_scenelet_shots(story_id, c, "scenelet-3", 2, [NewShot(2, PAYLOAD), NewShot(1, PAYLOAD)])
    repo.create_scenelet_shots(story_id, b, "scenelet-2", 2, [NewShot(3, PAYLOAD), NewShot(1, PAYLOAD)])
    repo.create_scenelet_shots(story_id, a, "scenelet-1", 1, [NewShot(1, PAYLOAD)])
    other_story, (other,) = make_story(repo)
    repo.create_scenelet_shots(other_story, other, "scenelet-1", 1, [NewShot(1, PAYLOAD)])

    grouped = repo.get_shots_by_story(story_id)

    assert list(grouped) == [a, *sorted([b, c]), d]  # numeric sequence: 10 after 2
    assert [s.shot_index for s in grouped[b]] == [1, 3]
    assert [s.shot_index for s in grouped[c]] == [1, 2]
    assert all(s.scenelet_ref == ref for ref, shots in grouped.items() for s in shots)
    assert other not in grouped


def test_get_shots_by_story_is_empty_for_a_story_without_shots(repo: Repository) -> None:
    story_id, _ = make_story(repo)

    assert repo.get_shots_by_story(story_id) == {}
    assert repo.get_shots_by_story("00000000-0000-4000-8000-0000000000ee") == {}


def test_get_shots_by_scenelet_ref_orders_by_index(repo: Repository) -> None:
    story_id, (ref,) = make_story(repo)
    repo.create_scenelet_shots(story_id, ref, "scenelet-1", 1, [NewShot(i, {"i": i}) for i in (3, 10, 1, 2)])

    shots = repo.get_shots_by_scenelet_ref(f" {ref} ")

    assert [s.shot_index for s in shots] == [1, 2, 3, 10]
    assert [s.storyboard_payload for s in shots] == [{"i": 1}, {"i": 2}, {"i": 3}, {"i": 10}]


@pytest.mark.parametrize(("ref", "message"), [("", "must be provided"), ("nope", "is not a UUID")])
def test_get_shots_by_scenelet_ref_rejects_bad_refs(repo: Repository, ref: str, message: str) -> None:
    with pytest.raises(RepositoryError, match=message):
        repo.get_shots_by_scenelet_ref(ref)


# --------------------------------------------------------------------------- cascades and schema


def test_deleting_a_scenelet_cascades_to_its_subtree_and_shots(repo: Repository, conn: psycopg.Connection) -> None:
    story_id, (root, child, grandchild) = make_story(repo, 3)
    for n, ref in enumerate((root, child, grandchild), start=1):
        repo.create_scenelet_shots(story_id, ref, f"scenelet-{n}", n, [NewShot(1, PAYLOAD), NewShot(2, PAYLOAD)])

    conn.execute("delete from scenelets where id = %s", (child,))

    assert list(repo.get_shots_by_story(story_id)) == [root]
    assert [s.id for s in repo.list_scenelets(story_id)] == [root]
    assert shot_count(conn) == 2


def test_deleting_a_story_cascades_to_everything(repo: Repository, conn: psycopg.Connection) -> None:
    story_id, (ref,) = make_story(repo)
    repo.create_scenelet_shots(story_id, ref, "scenelet-1", 1, [NewShot(1, PAYLOAD)])

    conn.execute("delete from stories where id = %s", (story_id,))

    assert repo.get_story(story_id) is None
    assert conn.execute("select count(*) from scenelets").fetchone() == (0,)
    assert shot_count(conn) == 0


def test_create_story_and_scenelet_round_trip(repo: Repository) -> None:
    story_id = repo.create_story(
        "  Title  ", "prompt", story_id="AAAAAAAA-0000-4000-8000-000000000001", audio_design_document={"x": 1}
    )
    scenelet_id = repo.create_scenelet(
        story_id,
        {"description": "d"},
        choice_prompt="Which?",
        is_branch_point=True,
        branch_audio_file_path="N/A",
        created_at=T0,
    )

    story = repo.get_story(story_id)
    (scenelet,) = repo.list_scenelets(story_id)
    assert story_id == "aaaaaaaa-0000-4000-8000-000000000001"
    assert story is not None and (story.display_name, story.audio_design_document) == ("  Title  ", {"x": 1})
    assert (scenelet.id, scenelet.parent_id, scenelet.choice_prompt) == (scenelet_id, None, "Which?")
    assert (scenelet.is_branch_point, scenelet.is_terminal_node, scenelet.branch_audio_file_path) == (
        True,
        False,
        "N/A",
    )
    assert scenelet.created_at == T0


def test_create_story_rejects_a_blank_title(repo: Repository) -> None:
    with pytest.raises(RepositoryError, match="display name must be a non-empty string"):
        repo.create_story("   ", "prompt")


def test_display_name_upper_is_generated(repo: Repository, conn: psycopg.Connection) -> None:
    story_id = repo.create_story("Lantern", "prompt")

    assert conn.execute("select display_name_upper from stories where id = %s", (story_id,)).fetchone() == ("LANTERN",)


def test_db_init_is_idempotent_and_keeps_data(repo: Repository, conn: psycopg.Connection) -> None:
    story_id, (ref,) = make_story(repo)
    repo.create_scenelet_shots(story_id, ref, "scenelet-1", 1, [NewShot(1, PAYLOAD)])

    init_schema(conn)
    init_schema(conn)

    assert [s.shot_index for s in repo.get_shots_by_scenelet_ref(ref)] == [1]
    tables = conn.execute(
        "select table_name from information_schema.tables where table_schema = 'public' order by 1"
    ).fetchall()
    assert tables == [("scenelets",), ("shots",), ("stories",)]
