"""Pins in Postgres, shared by gateways on several machines (``--sessions postgresql://...``).

psycopg 3's async driver behind a psycopg-pool connection pool (autocommit: each statement
is its own transaction). The table is created on first use when missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from sale_graph.integrations.gateway.sessions.sql import DEFAULT_TABLE, SqlSessions

DEFAULT_POOL_SIZE = 10
"""Connections one gateway worker keeps open at most."""


class PostgresSessions(SqlSessions):
    """Pins in a Postgres table (see the module docstring).

    Args:
        url: the server's ``postgresql://`` URL (libpq's form).
        idle_s: seconds a pin lives after its last use.
        table: the table's name.
        pool_size: connections kept open at most by this store.
        clock: the time source (``time.time``; every machine's clock should be in sync).
    """

    placeholder = "%s"
    json_type = "JSONB"

    def __init__(self, url: str, idle_s: float, *, table: str = DEFAULT_TABLE, pool_size: int = DEFAULT_POOL_SIZE,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(idle_s, table=table, clock=clock)
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size}")
        self.url = url
        self.pool_size = pool_size
        self._pool: Any = None

    async def _connect(self) -> None:
        from psycopg_pool import AsyncConnectionPool  # the scale extra

        pool = AsyncConnectionPool(self.url, min_size=1, max_size=self.pool_size, open=False,
                                   kwargs={"autocommit": True})
        await pool.open(wait=True, timeout=30)
        self._pool = pool

    async def _create_table(self) -> None:
        # CREATE TABLE IF NOT EXISTS races in Postgres: two workers starting at once can both
        # miss the table and one fails on the catalog (its row type, "duplicate key" or "type
        # already exists"). A transaction-scoped advisory lock on the table's name makes the
        # workers take turns; the lock ends with the transaction.
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            await cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"sale_graph.sessions.{self.table}",))
            await cursor.execute(self._sql(self.create_table_sql))

    async def _run(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with self._pool.connection() as conn, conn.cursor() as cursor:
            await cursor.execute(sql, tuple(params))
            return list(await cursor.fetchall()) if cursor.description is not None else []

    async def _disconnect(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def __repr__(self) -> str:
        return f"PostgresSessions(idle_s={self.idle_s:g}, table={self.table!r})"  # the URL may hold a password


__all__ = ["DEFAULT_POOL_SIZE", "PostgresSessions"]
