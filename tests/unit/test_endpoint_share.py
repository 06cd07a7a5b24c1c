"""Gateway workers share each endpoint's ``max_concurrency``: the arithmetic, the errors, where the rule shows."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from pathlib import Path

import httpx
import pytest

from sale_graph import AgentPool, create_gateway_app
from sale_graph.cli import main
from sale_graph.cli.gateway import concurrency_line
from sale_graph.errors import PoolError
from sale_graph.integrations.gateway.core import WORKERS_ENV
from sale_graph.llm import Limiter, endpoint_limiter, endpoint_workers, share_endpoints, worker_limit
from sale_graph.pool import AgentSpec


def agent(name: str, bound: int, port: int = 9) -> AgentSpec:
    return AgentSpec(name=name, model=name, base_url=f"http://127.0.0.1:{port}/v1", price_input=1.0, price_output=1.0,
                     max_concurrency=bound, structured_output="none")


@pytest.fixture(autouse=True)
def no_workers_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateways built here are told their workers, or read them from a variable the test sets."""
    monkeypatch.delenv(WORKERS_ENV, raising=False)


@pytest.mark.parametrize(("bound", "workers", "slots"), [
    (8, 1, 8), (8, 2, 4), (5, 2, 2), (7, 3, 2), (3, 3, 1), (64, 2, 32), (0, 1, 0), (0, 16, 0),
])
def test_each_worker_gets_the_floor_of_its_share_so_the_workers_never_pass_the_bound(bound: int, workers: int, slots: int) -> None:
    assert worker_limit(bound, workers) == slots
    assert slots * workers <= bound or bound == 0  # 0: no bound, for every worker


@pytest.mark.parametrize(("bound", "workers", "says"), [
    (1, 2, "cannot be shared by 2 workers"), (3, 4, "cannot be shared by 4 workers"),
    (4, 0, "workers must be at least 1"), (-1, 1, "non-negative"),
])
def test_a_share_with_no_slot_or_a_nonsense_count_is_an_error_never_zero(bound: int, workers: int, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        worker_limit(bound, workers)


def test_sharing_names_every_agent_left_without_a_slot_and_the_ways_out_and_changes_nothing() -> None:
    agents = [agent("big", 16, port=1), agent("tiny", 1, port=2), agent("free", 0, port=3), agent("pair", 2, port=4)]
    with pytest.raises(PoolError) as err:
        share_endpoints(agents, 4, "pool.toml")
    message = str(err.value)
    assert message.startswith("pool.toml: 4 gateway workers")
    assert "tiny (max_concurrency 1)" in message and "pair (max_concurrency 2)" in message
    assert "big" not in message and "free" not in message
    assert "raise its max_concurrency to 4 or more" in message and "fewer workers" in message
    assert [endpoint_workers(a) for a in agents] == [1, 1, 1, 1]


def test_sharing_gives_each_agents_slots_per_worker_and_one_worker_gives_the_whole_bound_back() -> None:
    agents = [agent("big", 16, port=5), agent("odd", 5, port=6), agent("free", 0, port=7)]
    assert share_endpoints(agents, 2) == {"big": 8, "odd": 2, "free": 0}
    assert share_endpoints(agents, 1) == {"big": 16, "odd": 5, "free": 0}


def test_sharing_changes_the_limiters_of_the_pools_endpoints_made_before_and_after_and_no_other() -> None:
    before, after, other = agent("before", 6, port=11), agent("after", 10, port=12), agent("other", 6, port=13)
    made_before, untouched = endpoint_limiter(before), endpoint_limiter(other)
    share_endpoints([before, after], 3)
    made_after = endpoint_limiter(after)
    assert made_before.limit == 2 and made_after.limit == 3 and untouched.limit == 6
    assert endpoint_workers(before) == endpoint_workers(after) == 3 and endpoint_workers(other) == 1
    share_endpoints([before, after], 1)
    assert made_before.limit == 6 and made_after.limit == 10  # each endpoint keeps its declared bound


def test_a_raised_limit_wakes_a_waiter_at_once() -> None:
    limiter = Limiter(1)
    limiter.acquire()
    got = threading.Event()

    def wait() -> None:
        limiter.acquire()
        got.set()

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    time.sleep(0.05)
    assert not got.is_set()
    limiter.set_limit(2)
    assert got.wait(2) and limiter.in_use == 2
    thread.join(2)


_ports = itertools.count(47100)


def _pool(**bounds: int) -> AgentPool:
    """A pool on endpoints no other test uses (the share of an endpoint is process-wide)."""
    return AgentPool(tuple(agent(name, bound, port=next(_ports)) for name, bound in bounds.items()), source="test pool")


def _health(app: object) -> dict[str, object]:
    async def get() -> dict[str, object]:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # a Starlette app is an ASGI app
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            body: dict[str, object] = (await client.get("/health")).json()
            return body

    return asyncio.run(get())


def test_a_gateway_told_its_workers_takes_its_share_and_health_shows_it() -> None:
    app = create_gateway_app(pool=_pool(small=8, large=5, free=0), use_memory=False, workers=2)
    health = _health(app)
    assert health["workers"] == 2
    assert health["max_concurrency"] == {"small": {"max_concurrency": 8, "per_worker": 4},
                                         "large": {"max_concurrency": 5, "per_worker": 2},
                                         "free": {"max_concurrency": 0, "per_worker": 0}}
    assert endpoint_limiter(app.state.sale_gateway.pool.get("small")).limit == 4
    assert 'sale_gateway_endpoint_slots{agent="large"} 2.0' in app.state.sale_gateway.metrics.render().decode()


def test_the_workers_come_from_the_environment_when_the_app_is_not_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WORKERS_ENV, "4")
    gateway = create_gateway_app(pool=_pool(small=8, large=4), use_memory=False).state.sale_gateway
    assert gateway.workers == 4 and gateway.slots == {"small": 2, "large": 1}
    monkeypatch.setenv(WORKERS_ENV, "two")
    with pytest.raises(PoolError, match=r"\$SALE_GATEWAY_WORKERS must be a positive integer"):
        create_gateway_app(pool=_pool(small=8), use_memory=False)


def test_a_gateway_whose_agent_cannot_be_shared_stops_at_start_naming_it() -> None:
    pool = _pool(small=8, large=1)
    with pytest.raises(PoolError, match=r"large \(max_concurrency 1\) would leave a worker with none"):
        create_gateway_app(pool=pool, use_memory=False, workers=2)
    assert [endpoint_workers(a) for a in pool.agents] == [1, 1]  # nothing was shared


def test_the_startup_line_says_each_agents_share() -> None:
    assert concurrency_line(agent("a", 5), 2, 2) == "max_concurrency 5: 2 per worker x 2 workers, 1 unused"
    assert concurrency_line(agent("a", 8), 4, 2) == "max_concurrency 8: 4 per worker x 2 workers"
    assert concurrency_line(agent("a", 8), 8, 1) == "max_concurrency 8"
    assert concurrency_line(agent("a", 0), 0, 4) == "no concurrency bound"


def _write_pool(path: Path, **bounds: int) -> Path:
    """A pool TOML on endpoints no other test uses (a known endpoint keeps the bound it was first seen with)."""
    lines = []
    for name, bound in bounds.items():
        lines += ["[[agents]]", f'name = "{name}"', f'model = "{name}"', f'base_url = "http://127.0.0.1:{next(_ports)}/v1"',
                  "price_input = 1.0", "price_output = 1.0", f"max_concurrency = {bound}", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def never_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """These commands must stop before serving: a server started here would fail the test, not hang it."""
    import uvicorn

    def serve(*args: object, **kwargs: object) -> None:
        raise AssertionError("sale gateway started serving")

    monkeypatch.setattr(uvicorn, "run", serve)


@pytest.mark.usefixtures("never_serve")
def test_sale_gateway_refuses_an_agent_it_cannot_share_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pool = _write_pool(tmp_path / "pool.toml", small=8, large=3)
    code = main(["gateway", "--pool", str(pool), "--no-memory", "--workers", "2", "--total-workers", "4"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "4 gateway workers" in err and "large (max_concurrency 3)" in err


@pytest.mark.usefixtures("never_serve")
def test_total_workers_below_this_machines_workers_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pool = _write_pool(tmp_path / "pool.toml", small=8)
    code = main(["gateway", "--pool", str(pool), "--no-memory", "--workers", "3", "--total-workers", "2"])
    assert code == 2 and "--total-workers (2)" in capsys.readouterr().err
