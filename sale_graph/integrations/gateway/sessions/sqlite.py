"""Pins in a SQLite file, shared by the gateway's workers on one machine (``--sessions sqlite:///path``).

The file is opened in WAL mode with a busy timeout, one aiosqlite connection per worker,
each statement its own transaction; several processes may read and write it at once.
A file on a network share is not safe for SQLite: several machines share Postgres.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sale_graph.integrations.gateway.sessions.sql import DEFAULT_TABLE, SqlSessions

BUSY_TIMEOUT_MS = 10_000
"""How long a statement waits for another worker's write before it fails."""


def _prepare(path: Path, create_table: str) -> None:
    """Put the file in WAL mode and create the table, from a plain connection (in a worker thread).

    Switching to WAL takes the whole file; a worker doing it at the same moment makes the
    switch fail at once with "locked" (SQLite calls no busy handler there), so it is retried
    until the busy timeout. In WAL mode the writers wait for each other under the busy timeout.
    A failure to open the file is raised here, not in aiosqlite's thread (which would report it
    to a loop that may be gone).
    """
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                db.execute("PRAGMA journal_mode = WAL").fetchall()
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        db.execute(create_table)
    finally:
        db.close()


class SqliteSessions(SqlSessions):
    """Pins in a SQLite file (see the module docstring).

    Args:
        path: the database file (created with its table when missing; its folder must exist).
        idle_s: seconds a pin lives after its last use.
        table: the table's name.
        clock: the time source (``time.time``).
    """

    def __init__(self, path: str | Path, idle_s: float, *, table: str = DEFAULT_TABLE,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(idle_s, table=table, clock=clock)
        self.path = Path(path)
        self._db: Any = None

    async def _connect(self) -> None:
        import aiosqlite  # the scale extra (part of dev) (the scale extra)

        await asyncio.to_thread(_prepare, self.path, self._sql(self.create_table_sql))
        self._db = await aiosqlite.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)

    async def _create_table(self) -> None:
        return None  # done by _prepare, before the WAL-mode connection opens

    async def _run(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with self._db.execute(sql, tuple(params)) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]

    async def _disconnect(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    def __repr__(self) -> str:
        return f"SqliteSessions({str(self.path)!r}, idle_s={self.idle_s:g})"


__all__ = ["BUSY_TIMEOUT_MS", "SqliteSessions"]
