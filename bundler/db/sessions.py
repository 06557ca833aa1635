"""One database connection per worker for a batch of stories (``--all``, several ids).

A connection per story costs a connect (TCP, TLS, authentication, a server
process forked) for every story: 200 stories, 201 connections. A batch keeps
one open connection per worker thread instead; each story is still read in its
own ``REPEATABLE READ READ ONLY`` transaction (``pipeline.load``), so stories
share a connection, never a snapshot. Between stories the connection is idle
(no transaction open), which is what a transaction-mode pooler needs.

A connection that breaks (the server restarted, an administrator terminated
it, the network dropped) is thrown away; the next story connects again, and a
story whose kept connection turns out broken is read again once on a fresh
one: reading is read-only, so the retry cannot change anything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, TypeVar

from bundler.db.connect import DatabaseTarget, connect, translated_errors

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")


class Connections:
    """The open connections of one batch, one per thread; close them with ``close`` (or ``with``)."""

    def __init__(self, target: DatabaseTarget) -> None:
        self.target = target
        self.opened = 0  # connects made: a batch of N stories on J workers opens about J
        self._local = threading.local()
        self._every: list[psycopg.Connection] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Connections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, work: Callable[[psycopg.Connection], T]) -> T:
        """``work(conn)`` on this thread's connection; any transaction it leaves open is rolled back."""
        import psycopg

        with translated_errors(self.target):
            retried = False
            while True:
                conn, reused = self._take()
                try:
                    return work(conn)
                except psycopg.OperationalError:
                    # only a kept connection that died while idle (pg_terminate_backend, a server
                    # restart) is retried, once: a fresh connection's error is the server's answer
                    if retried or not reused or not conn.broken:
                        raise
                    retried = True
                finally:
                    self._tidy(conn)

    def close(self) -> None:
        with self._lock:
            every, self._every = self._every, []
        for conn in every:
            conn.close()

    def _take(self) -> tuple[psycopg.Connection, bool]:
        conn: psycopg.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed:
            return conn, True
        conn = connect(self.target)
        with self._lock:
            self._every.append(conn)
            self.opened += 1
        self._local.conn = conn
        return conn, False

    def _drop(self, conn: psycopg.Connection) -> None:
        self._local.conn = None
        with self._lock:
            if conn in self._every:
                self._every.remove(conn)
        conn.close()

    def _tidy(self, conn: psycopg.Connection) -> None:
        """A story that failed halfway may leave a transaction open: end it before the next story."""
        import psycopg
        from psycopg.pq import TransactionStatus

        if not (conn.broken or conn.closed) and conn.info.transaction_status != TransactionStatus.IDLE:
            with suppress(psycopg.Error):  # a failed rollback leaves it broken: dropped below
                conn.rollback()
        if conn.broken or conn.closed:
            self._drop(conn)
