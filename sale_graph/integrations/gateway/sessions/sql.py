"""Pins in one SQL table, shared by every worker and machine that opens it: the statements both SQL backends run.

A pin is one row: its key, the pin as JSON and when it was last used (epoch seconds, the
wall clock, so that several machines agree). Each operation is one statement, atomic on
its own: a read restarts the idle time only of a live pin (``UPDATE ... WHERE used > cutoff
RETURNING pin``), and :meth:`~.base.SessionStore.put_if_absent` inserts, or replaces an
expired row, in one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` that writes nothing when
a live pin is there. Expired rows are deleted now and then (at most once a minute per
store). The subclasses bring the driver: :mod:`.sqlite` (aiosqlite) and :mod:`.postgres`
(psycopg 3 with a connection pool).
"""

from __future__ import annotations

import abc
import asyncio
import json
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from sale_graph.integrations.gateway.sessions.base import Pin, SessionStore

DEFAULT_TABLE = "sale_gateway_sessions"
PURGE_EVERY_S = 60.0
"""Expired rows are deleted at most this often by one store."""

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class SqlSessions(SessionStore):
    """The shared part of the SQL backends: the table, its statements, the lazy connection, the purge.

    Statements are written with ``?`` placeholders; :attr:`placeholder` is the driver's.

    Args:
        idle_s: seconds a pin lives after its last use.
        table: the table's name (created when missing).
        clock: the time source (``time.time``: the wall clock every machine shares; tests pass their own).
    """

    shared = True
    placeholder = "?"
    json_type = "TEXT"

    def __init__(self, idle_s: float, *, table: str = DEFAULT_TABLE, clock: Callable[[], float] = time.time) -> None:
        super().__init__(idle_s)
        if not _TABLE_NAME.fullmatch(table):
            raise ValueError(f"the session table's name must be a SQL identifier (letters, digits, _), got {table!r}")
        self.table = table
        self._clock = clock
        self._ready = False
        self._lock: asyncio.Lock | None = None
        self._purged = float("-inf")

    @abc.abstractmethod
    async def _connect(self) -> None:
        """Open the connection (or pool); called once, before the first statement."""

    @abc.abstractmethod
    async def _run(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run one statement in its own transaction (autocommit); the rows it returns."""

    @abc.abstractmethod
    async def _disconnect(self) -> None:
        """Close the connection (or pool)."""

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self.placeholder).replace("{t}", self.table)

    async def _exec(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if not self._ready:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if not self._ready:
                    await self._connect()
                    await self._create_table()
                    self._ready = True
        return await self._run(self._sql(sql), params)

    @property
    def create_table_sql(self) -> str:
        """The table's ``CREATE TABLE IF NOT EXISTS`` statement (``{t}`` for its name)."""
        return (f"CREATE TABLE IF NOT EXISTS {{t}} (key TEXT PRIMARY KEY, pin {self.json_type} NOT NULL, "
                "used DOUBLE PRECISION NOT NULL)")

    async def _create_table(self) -> None:
        await self._run(self._sql(self.create_table_sql), ())

    async def _purge(self, now: float) -> None:
        if now - self._purged >= PURGE_EVERY_S:
            self._purged = now
            await self._exec("DELETE FROM {t} WHERE used <= ?", now - self.idle_s)

    @staticmethod
    def _pin(value: Any) -> Pin:
        return Pin.from_dict(json.loads(value) if isinstance(value, str | bytes) else value)

    async def get(self, key: str) -> Pin | None:
        """The pin under ``key``, its idle time restarted; ``None`` when there is none or it expired."""
        now = self._clock()
        rows = await self._exec("UPDATE {t} SET used = ? WHERE key = ? AND used > ? RETURNING pin", now, key, now - self.idle_s)
        return self._pin(rows[0][0]) if rows else None

    async def put(self, key: str, pin: Pin) -> None:
        """Pin ``key`` (replacing any pin it had)."""
        now = self._clock()
        await self._purge(now)
        await self._exec("INSERT INTO {t} (key, pin, used) VALUES (?, ?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET pin = excluded.pin, used = excluded.used",
                         key, json.dumps(pin.to_dict()), now)

    async def put_if_absent(self, key: str, pin: Pin) -> Pin:
        """Pin ``key`` unless it holds a live pin (one statement: atomic across workers); the pin it holds now."""
        for _ in range(3):  # the live pin found by the insert can expire or be deleted before it is read
            now = self._clock()
            await self._purge(now)
            rows = await self._exec("INSERT INTO {t} (key, pin, used) VALUES (?, ?, ?) "
                                    "ON CONFLICT (key) DO UPDATE SET pin = excluded.pin, used = excluded.used "
                                    "WHERE {t}.used <= ? RETURNING key",
                                    key, json.dumps(pin.to_dict()), now, now - self.idle_s)
            if rows:
                return pin
            found = await self.get(key)
            if found is not None:
                return found
        raise RuntimeError(f"the session store could not pin {key!r}: its pin kept changing")  # pragma: no cover

    async def delete(self, key: str) -> None:
        """Drop the pin under ``key``."""
        await self._exec("DELETE FROM {t} WHERE key = ?", key)

    async def count(self) -> int:
        """Pins alive now (in the whole shared store)."""
        rows = await self._exec("SELECT count(*) FROM {t} WHERE used > ?", self._clock() - self.idle_s)
        return int(rows[0][0])

    async def close(self) -> None:
        """Close the connection; the store opens it again on its next use."""
        if self._ready:
            self._ready, self._lock = False, None  # the next use may run on another event loop
            await self._disconnect()


__all__ = ["DEFAULT_TABLE", "PURGE_EVERY_S", "SqlSessions"]
