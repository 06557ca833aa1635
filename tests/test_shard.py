"""``--shard K/N``: N jobs cover every story exactly once, with no coordinator."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bundler.db.connect import DatabaseTarget
from bundler.errors import UsageError
from bundler.support.shard import Shard, shard_of
from tests.builders import StoryBuilder
from tests.cli_helpers import json_of, run_cli


@given(st.lists(st.uuids(), max_size=300, unique=True), st.integers(min_value=1, max_value=12))
def test_n_shards_partition_any_set_of_stories(ids: list[uuid.UUID], count: int) -> None:
    stories = [str(story_id) for story_id in ids]
    shards = [[s for s in stories if Shard(k, count).takes(s)] for k in range(1, count + 1)]
    assert sorted(s for shard in shards for s in shard) == sorted(stories)  # each exactly once


def test_the_hash_is_stable_across_versions_and_machines() -> None:
    # pinned: jobs of one fan-out may run different bundler versions, so the mapping must never change
    assert [shard_of("7d3f5a2e-4b1c-4e8a-9f60-2c5d8e1a0b11", n) for n in (1, 2, 3, 8, 100)] == [1, 1, 2, 1, 17]


def test_shards_spread_stories_evenly() -> None:
    counts = [0] * 8
    for number in range(4000):
        counts[shard_of(str(uuid.UUID(int=number * 7919)), 8) - 1] += 1
    assert min(counts) > 400 and max(counts) < 600


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [("2/5", {}, Shard(2, 5)), (" 1/1 ", {}, Shard(1, 1)), ("auto/4", {"JOB_COMPLETION_INDEX": "3"}, Shard(4, 4))],
)
def test_parse(text: str, environ: dict[str, str], expected: Shard) -> None:
    assert Shard.parse(text, environ) == expected


@pytest.mark.parametrize(
    ("text", "environ"),
    [
        ("0/3", {}),
        ("4/3", {}),
        ("3", {}),
        ("a/b", {}),
        ("1/0", {}),
        ("-1/3", {}),
        ("auto/3", {}),
        ("auto/3", {"JOB_COMPLETION_INDEX": "3"}),
        ("auto/3", {"JOB_COMPLETION_INDEX": "x"}),
    ],
)
def test_parse_rejects(text: str, environ: dict[str, str]) -> None:
    with pytest.raises(UsageError):
        Shard.parse(text, environ)


def test_cli_shards_cover_every_story_once(
    conn: psycopg.Connection, database: DatabaseTarget, assets_root: Path
) -> None:
    stories = []
    for number in range(7):
        b = StoryBuilder(title=f"Story {number}")
        b.scenelet(terminal=True)
        b.write_media(assets_root)
        b.insert(conn)
        stories.append(b.story_id)
    base = ["check", "--all", "--database-url", database.conninfo, "--assets-root", str(assets_root), "--json"]
    seen: list[str] = []
    for k in (1, 2, 3):
        result = run_cli(*base, "--shard", f"{k}/3")
        assert result.returncode == 0, result.stderr
        taken = [s["storyId"] for s in json_of(result)["stories"]]
        assert taken == [s for s in taken if shard_of(s, 3) == k]
        seen += taken
    assert sorted(seen) == sorted(stories)

    indexed = run_cli(*base, "--shard", "auto/3", env={"JOB_COMPLETION_INDEX": "1"})
    assert sorted(s["storyId"] for s in json_of(indexed)["stories"]) == sorted(
        s for s in stories if shard_of(s, 3) == 2
    )

    for bad in (["--shard", "0/3"], ["--shard", "4/3"], ["--shard", "auto/3"]):
        result = run_cli(*base, *bad, env={"JOB_COMPLETION_INDEX": ""})
        assert result.returncode == 2, (bad, result.stderr)
        assert "--shard" in result.stderr
    alone = run_cli("check", stories[0], "--shard", "1/2", "--database-url", database.conninfo)
    assert alone.returncode == 2 and "--all" in alone.stderr


def test_all_with_no_story_is_exit_1(database: DatabaseTarget) -> None:
    result = run_cli("check", "--all", "--database-url", database.conninfo, "--json")
    assert result.returncode == 1
    assert "No stories found" in result.stderr
