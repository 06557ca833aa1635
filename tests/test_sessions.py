"""A batch of stories uses one database connection per worker, not one per story (issue 20, item 8),
each story still in its own snapshot; a connection that breaks is replaced, not fatal to the batch."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from bundler import api
from bundler.db.connect import DatabaseTarget
from bundler.db.sessions import Connections
from bundler.errors import DatabaseError
from tests.builders import StoryBuilder
from tests.cli_helpers import json_of, run_cli
from tests.pgbouncer import pooled_url

STORIES = 20
JOBS = 2


def _dbname(database: DatabaseTarget) -> str:
    return str(conninfo_to_dict(database.conninfo)["dbname"])


def _seed(database: DatabaseTarget, assets_root: Path, count: int) -> list[str]:
    ids = []
    with psycopg.connect(database.conninfo, autocommit=True) as conn:
        for number in range(count):
            story = StoryBuilder(title=f"Story {number:02}")
            story.scenelet(terminal=True)
            story.write_media(assets_root)
            story.insert(conn)
            ids.append(story.story_id)
    return ids


def _sessions_opened(admin_uri: str, dbname: str) -> int:
    """Sessions the server ever started on ``dbname`` (``pg_stat_database.sessions``), read from
    another database once every session on it has ended (a backend counts itself as it exits)."""
    with psycopg.connect(admin_uri, autocommit=True) as admin:
        deadline = time.monotonic() + 10
        while admin.execute("select count(*) from pg_stat_activity where datname = %s", (dbname,)).fetchone() != (0,):
            assert time.monotonic() < deadline, "sessions still open"
            time.sleep(0.05)
        row = admin.execute("select sessions from pg_stat_database where datname = %s", (dbname,)).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("command", ["check", "assemble"])
def test_all_uses_one_connection_per_worker(
    command: str, database: DatabaseTarget, pg_admin_uri: str, assets_root: Path, tmp_path: Path
) -> None:
    ids = _seed(database, assets_root, STORIES)
    before = _sessions_opened(pg_admin_uri, _dbname(database))
    extra = ["--out", str(tmp_path / "out")] if command == "assemble" else []
    result = run_cli(
        command, "--all", "--jobs", str(JOBS), "--database-url", database.conninfo,
        "--assets-root", str(assets_root), "--json", *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(s["storyId"] for s in json_of(result)["stories"]) == sorted(ids)
    opened = _sessions_opened(pg_admin_uri, _dbname(database)) - before
    assert 1 <= opened <= JOBS + 1  # the workers' connections and the one that listed the stories


def _backend_pids(admin_uri: str, dbname: str) -> list[int]:
    with psycopg.connect(admin_uri, autocommit=True) as admin:
        rows = admin.execute(
            "select pid from pg_stat_activity where datname = %s and application_name = 'bundler'", (dbname,)
        ).fetchall()
    return [int(pid) for (pid,) in rows]


def _terminate(admin_uri: str, pids: list[int]) -> None:
    with psycopg.connect(admin_uri, autocommit=True) as admin:
        for pid in pids:
            admin.execute("select pg_terminate_backend(%s, 5000)", (pid,))


def test_a_terminated_connection_is_replaced(database: DatabaseTarget, pg_admin_uri: str, assets_root: Path) -> None:
    first, second, third = _seed(database, assets_root, 3)
    with Connections(database) as sessions:
        assert api.check(first, database=sessions, assets_root=assets_root).ok
        pids = _backend_pids(pg_admin_uri, _dbname(database))
        assert len(pids) == 1  # the batch's one connection, kept open between stories
        _terminate(pg_admin_uri, pids)
        # the next story finds its kept connection dead: it is read again on a new one
        assert api.check(second, database=sessions, assets_root=assets_root).ok
        assert api.check(third, database=sessions, assets_root=assets_root).ok
        assert sessions.opened == 2
        assert _backend_pids(pg_admin_uri, _dbname(database)) not in ([], pids)


def test_a_fresh_connection_that_fails_is_an_error(database: DatabaseTarget, assets_root: Path) -> None:
    """No retry loop against a server that refuses: one clear DatabaseError."""
    (story,) = _seed(database, assets_root, 1)
    refused = DatabaseTarget("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2", "test")
    with Connections(refused) as sessions, pytest.raises(DatabaseError, match="Cannot connect"):
        api.check(story, database=sessions, assets_root=assets_root)
    assert sessions.opened == 0


def test_story_errors_leave_the_connection_usable(database: DatabaseTarget, assets_root: Path) -> None:
    """A story that is not found ends its transaction; the next story reads on the same connection."""
    (story,) = _seed(database, assets_root, 1)
    with Connections(database) as sessions:
        missing = api.check("00000000-0000-4000-8000-000000000000", database=sessions, assets_root=assets_root)
        assert missing.problems[0].code == "story-not-found"
        assert api.check(story, database=sessions, assets_root=assets_root).ok
        assert sessions.opened == 1


def test_batch_through_transaction_pooler(
    database: DatabaseTarget, pgbouncer_port: int, pg_admin_uri: str, assets_root: Path
) -> None:
    """Kept client connections through PgBouncer (transaction mode); a server connection the pooler
    loses between stories is its business, not a failed story."""
    ids = _seed(database, assets_root, 6)
    target = DatabaseTarget(pooled_url(pgbouncer_port, _dbname(database)), "test")
    with Connections(target) as sessions:
        assert api.check(ids[0], database=sessions, assets_root=assets_root).ok
        _terminate(pg_admin_uri, _backend_pids(pg_admin_uri, _dbname(database)))
        assert all(api.check(i, database=sessions, assets_root=assets_root).ok for i in ids[1:])
    result = run_cli(
        "check", "--all", "--jobs", str(JOBS), "--database-url", target.conninfo,
        "--assets-root", str(assets_root), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(json_of(result)["stories"]) == len(ids)
