"""``bundler export``: deterministic YAML, and export -> seed -> export gives the same document."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from bundler.db.connect import DatabaseTarget
from bundler.db.repository import Repository
from bundler.errors import InputError, StoryNotFoundError
from bundler.pipeline.plan.tree import build_tree
from bundler.records import NewShot, SceneletRecord
from bundler.story_yaml.export import export_story
from bundler.story_yaml.seed import seed_file
from tests.cli_helpers import REPORT_META
from tests.conftest import new_database

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "lantern-keeper" / "story.yaml"
EXAMPLE_ID = "7d3f5a2e-4b1c-4e8a-9f60-2c5d8e1a0b11"
BUNDLER = str(Path(sys.executable).with_name("bundler"))


@pytest.fixture
def second_conn(pg_admin_uri: str) -> Iterator[psycopg.Connection]:
    """An empty database to seed an export into."""
    with psycopg.connect(new_database(pg_admin_uri).conninfo, autocommit=True) as connection:
        yield connection


def reseed(text: str, conn: psycopg.Connection, tmp_path: Path) -> str:
    """Seed ``text`` into ``conn`` and export it again."""
    story_id = yaml.safe_load(text)["story"]["id"]
    path = tmp_path / f"{story_id}.yaml"
    path.write_text(text, encoding="utf-8")
    seed_file(conn, path, tmp_path / "assets")
    return export_story(conn, story_id)


# --------------------------------------------------------------------------- the example story


def test_example_file_is_exactly_what_export_writes(conn: psycopg.Connection, assets_root: Path) -> None:
    seed_file(conn, EXAMPLE, assets_root)

    exported = export_story(conn, EXAMPLE_ID)

    # the example only adds comments and the seed-only media key
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    assert exported == "".join(line for line in lines if not line.startswith(("#", "media:")))


def test_example_round_trip(conn: psycopg.Connection, second_conn: psycopg.Connection, tmp_path: Path) -> None:
    seed_file(conn, EXAMPLE, tmp_path / "assets")
    first = export_story(conn, EXAMPLE_ID)

    assert reseed(first, second_conn, tmp_path) == first
    assert export_story(conn, EXAMPLE_ID) == first  # deterministic


def test_export_shape(conn: psycopg.Connection, assets_root: Path) -> None:
    seed_file(conn, EXAMPLE, assets_root)

    document = yaml.safe_load(export_story(conn, EXAMPLE_ID))

    assert list(document) == ["format", "story", "scenelets"]
    assert [s["label"] for s in document["scenelets"]] == [f"scenelet-{n}" for n in range(1, 11)]
    roles = [s["role"] for s in document["scenelets"]]
    assert roles == [
        "root",
        "linear",
        "branch",
        "linear",
        "terminal",
        "branch",
        "branch",
        "linear",
        "linear",
        "terminal",
    ]
    second = document["scenelets"][1]
    assert second["branch_audio"] == f"generated/{EXAMPLE_ID}/branches/scenelet-2/branch_audio.wav"
    assert list(second["shots"][0]) == ["index", "key_frame", "audio", "storyboard"]
    assert list(second["dialogue"][0]) == ["character", "line"]


def test_export_reads_in_a_snapshot_and_restores_the_connection(conn: psycopg.Connection, assets_root: Path) -> None:
    seed_file(conn, EXAMPLE, assets_root)
    settings = (conn.isolation_level, conn.read_only)

    export_story(conn, EXAMPLE_ID)

    assert (conn.isolation_level, conn.read_only) == settings
    conn.execute("delete from stories")  # still writable


def test_unknown_story_is_not_found(conn: psycopg.Connection) -> None:
    with pytest.raises(StoryNotFoundError, match="00000000-0000-4000-8000-000000000000 was not found"):
        export_story(conn, "00000000-0000-4000-8000-000000000000")


# --------------------------------------------------------------------------- random stories

TRICKY_TEXT = [
    "plain words",
    "line one\nline two",
    "trailing newline\n",
    "  leading spaces\nand more",
    "ends with spaces   ",
    "null",
    "yes",
    "N/A",
    "123",
    "1e3",
    "- dash",
    "# hash",
    "key: value",
    "'single' \"double\"",
    "tab\tinside",
    "ünïcødé ✓ 🌊",
    "2024-01-01",
    "",
    "\u2028 separator",
    "carriage\r\nreturn",
    "next\x85line\nand more",
]


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["str", "int", "float", "bool", "null"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return rng.choice(TRICKY_TEXT)
    if kind == "int":
        return rng.choice([0, -7, 42, 2**40])
    if kind == "float":
        return rng.choice([0.5, -1.25, 3.0, 1e-7, 123456.789])
    if kind == "bool":
        return rng.choice([True, False])
    if kind == "null":
        return None
    if kind == "list":
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(TRICKY_TEXT) or "k": random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def insert_random_story(conn: psycopg.Connection, seed: int) -> str:
    """A random story written the way the pipeline writes it: straight through the repository."""
    rng = random.Random(seed)
    repo = Repository(conn)
    base = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=seed)
    story_id = repo.create_story(
        rng.choice([t for t in TRICKY_TEXT if t.strip()]),
        rng.choice(TRICKY_TEXT),
        story_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        audio_design_document=rng.choice([None, random_json(rng), {"audio_design_document": {"x": [1]}}]),
        created_at=base,
    )
    records: list[SceneletRecord] = []
    for n in range(rng.randint(1, 25)):
        parent = rng.choice(records).id if records else None
        # few distinct timestamps, so sibling ties (broken by UUID text) happen often
        created = base + timedelta(seconds=rng.randint(0, 4), microseconds=rng.choice([0, 0, 1500]))
        content: dict[str, Any] = {"description": rng.choice(TRICKY_TEXT)}
        if rng.random() < 0.7:
            content["dialogue"] = [
                {"character": rng.choice(["Narrator", "Mara"]), "line": rng.choice(TRICKY_TEXT)}
                for _ in range(rng.randint(0, 2))
            ]
        if rng.random() < 0.7:
            content["shot_suggestions"] = [rng.choice(TRICKY_TEXT) for _ in range(rng.randint(0, 2))]
        if rng.random() < 0.3:
            content["choice_label"] = rng.choice(TRICKY_TEXT)
            content["extra"] = random_json(rng)
        fields: dict[str, Any] = {
            "parent_id": parent,
            "choice_label_from_parent": rng.choice([None, "Go left", "Go right\nnow"]),
            "choice_prompt": rng.choice([None, "Which way?"]),
            "is_branch_point": rng.random() < 0.3,
            "is_terminal_node": rng.random() < 0.2,
            "branch_audio_file_path": rng.choice([None, "N/A", " n/a ", f"generated/{story_id}/branches/b{n}.wav"]),
            "created_at": created,
        }
        scenelet_id = repo.create_scenelet(story_id, content, **fields)
        records.append(SceneletRecord(scenelet_id, story_id, content=content, **fields))
    tree = build_tree(records)
    for n, scenelet_id in enumerate(tree.order, start=1):
        if rng.random() < 0.25:
            continue  # scenelets without shots
        drift = rng.random() < 0.2
        indexes = rng.sample(range(1, 9), rng.randint(1, 3))
        shots = [
            NewShot(
                i,
                rng.choice([random_json(rng), {"framingAndAngle": "Wide", "n": i}]) or [i],  # never null
                key_frame_image_path=rng.choice([None, f"{story_id}/shots/scenelet-{n}/shot-{i}_key_frame.png"]),
                audio_file_path=rng.choice([None, "N/A", f"generated/{story_id}/shots/scenelet-{n}/{i}_audio.wav"]),
                video_file_path=rng.choice([None, None, f"v/{i}.mp4"]),
            )
            for i in indexes
        ]
        label, sequence = (f"scenelet-{n + 1000}", n + 1000) if drift else (f"scenelet-{n}", n)
        repo.create_scenelet_shots(story_id, scenelet_id, label, sequence, shots)
    return story_id


@pytest.fixture(scope="module")
def random_dbs(pg_admin_uri: str) -> Iterator[tuple[psycopg.Connection, psycopg.Connection]]:
    """Source and target databases shared by the random round trips (story ids never repeat)."""
    with (
        psycopg.connect(new_database(pg_admin_uri).conninfo, autocommit=True) as source,
        psycopg.connect(new_database(pg_admin_uri).conninfo, autocommit=True) as target,
    ):
        yield source, target


@pytest.mark.parametrize("seed", range(12))
def test_random_story_round_trip(
    random_dbs: tuple[psycopg.Connection, psycopg.Connection], tmp_path: Path, seed: int
) -> None:
    source, target = random_dbs
    story_id = insert_random_story(source, seed)
    first = export_story(source, story_id)

    again = reseed(first, target, tmp_path)

    assert again == first
    document = yaml.safe_load(first)
    assert [s["label"] for s in document["scenelets"]] == [
        f"scenelet-{n}" for n in range(1, len(document["scenelets"]) + 1)
    ]


def test_deep_line_round_trip(conn: psycopg.Connection, second_conn: psycopg.Connection, tmp_path: Path) -> None:
    # deeper than Python's default recursion limit (1000): nothing may recurse with depth
    repo = Repository(conn)
    base = datetime(2025, 6, 1, tzinfo=UTC)
    story_id = repo.create_story("Deep", "a long line", created_at=base)
    parent: str | None = None
    with conn.transaction():
        for n in range(1, 1201):
            parent = repo.create_scenelet(
                story_id, {"description": f"step {n}"}, parent_id=parent, created_at=base + timedelta(seconds=n)
            )
        assert parent is not None
        repo.create_scenelet_shots(story_id, parent, "scenelet-1200", 1200, [NewShot(1, {"last": True})])
    first = export_story(conn, story_id)

    assert reseed(first, second_conn, tmp_path) == first
    assert first.count("- label: scenelet-") == 1200


def test_unreachable_scenelets_are_exported_without_label_and_do_not_seed(
    conn: psycopg.Connection, second_conn: psycopg.Connection, tmp_path: Path
) -> None:
    repo = Repository(conn)
    story_id = repo.create_story("Cycle", "p")
    day = datetime(2025, 1, 1, tzinfo=UTC)
    root = repo.create_scenelet(story_id, {"description": "root"}, created_at=day)
    a = repo.create_scenelet(story_id, {"description": "a"}, parent_id=root, created_at=day + timedelta(days=2))
    b = repo.create_scenelet(story_id, {"description": "b"}, parent_id=a, created_at=day + timedelta(days=1))
    conn.execute("update scenelets set parent_id = %s where id = %s", (b, a))  # the schema allows cycles

    text = export_story(conn, story_id)

    scenelets = yaml.safe_load(text)["scenelets"]
    # the root first, then the cycle in storage order (created_at): b before a
    assert [(s["id"], s["label"]) for s in scenelets] == [(root, "scenelet-1"), (b, None), (a, None)]
    with pytest.raises(InputError, match="parent cycle"):
        reseed(text, second_conn, tmp_path)


# --------------------------------------------------------------------------- command line


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GITHUB_ACTIONS")} | {"NO_COLOR": "1"}
    return subprocess.run([BUNDLER, *args], capture_output=True, text=True, env=env, timeout=120, check=False)


def test_cli_export(database: DatabaseTarget, conn: psycopg.Connection, tmp_path: Path) -> None:
    seed_file(conn, EXAMPLE, tmp_path / "assets")
    url = ["--database-url", database.conninfo]
    out = tmp_path / "nested" / "story.yaml"

    to_stdout = run("export", EXAMPLE_ID, *url)
    to_file = run("export", EXAMPLE_ID.upper(), *url, "--out", str(out), "--json")
    as_json = run("export", EXAMPLE_ID, *url, "--json")
    into_folder = run("export", EXAMPLE_ID, *url, "--out", str(tmp_path), "--json")

    expected = export_story(conn, EXAMPLE_ID)
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout == expected
    assert to_file.returncode == 0 and out.read_text(encoding="utf-8") == expected
    assert json.loads(to_file.stdout) == {"ok": True, "storyId": EXAMPLE_ID, "out": str(out), **REPORT_META}
    assert json.loads(as_json.stdout)["yaml"] == expected
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert into_folder.returncode == 3 and json.loads(into_folder.stdout)["ok"] is False
    assert [p.name for p in out.parent.iterdir()] == ["story.yaml"]  # no temporary files left


def test_cli_export_errors(database: DatabaseTarget) -> None:
    url = ["--database-url", database.conninfo]

    not_uuid = run("export", "scenelet-1", *url)
    missing = run("export", "00000000-0000-4000-8000-000000000000", *url, "--json")

    assert not_uuid.returncode == 2 and "not a UUID" in not_uuid.stderr
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["ok"] is False
    assert "was not found" in missing.stderr
