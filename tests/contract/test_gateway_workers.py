"""``sale gateway --workers 2`` under load: the endpoints' bounds hold across workers, sessions keep their pins.

The command runs as users run it (:class:`~tests.contract.gateway_server.GatewayProcess`:
two uvicorn worker processes sharing a SQLite session store) in front of the wire server,
which counts the requests in flight per model (:meth:`WireServer.max_in_flight`). The
clients are plain ``httpx`` with ``x-sale-session`` (:mod:`tests.contract.gateway_load`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.contract.gateway_load import FLAKY_MIX, LoadSummary, auctions_run, drive, worker_cpu_s
from tests.contract.gateway_server import GatewayProcess
from tests.contract.sale_apps import behaviours, chats, responder, write_pool
from tests.contract.wire_formats import ModelBehaviour
from tests.contract.wire_server import WireServer

pytestmark = [pytest.mark.contract, pytest.mark.usefixtures("fresh_detection")]

BOUND = 4
"""Each agent's ``max_concurrency``: 2 slots for each of the 2 workers."""


def test_two_workers_together_never_pass_an_endpoints_max_concurrency(tmp_path: Path) -> None:
    sessions = 24  # 24 first turns within 0.5 s: 24 bids and 48 jury calls offered to each endpoint, 6x its bound
    with WireServer(behaviours(latency_s=0.2)) as wire:
        pool = write_pool(tmp_path / "pool.toml", wire, small={"max_concurrency": BOUND}, large={"max_concurrency": BOUND})
        with GatewayProcess(pool, "--workers", "2", "--sessions", f"sqlite:///{tmp_path}/sessions.db") as gateway:
            pids = gateway.wait_for_workers(2)
            health = httpx.get(f"{gateway.url}/health", timeout=10).json()
            # Opened one by one, the connections spread over both workers (a burst can all land on one).
            turns, _ = asyncio.run(drive(gateway.base_url, sessions=sessions, turns=1, concurrency=sessions, stagger_s=0.02))
            metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
            log = gateway.log()

    summary = LoadSummary.of(turns, 1.0)
    assert summary.answered == sessions, (summary.errors, summary.unshaped)
    assert len(pids) == 2 and health["workers"] == 2
    assert health["max_concurrency"]["large"] == {"max_concurrency": BOUND, "per_worker": BOUND // 2}
    assert "max_concurrency 4: 2 per worker x 2 workers" in log  # the startup line
    assert 'sale_gateway_endpoint_slots{agent="large"} 4.0' in metrics  # the workers' slots, summed
    # The bound held at the endpoint, and was reached: both workers held their 2 slots at once.
    assert wire.max_in_flight("large") == BOUND, wire.max_in_flight("large")
    assert wire.max_in_flight("small") <= BOUND
    assert len(chats(wire, "bid", model="large")) == sessions


def test_sessions_of_three_turns_through_two_workers_on_a_flaky_pool_all_end_and_keep_their_pins(tmp_path: Path) -> None:
    sessions, turns = 60, 3
    flaky = {m: ModelBehaviour(responder=responder(m), latency_s=0.2, error_rates=FLAKY_MIX, retry_after="0")
             for m in ("small", "large")}
    with WireServer(flaky, seed=22) as wire:
        retried = {"max_retries": 2, "max_concurrency": 32}
        pool = write_pool(tmp_path / "pool.toml", wire, small=retried, large=retried)
        with GatewayProcess(pool, "--workers", "2", "--sessions", f"sqlite:///{tmp_path}/sessions.db") as gateway:
            pids = gateway.wait_for_workers(2)
            before = worker_cpu_s(gateway.pid)
            results, wall = asyncio.run(drive(gateway.base_url, sessions=sessions, turns=turns, concurrency=sessions,
                                              timeout_s=60, stagger_s=0.01))
            after = worker_cpu_s(gateway.pid)
            metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
        peaks = {m: wire.max_in_flight(m) for m in ("small", "large")}
        upstream = [r.status for r in chats(wire)]

    summary = LoadSummary.of(results, wall)
    assert summary.requests == sessions * turns and wall < 60
    assert summary.unshaped == []  # every request: an answer, or an error in OpenAI's shape
    assert set(summary.errors) <= {"429 rate_limit_exceeded", "502 upstream_error", "503 sale_auction_failed"}, summary.errors
    assert summary.answered >= 0.9 * summary.requests, summary.errors
    assert summary.pins_lost == 0
    # One auction per session: its first turn's (a session whose first turn failed may run one more).
    failed_first = {t.session for t in results if t.index == 0 and not t.answered}
    assert {s: n for s, n in summary.auctions.items() if n != 1 and s not in failed_first} == {}
    ran = auctions_run(metrics).get("ok", 0)  # an auction whose answer then failed is not in summary.auctions
    assert sum(summary.auctions.values()) <= ran <= sessions + len(failed_first)
    # Both workers did their part of the work (so sessions' turns moved between them), the faults were real,
    # and the bounds held.
    cpu = {pid: after[pid] - before.get(pid, 0.0) for pid in pids}
    assert min(cpu.values()) >= 0.2 * sum(cpu.values()), cpu
    assert upstream.count(429) >= 20 and upstream.count(500) >= 10
    assert max(peaks.values()) <= 32
