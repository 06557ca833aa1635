"""Every command works through a real PgBouncer, transaction and session pool mode (docs/design.md §1)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from bundler.db.connect import DatabaseTarget, connection, set_local_timeouts
from tests.cli_helpers import json_of, run_cli
from tests.pgbouncer import pooled_url

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "lantern-keeper" / "story.yaml"
EXAMPLE_ID = "7d3f5a2e-4b1c-4e8a-9f60-2c5d8e1a0b11"


def _dbname(database: DatabaseTarget) -> str:
    return str(conninfo_to_dict(database.conninfo)["dbname"])


def _run_every_command(url: str, tmp_path: Path) -> None:
    assets, out = tmp_path / "assets", tmp_path / "bundles"
    steps = [
        ("db", "init"),
        ("db", "seed", str(EXAMPLE), "--assets-root", str(assets)),
        ("stories",),
        ("db", "seed", str(EXAMPLE), "--assets-root", str(assets), "--replace"),
        ("check", EXAMPLE_ID, "--assets-root", str(assets)),
        ("check", "--all", "--jobs", "2", "--assets-root", str(assets)),
        ("assemble", EXAMPLE_ID, "--assets-root", str(assets), "--out", str(out)),
        ("export", EXAMPLE_ID, "--out", str(tmp_path / "story.yaml")),
    ]
    for step in steps:
        result = run_cli(*step, "--database-url", url, "--json")
        assert result.returncode == 0, (step, result.stderr)
        assert json_of(result)["ok"] is True, step
    assert (out / EXAMPLE_ID / "manifest.json").is_file()
    assert f"id: {EXAMPLE_ID}" in (tmp_path / "story.yaml").read_text()


def test_every_command_through_transaction_pooler(
    database: DatabaseTarget, pgbouncer_port: int, tmp_path: Path
) -> None:
    url = pooled_url(pgbouncer_port, _dbname(database))
    _run_every_command(url, tmp_path)
    listed = json_of(run_cli("stories", "--database-url", url, "--json"))["stories"]
    assert [story["storyId"] for story in listed] == [EXAMPLE_ID]


def test_every_command_through_session_pooler(database: DatabaseTarget, pgbouncer_port: int, tmp_path: Path) -> None:
    _run_every_command(pooled_url(pgbouncer_port, _dbname(database), session_mode=True), tmp_path)


def test_pooler_rejects_startup_options(database: DatabaseTarget, pgbouncer_port: int) -> None:
    """The reason timeouts are not startup parameters: the pooler refuses them."""
    url = pooled_url(pgbouncer_port, _dbname(database))
    with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter"):
        psycopg.connect(url, options="-c statement_timeout=1000").close()


def test_timeouts_are_local_to_the_transaction(database: DatabaseTarget, pgbouncer_port: int) -> None:
    target = DatabaseTarget(pooled_url(pgbouncer_port, _dbname(database)), "test")
    with connection(target) as conn:
        with conn.transaction():
            set_local_timeouts(conn)
            inside = conn.execute("show statement_timeout").fetchone()
            idle = conn.execute("show idle_in_transaction_session_timeout").fetchone()
        after = conn.execute("show statement_timeout").fetchone()
    assert (inside, idle, after) == (("2min",), ("10min",), ("0",))


def test_server_side_cursor_through_transaction_pooler(
    database: DatabaseTarget, pgbouncer_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libpq < 17 reads shots through a named cursor: it must live inside the one transaction."""
    from bundler.pipeline.load import load_snapshot

    url = pooled_url(pgbouncer_port, _dbname(database))
    seeded = run_cli("db", "seed", str(EXAMPLE), "--assets-root", str(tmp_path / "assets"), "--database-url", url)
    assert seeded.returncode == 0, seeded.stderr
    with connection(DatabaseTarget(url, "test")) as conn:
        chunked = load_snapshot(conn, EXAMPLE_ID)
    monkeypatch.setattr(psycopg.pq, "version", lambda: 160000)
    with connection(DatabaseTarget(url, "test")) as conn:
        cursored = load_snapshot(conn, EXAMPLE_ID)
    assert cursored == chunked and len(cursored.shot_groups) > 0
