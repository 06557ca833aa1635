"""Where the database is and how we connect to it (DESIGN §4).

Order: ``--database-url``, ``DATABASE_URL``, libpq ``PG*`` variables, else the
embedded local PostgreSQL. Passwords never leave this module in any message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bundler.errors import DatabaseError

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_S = 10
STATEMENT_TIMEOUT_MS = 120_000
# libpq variables that mean "the user configured a server through the environment"
_LIBPQ_VARS = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")


@dataclass(frozen=True)
class DatabaseTarget:
    """A resolved connection string plus where it came from (for messages)."""

    conninfo: str
    source: str  # "--database-url", "DATABASE_URL", "PG* environment", "embedded"

    @property
    def display(self) -> str:
        return redact(self.conninfo) if self.conninfo else "(libpq environment)"


def redact(text: str) -> str:
    """Hide passwords in URLs (``user:secret@``) and key=value strings (``password=...``)."""
    text = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text, flags=re.I)


def resolve_target(database_url: str | None, environ: Mapping[str, str] | None = None) -> DatabaseTarget:
    env = os.environ if environ is None else environ
    if database_url:
        return DatabaseTarget(database_url, "--database-url")
    if env.get("DATABASE_URL"):
        return DatabaseTarget(env["DATABASE_URL"], "DATABASE_URL")
    if any(env.get(name) for name in _LIBPQ_VARS):
        return DatabaseTarget("", "PG* environment")
    from bundler.db.embedded import embedded_conninfo

    return DatabaseTarget(embedded_conninfo(), "embedded")


def _scrub(message: str, conninfo: str) -> str:
    """Remove the password from a driver message, whatever form it took."""
    message = redact(message)
    try:
        from psycopg.conninfo import conninfo_to_dict

        password = conninfo_to_dict(conninfo).get("password") if conninfo else None
    except Exception:
        password = None
    if password:
        message = message.replace(str(password), "***")
    return " ".join(message.split())


def connect(target: DatabaseTarget, *, autocommit: bool = False) -> psycopg.Connection:
    import psycopg

    try:
        return psycopg.connect(
            target.conninfo,
            connect_timeout=CONNECT_TIMEOUT_S,
            options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
            autocommit=autocommit,
            application_name="bundler",
        )
    except psycopg.Error as exc:
        raise DatabaseError(
            f"Cannot connect to the database {target.display} ({target.source}): {_scrub(str(exc), target.conninfo)}"
        ) from None


@contextmanager
def connection(target: DatabaseTarget, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A connection that turns driver errors into one-line ``DatabaseError`` messages."""
    import psycopg

    conn = connect(target, autocommit=autocommit)
    try:
        with conn:
            yield conn
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        raise DatabaseError(
            f"The database {target.display} has no story schema ({_scrub(str(exc), target.conninfo)}); "
            "run `bundler db init`."
        ) from None
    except (psycopg.OperationalError, psycopg.errors.InsufficientPrivilege) as exc:
        # includes statement timeouts (QueryCanceled) and lost connections
        raise DatabaseError(f"Database error on {target.display}: {_scrub(str(exc), target.conninfo)}") from None
