"""A full auction through the real local llama.cpp servers: real HTTP, real token counts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from sale_graph import SaleContext, build_sale_graph
from sale_graph.llm import call_model
from tests.procs import live_processes

pytestmark = pytest.mark.integration


def test_max_tokens_limit_really_holds(embedded_pool) -> None:
    story = [("user", "Write a very long story about a dragon, at least 500 words.")]
    for agent in embedded_pool.agents:
        result = call_model(agent.chat_model(max_tokens=7, logprobs=False), story)
        assert result.usage_reported
        assert 0 < result.output_tokens <= 7, (agent.name, result.output_tokens)


def test_full_auction_on_embedded_pool(embedded_pool) -> None:
    graph = build_sale_graph().compile()
    ctx = SaleContext(pool=embedded_pool, use_memory=False, bid_max_tokens=48, jury_max_tokens=8, execute_step_max_tokens=48)
    out = graph.invoke({"task": "What is the capital of Australia?"}, context=ctx)

    assert {b["agent"] for b in out["bids"]} == set(embedded_pool.names)
    for b in out["bids"]:
        assert b["status"] == "ok" and 0 < b["tokens"] <= 48
    sources = {b["agent"]: b["entropy_source"] for b in out["bids"]}
    assert sources == {"smollm2-135m": "logprobs", "gemma3-270m": "text"}
    assert len(out["votes"]) == 4  # every agent judges every bid, its own included
    for v in out["votes"]:
        assert (v["status"] == "ok") == (v["likert"] is not None) and v["reason"]
    assert out["selection"]["winner"] in embedded_pool.names
    assert out["execution"]["status"] in ("completed", "budget_exhausted")
    phases = {e["phase"] for e in out["ledger"]}
    assert {"bid", "jury", "execute"} <= phases
    assert all(e["input_tokens"] > 0 for e in out["ledger"])
    bid_tokens = {e["agent"]: e["output_tokens"] for e in out["ledger"] if e["phase"] == "bid"}
    assert bid_tokens == {b["agent"]: b["tokens"] for b in out["bids"]}


def test_cli_run_and_pool_check(embedded_server, tmp_path) -> None:
    env = {**os.environ, "SALE_HOME": os.environ.get("SALE_HOME", str(tmp_path))}
    check = subprocess.run([sys.executable, "-m", "sale_graph.cli", "pool", "check"], capture_output=True, text=True, env=env, timeout=60)
    assert check.returncode == 0, check.stderr
    assert [line.split()[0] for line in check.stdout.splitlines()] == ["ok", "ok"]
    run = subprocess.run(
        [sys.executable, "-m", "sale_graph.cli", "run", "--no-memory", "--json", "Name the largest planet."],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    state = json.loads(run.stdout)
    assert state["selection"]["winner"] in ("smollm2-135m", "gemma3-270m")
    assert state["timings"]["total"] >= state["timings"]["auction"] > 0
    assert "bid from smollm2-135m" in run.stderr  # progress is printed while models work


def test_unreachable_pool_fails_clearly(tmp_path) -> None:
    pool = tmp_path / "pool.toml"
    pool.write_text('[[agents]]\nname = "ghost"\nmodel = "m"\nbase_url = "http://127.0.0.1:9/v1"\nprice_input = 1\nprice_output = 1\n')
    run = subprocess.run([sys.executable, "-m", "sale_graph.cli", "run", "--pool", str(pool), "--no-memory", "hi"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "agent 'ghost' at http://127.0.0.1:9/v1/models" in run.stderr


def _servers_on(port: int) -> list[str]:
    """Command lines of the live model servers of ``port``: llama-server's ``--port N``, llama-cpp-python's config file."""
    return [" ".join(argv) for _, argv in live_processes()
            if any(arg == str(port) or arg.endswith(f"-{port}.json") for arg in argv)]


@pytest.mark.parametrize("backend", ["llama-cpp-python", "llama-server"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_serve_leaves_no_server_behind(tmp_path, sig, backend) -> None:
    import socket
    import time

    from tests.integration.conftest import _free_port_pair, require_llama_server

    if backend == "llama-server":
        require_llama_server()
    port = _free_port_pair()
    env = {**os.environ, "SALE_EMBEDDED_PORT": str(port), "SALE_HOME": os.environ.get("SALE_HOME", str(tmp_path))}
    proc = subprocess.Popen([sys.executable, "-m", "sale_graph.cli", "serve", "--backend", backend],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        while line and "Ctrl-C" not in line:
            line = proc.stdout.readline()
        assert "Ctrl-C" in line, proc.stderr.read()
        assert _servers_on(port) and _servers_on(port + 1), "the servers were not found by their port"
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        refused = 0
        for p in (port, port + 1):
            with socket.socket() as s:
                refused += s.connect_ex(("127.0.0.1", p)) != 0
        left = _servers_on(port) + _servers_on(port + 1)
        if refused == 2 and not left:
            break
        time.sleep(0.3)
    assert refused == 2, f"a model server still listens after {sig.name} of `sale serve`"
    assert not left, f"model server processes outlived `sale serve` ({sig.name}): {left}"
