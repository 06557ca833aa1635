"""Where the database is and how we connect to it (DESIGN §1, §4).

Order: ``--database-url``, ``DATABASE_URL``, libpq ``PG*`` variables, else the
embedded local PostgreSQL.

Works through transaction-mode poolers (PgBouncer, Supabase's pooler): no
startup ``options`` parameter (timeouts are set with ``SET LOCAL`` at the start
of each transaction, see ``set_local_timeouts``) and no server-side prepared
statements.

Passwords never leave this module: every connection string shown is rebuilt
from its parsed parameters without the password, and libpq's own text is
echoed only when the string parsed unambiguously (its parse errors quote the
password) and after every form of the password is removed from it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

from bundler.errors import DatabaseError

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_S = 10
STATEMENT_TIMEOUT_MS = 120_000
# a client killed mid-transaction must not hold a pooled server connection for long;
# seeding copies media inside its transaction, so this is generous
IDLE_IN_TRANSACTION_TIMEOUT_MS = 600_000
UNPARSEABLE = "(unparseable connection string)"
# libpq variables that mean "the user configured a server through the environment"
_LIBPQ_VARS = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")
_URL_PREFIXES = ("postgresql://", "postgres://")


@dataclass(frozen=True)
class DatabaseTarget:
    """A resolved connection string plus where it came from (for messages)."""

    conninfo: str = field(repr=False)  # may hold a password: never in a repr or message
    source: str  # "--database-url", "DATABASE_URL", "PG* environment", "embedded"

    @property
    def display(self) -> str:
        return describe(self.conninfo) if self.conninfo else "(libpq environment)"


def parse_conninfo(conninfo: str) -> dict[str, str] | None:
    """libpq's reading of a connection string, or None when it is invalid or ambiguous.

    Ambiguous: a URL whose password holds a raw ``@`` or ``/``, which libpq reads
    partly as host or database name (``postgresql://u:PW@tail@host/db``).
    """
    from psycopg.conninfo import conninfo_to_dict

    if conninfo.startswith(_URL_PREFIXES) and _ambiguous_url(conninfo):
        return None
    try:
        return {key: str(value) for key, value in conninfo_to_dict(conninfo).items() if value is not None}
    except Exception:
        return None


def _ambiguous_url(url: str) -> bool:
    head = url.split("://", 1)[1].split("?", 1)[0]  # user info, hosts and database: the query may hold '@'
    ats = head.count("@")
    return ats > 1 or (ats == 1 and "/" in head.split("@", 1)[0])


def describe(conninfo: str) -> str:
    """A connection string for messages: user, hosts, ports and database, never the password."""
    params = parse_conninfo(conninfo)
    if params is None:
        return UNPARSEABLE
    hosts = (params.get("host") or params.get("hostaddr") or "").split(",")
    ports = (params.get("port") or "").split(",")
    if len(ports) == 1:
        ports = ports * len(hosts)
    sockets = [host for host in hosts if host.startswith("/")]
    netloc = ",".join(
        f"{host}:{port}" if port else host for host, port in zip(hosts, ports, strict=False) if host not in sockets
    )
    user = params.get("user")
    text = f"postgresql://{quote(user, safe='') + '@' if user else ''}{netloc}/{quote(params.get('dbname', ''))}"
    if sockets:
        text += "?host=" + ",".join(sockets)
    return text


def redact(text: str) -> str:
    """Hide passwords in URLs (``user:secret@``) and key=value strings (``password=...``).

    A last line of defence for free text; connection strings are shown through ``describe``.
    """
    text = re.sub(r"(://[^:/@\s]*:)\S*@", r"\1***@", text)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text, flags=re.I)


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
    from bundler.db.embedded import embedded_conninfo

    return DatabaseTarget(embedded_conninfo(), "embedded")


def scrub(message: str, conninfo: str) -> str:
    """A driver message on one line, with the password removed in every spelling it may take."""
    secrets = {os.environ.get("PGPASSWORD") or ""}
    password = (parse_conninfo(conninfo) or {}).get("password") if conninfo else None
    if password:
        secrets |= {password, quote(password, safe=""), quote(password), quote_plus(password)}
    for secret in sorted(secrets - {""}, key=len, reverse=True):
        message = _remove_secret(message, secret)
    return " ".join(redact(message).split())


# a long password never occurs in a message by chance: removed wherever it is. A short one
# ("a", "at", "5432") is removed only where libpq quotes a value back ("..."), the one place
# its text can hold it: prose stays intact ("failed", "server at", ".s.PGSQL.5432") and shows
# nothing about the password, not even where its letters are
_DISTINCTIVE = 8


def _remove_secret(message: str, secret: str) -> str:
    if len(secret) >= _DISTINCTIVE:
        return message.replace(secret, "***")
    return re.sub(rf"""(["']){re.escape(secret)}\1""", r"\1***\1", message)


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
    from bundler.db.jsonb import guard_json

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
    import psycopg

    conn = connect(target, autocommit=autocommit)
    try:
        with conn:
            yield conn
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        raise DatabaseError(
            f"The database {target.display} has no story schema ({scrub(str(exc), target.conninfo)}); "
            "run `bundler db init`."
        ) from None
    except (psycopg.OperationalError, psycopg.errors.InsufficientPrivilege) as exc:
        # includes statement timeouts (QueryCanceled) and lost connections
        raise DatabaseError(f"Database error on {target.display}: {scrub(str(exc), target.conninfo)}") from None
