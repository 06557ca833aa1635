"""Where the database is and how we connect to it (docs/design.md §1, §4).

Order: ``--database-url``, ``DATABASE_URL``, libpq ``PG*`` variables, else the
embedded local PostgreSQL.

Works through transaction-mode poolers (PgBouncer, Supabase's pooler): no
startup ``options`` parameter (timeouts are set with ``SET LOCAL`` at the start
of each transaction, see ``set_local_timeouts``) and no server-side prepared
statements.

Passwords never leave this package: connection strings and driver messages are
shown only through ``conninfo`` (``describe``, ``scrub``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bundler.db.conninfo import describe, parse_conninfo, scrub
from bundler.db.embedded import embedded_conninfo
from bundler.db.jsonb import guard_json
from bundler.errors import DatabaseError

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_S = 10
STATEMENT_TIMEOUT_MS = 120_000
# a client killed mid-transaction must not hold a pooled server connection for long;
# seeding copies media inside its transaction, so this is generous
IDLE_IN_TRANSACTION_TIMEOUT_MS = 600_000
# libpq variables that mean "the user configured a server through the environment"
_LIBPQ_VARS = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")


@dataclass(frozen=True)
class DatabaseTarget:
    """A resolved connection string plus where it came from (for messages)."""

    conninfo: str = field(repr=False)  # may hold a password: never in a repr or message
    source: str  # "--database-url", "DATABASE_URL", "PG* environment", "embedded"

    @property
    def display(self) -> str:
        return describe(self.conninfo) if self.conninfo else "(libpq environment)"


def resolve_target(database_url: str | None, environ: Mapping[str, str] | None = None) -> DatabaseTarget:
    env = os.environ if environ is None else environ
    if database_url:
        # the command line fills --database-url from DATABASE_URL itself: name the real source
        source = "DATABASE_URL" if database_url == env.get("DATABASE_URL") else "--database-url"
        return DatabaseTarget(database_url, source)
    if env.get("DATABASE_URL"):
        return DatabaseTarget(env["DATABASE_URL"], "DATABASE_URL")
    if any(env.get(name) for name in _LIBPQ_VARS):
        return DatabaseTarget("", "PG* environment")
    return DatabaseTarget(embedded_conninfo(), "embedded")


def connect(target: DatabaseTarget, *, autocommit: bool = False) -> psycopg.Connection:
    import psycopg

    where = f"{target.display} ({target.source})"
    if target.conninfo and parse_conninfo(target.conninfo) is None:
        # libpq's parse errors quote the offending part, which is often the password
        raise DatabaseError(
            f"Cannot connect to the database {where}: check its syntax and percent-encode "
            "special characters (such as @ / % : space) in the user name and password."
        )
    try:
        conn = psycopg.connect(
            target.conninfo,
            connect_timeout=CONNECT_TIMEOUT_S,
            autocommit=autocommit,
            application_name="bundler",
            prepare_threshold=None,  # transaction-mode poolers cannot keep prepared statements
        )
    except psycopg.Error as exc:
        raise DatabaseError(f"Cannot connect to the database {where}: {scrub(str(exc), target.conninfo)}") from None
    guard_json(conn)  # a jsonb value thousands of levels deep is a story error, not a crash
    return conn


def set_local_timeouts(conn: psycopg.Connection) -> None:
    """Limit the current transaction (poolers refuse them as startup parameters)."""
    conn.execute(
        "select set_config('statement_timeout', %s, true), set_config('idle_in_transaction_session_timeout', %s, true)",
        (str(STATEMENT_TIMEOUT_MS), str(IDLE_IN_TRANSACTION_TIMEOUT_MS)),
    )


@contextmanager
def connection(target: DatabaseTarget, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A connection that turns driver errors into one-line ``DatabaseError`` messages."""
    conn = connect(target, autocommit=autocommit)
    with translated_errors(target), conn:
        yield conn


@contextmanager
def translated_errors(target: DatabaseTarget) -> Iterator[None]:
    """Driver errors as one-line ``DatabaseError`` messages, the password scrubbed."""
    import psycopg

    try:
        yield
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        raise DatabaseError(
            f"The database {target.display} has no story schema ({scrub(str(exc), target.conninfo)}); "
            "run `bundler db init`."
        ) from None
    except (psycopg.OperationalError, psycopg.errors.InsufficientPrivilege) as exc:
        # includes statement timeouts (QueryCanceled) and lost connections
        raise DatabaseError(f"Database error on {target.display}: {scrub(str(exc), target.conninfo)}") from None
