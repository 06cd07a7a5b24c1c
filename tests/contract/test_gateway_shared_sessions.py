"""Two gateway workers sharing one SQLite session store, driven by the ``openai`` SDK over real HTTP.

Each "worker" is its own gateway app (its own store instance, its own in-flight table) under
uvicorn on a loopback port (:mod:`tests.contract.gateway_server`); they share only the
SQLite file, as ``sale gateway --workers N --sessions sqlite:///PATH`` workers do. The pool
is the wire server's ``small`` and ``large`` (:mod:`tests.contract.sale_apps`); each auction
asks both for a bid, so the bids the wire server saw count the auctions.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from sale_graph import AgentPool, AgentSpec, create_gateway_app
from tests.contract.gateway_server import GatewayServer
from tests.contract.sale_apps import agent_fields, behaviours, chats, write_pool
from tests.contract.wire_server import WireServer

pytestmark = [pytest.mark.contract, pytest.mark.usefixtures("fresh_detection")]

REPO = Path(__file__).resolve().parents[2]



@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer(behaviours(latency_s=0.05)) as server:
        yield server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker(wire: WireServer, sessions: str) -> GatewayServer:
    pool = AgentPool(tuple(AgentSpec(**f) for f in agent_fields(wire)), source="shared sessions pool")
    return GatewayServer(create_gateway_app(pool=pool, use_memory=False, sessions=sessions))


def ask(gateway: GatewayServer, text: str, session: str) -> Any:
    client = openai.OpenAI(base_url=gateway.base_url, api_key="any", max_retries=0)
    return client.chat.completions.with_raw_response.create(
        model="sale", messages=[{"role": "user", "content": text}], extra_headers={"x-sale-session": session})


def test_a_sessions_turns_alternating_between_two_workers_stay_pinned_to_one_auction(wire: WireServer, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/sessions.db"
    with worker(wire, url) as one, worker(wire, url) as two:
        raws = [ask(one if i % 2 == 0 else two, f"Question {i}?", "alternating") for i in range(4)]

    assert len({r.headers["x-sale-auction-id"] for r in raws}) == 1
    assert [r.headers["x-sale-pinned"] for r in raws] == ["false", "true", "true", "true"]
    assert {r.headers["x-sale-winner"] for r in raws} == {"large"}
    assert [r.parse().model_extra["sale"]["kind"] for r in raws] == ["auction", "pinned", "pinned", "pinned"]
    assert len(chats(wire, "bid")) == 2  # one auction: one bid per agent
    assert [r.model for r in chats(wire, "agent")] == ["large"] * 4


def test_a_pin_outlives_its_worker(wire: WireServer, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/sessions.db"
    with worker(wire, url) as first:
        before = ask(first, "Question 1?", "survivor")
    with worker(wire, url) as restarted:  # the first worker is gone; a new one opens the same file
        after = ask(restarted, "Question 2?", "survivor")

    assert after.headers["x-sale-pinned"] == "true"
    assert after.headers["x-sale-auction-id"] == before.headers["x-sale-auction-id"]
    assert len(chats(wire, "bid")) == 2


def test_concurrent_first_requests_on_two_workers_end_on_one_pin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/sessions.db"
    with WireServer(behaviours(latency_s=0.3)) as slow, worker(slow, url) as one, worker(slow, url) as two:
        async def main() -> list[Any]:
            clients = [openai.AsyncOpenAI(base_url=g.base_url, api_key="any", max_retries=0) for g in (one, two)]
            try:
                return await asyncio.gather(*(c.chat.completions.with_raw_response.create(
                    model="sale", messages=[{"role": "user", "content": "What is 2 + 3?"}],
                    extra_headers={"x-sale-session": "race"}) for c in clients))
            finally:
                for c in clients:
                    await c.close()

        raws = asyncio.run(main())
        later = ask(two, "And 3 + 4?", "race")

    # Each worker ran its own auction (their in-flight tables are their own), but one pin won and both answered by it.
    ids = {r.headers["x-sale-auction-id"] for r in raws}
    assert len(ids) == 1 and later.headers["x-sale-auction-id"] in ids
    assert sorted(r.headers["x-sale-pinned"] for r in raws) == ["false", "true"]
    loser = next(r for r in raws if r.headers["x-sale-pinned"] == "true")
    assert any("another gateway worker pinned the session" in n for n in loser.parse().model_extra["sale"]["notes"])
    assert float(loser.headers["x-sale-auction-cost"]) > 0  # its own auction was paid for, and says so


@pytest.mark.parametrize(("sessions", "says"), [
    ("redis://cache:6379", "not a session store URL"),
    ("sqlite:///no/such/folder/s.db", "does not exist"),
    ("sqlite:///folder", "cannot open the session store"),
])
def test_sale_gateway_refuses_a_bad_sessions_url_in_one_line(
    sessions: str, says: str, wire: WireServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sale_graph.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    pool = write_pool(tmp_path / "pool.toml", wire)
    code = main(["gateway", "--pool", str(pool), "--no-memory", "--sessions", sessions])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("error: --sessions") and says in err, err


def test_sale_gateway_workers_share_their_sessions_through_a_sqlite_file(wire: WireServer, tmp_path: Path) -> None:
    """``sale gateway --workers 2 --sessions sqlite:///...``: every turn of a session, on a new connection each, keeps one auction."""
    pool, port, log = write_pool(tmp_path / "pool.toml", wire), _free_port(), tmp_path / "gateway.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sale_graph.cli", "gateway", "--pool", str(pool), "--port", str(port), "--workers", "2",
         "--no-memory", "--sessions", f"sqlite:///{tmp_path}/sessions.db", "--log-level", "warning"],
        cwd=REPO, stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        healthy = 0
        while healthy < 4:  # both workers up: a few answers in a row
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sale gateway did not start:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                healthy = healthy + 1 if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200 else 0
            except httpx.HTTPError:
                time.sleep(0.2)
        answers = []
        for i in range(8):
            with httpx.Client(timeout=30) as client:  # a new connection each: uvicorn's workers take turns accepting
                answers.append(client.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                                           headers={"x-sale-session": "workers"},
                                           json={"model": "sale", "messages": [{"role": "user", "content": f"Q{i}?"}]}))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert [a.status_code for a in answers] == [200] * 8, answers[-1].text
    assert len({a.headers["x-sale-auction-id"] for a in answers}) == 1
    assert [a.headers["x-sale-pinned"] for a in answers] == ["false"] + ["true"] * 7
    assert len(chats(wire, "bid")) == 2
    output = log.read_text(errors="replace")
    assert "sessions are pinned in each worker process" not in output  # no warning: the pins are shared
