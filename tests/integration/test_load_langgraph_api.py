"""A load test on loopback: 20 concurrent auctions through the LangGraph API server.

Everything is real and on 127.0.0.1, each piece in its own process group (killed,
group and all, at teardown):

* a Chroma server (``chroma run``), the shared auction memory (``context.memory_url``);
* the contract tests' :class:`~tests.contract.wire_server.WireServer` in this process: an
  OpenAI-compatible endpoint serving three models, each answering after a fixed 0.2 s;
* ``langgraph dev`` (in-memory LangGraph API) serving the repo's ``sale`` graph, with
  room for 32 jobs at once (its default is 10);
* the official ``langgraph-sdk`` async client, which starts 20 stateless runs at once
  (``runs.wait(None, "sale", ...)``), each with its own task and ``request_id``.

The run shape is fixed (``refine`` off, per-bid jury): 3 bids, 9 jury calls and one
execution step (the wire model answers ``Final Answer: ...`` to the executor, so the
ReAct loop ends at once) = 13 model calls a run. One warm-up run and one timed
single run go first; then the 20 at once. The test checks that every run completes
with an answer and a winner, that each answer and each stored bid belong to its own
run (no crosstalk between concurrent runs), that the memory holds every auction
exactly once under its ``request_id``, that the endpoint saw exactly the calls the
runs account for, and prints p50/p95/max run latency, the total wall time and its
ratio to one run.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.contract.wire_formats import ModelBehaviour, last_user_text, message_text
from tests.contract.wire_server import RecordedRequest, WireServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

REPO = Path(__file__).resolve().parents[2]

N_RUNS = 20
LATENCY_S = 0.2
#: (model id = agent name, price per 1M tokens): distinct prices, so the cheapest wins a tie.
MODELS = (("lt-small", 0.05), ("lt-medium", 0.40), ("lt-large", 2.00))
NAMES = tuple(name for name, _ in MODELS)
CALLS_PER_RUN = {"bid": 3, "jury": 9, "execute": 1}
RUN_TIMEOUT_S = 150.0
TAG_RE = re.compile(r"\[(LT-[A-Za-z0-9]+)\]")


# --- the fake models -------------------------------------------------------------------------


def _texts(request: Mapping[str, Any], role: str) -> str:
    return "\n".join(message_text(m.get("content")) for m in request.get("messages") or [] if m.get("role") == role)


def phase_of(request: Mapping[str, Any]) -> str:
    """Which auction phase sent this chat request, from the prompts of ``sale_graph.prompts``."""
    system = _texts(request, "system")
    if "You won the auction" in system:
        return "execute"
    if "Rate how likely" in system:
        return "jury"
    if "Write a short plan" in last_user_text(request):
        return "bid"
    return "other"


def tag_of(request: Mapping[str, Any]) -> str:
    """The run tag (``LT-07``) quoted in the request's last user message (the task)."""
    found = TAG_RE.findall(last_user_text(request))
    return found[0] if found else "?"


def responder(request: Mapping[str, Any]) -> str:
    """A plan for bids (quoting the run's tag), ``SCORE: 4`` for text judges, ``Final Answer`` for the executor.

    Judges asked with ``json_schema`` (this pool's setting) get the schema instance instead.
    """
    phase, tag = phase_of(request), tag_of(request)
    if phase == "execute":
        return f"Final Answer: done {tag}"
    if phase == "jury":
        return "SCORE: 4"
    return f"PLAN: 1. Read task {tag}. 2. Solve it step by step. 3. Check the result."


def task_text(tag: str) -> str:
    return f"[{tag}] Load test task {tag}: name one prime number greater than {sum(map(ord, tag))}."


# --- processes -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left of it."""
    pgid = proc.pid
    if proc.poll() is None:
        try:
            os.killpg(pgid, signal.SIGTERM)
            proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not answer {url} within {timeout_s:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.3)


def _start(cmd: list[str], cwd: Path, env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh ``chroma run`` server on a free loopback port."""
    exe = Path(sys.executable).with_name("chroma")
    if not exe.exists():
        pytest.fail("the `chroma` CLI (from the chromadb package) is not next to the Python executable")
    path = tmp_path_factory.mktemp("load-chroma")
    port = _free_port()
    log = path / "chroma.log"
    proc = _start([str(exe), "run", "--path", str(path / "data"), "--host", "127.0.0.1", "--port", str(port)],
                  path, {**os.environ, "ANONYMIZED_TELEMETRY": "False"}, log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{url}/api/v2/heartbeat", proc, log, "chroma run", 60)
        yield url
    finally:
        _kill_group(proc)


@pytest.fixture(scope="module")
def wire() -> Iterator[WireServer]:
    """The fixed-latency OpenAI-compatible endpoint, three models."""
    behaviour = ModelBehaviour(latency_s=LATENCY_S, responder=responder)
    with WireServer(dict.fromkeys(NAMES, behaviour)) as server:
        yield server


def _server_config(tmp: Path) -> Path:
    """The repo's langgraph.json with paths made absolute (the CLI resolves them against the cwd)."""
    cfg = json.loads((REPO / "langgraph.json").read_text())
    cfg["graphs"] = {n: str(REPO / s.lstrip("./")) if s.startswith("./") else s for n, s in cfg["graphs"].items()}
    cfg["dependencies"] = [str((REPO / d).resolve()) for d in cfg.get("dependencies", [])]
    path = tmp / "langgraph.json"
    path.write_text(json.dumps(cfg, indent=2))
    return path


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``langgraph dev`` on a free loopback port, 32 jobs per worker, its state under a temp dir."""
    pytest.importorskip("langgraph_api", reason='needs langgraph-cli[inmem]: pip install "langgraph-cli[inmem]"')
    pytest.importorskip("langgraph_sdk")
    tmp = tmp_path_factory.mktemp("load-langgraph-dev")
    port = _free_port()
    env = {**os.environ, "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false",
           "SALE_HOME": str(tmp / "sale-home")}
    cli = Path(sys.executable).with_name("langgraph")
    log = tmp / "server.log"
    proc = _start([str(cli), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port),
                   "--n-jobs-per-worker", "32", "--config", str(_server_config(tmp))], tmp, env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{url}/ok", proc, log, "langgraph dev", 120)
        yield url
    finally:
        _kill_group(proc)
        print(f"\n[langgraph dev log: {log}]")


# --- the test --------------------------------------------------------------------------------


def _pool_toml(path: Path, base_url: str) -> Path:
    blocks = [
        f'[[agents]]\nname = "{name}"\nmodel = "{name}"\nbase_url = "{base_url}"\nprice_input = {price}\n'
        f'price_output = {price}\nmax_concurrency = 64\nstructured_output = "json_schema"\nlogprobs = true\n'
        for name, price in MODELS
    ]
    path.write_text("\n".join(blocks))
    return path


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _check_run(out: dict[str, Any], rid: str, tag: str) -> str:
    assert "__error__" not in out, out["__error__"]
    assert out["auction_id"] == rid
    winner = out["selection"]["winner"]
    assert winner in NAMES and out["selection"]["reason"]
    assert out["answer"] == f"done {tag}", (rid, out["answer"])
    assert out["execution"]["agent"] == winner
    assert sorted(b["agent"] for b in out["bids"]) == sorted(NAMES)
    assert all(b["status"] == "ok" and tag in b["strategy"] and b["round"] == "original" for b in out["bids"])
    # json_schema answers come from the wire server's schema instance ({"score": 0}, the enum's first value).
    assert len(out["votes"]) == 9 and all(v["status"] == "ok" and v["likert"] is not None for v in out["votes"]), out["votes"]
    assert not out.get("memory_error") and not out.get("degraded"), out.get("notes")
    assert "stored 3 strategies in the auction memory" in out["notes"], out["notes"]
    return str(winner)


def test_twenty_concurrent_runs_through_the_api(api_url: str, chroma_url: str, wire: WireServer, tmp_path: Path) -> None:
    from langgraph_sdk import get_client

    from sale_graph.memory import AuctionMemory

    pool = _pool_toml(tmp_path / "pool.toml", wire.base_url)
    context = {
        "pool": str(pool), "memory_url": chroma_url, "use_memory": True, "refine": False, "check_endpoints": False,
        "max_concurrency": 16, "bid_max_tokens": 64, "jury_max_tokens": 16, "execute_step_max_tokens": 64,
        "execute_max_steps": 2,
    }
    tags = [f"LT-{i:02d}" for i in range(N_RUNS)]

    async def one(client: Any, tag: str) -> tuple[dict[str, Any], float]:
        rid = f"load-{tag.lower()}"
        t0 = time.perf_counter()
        out = await asyncio.wait_for(
            client.runs.wait(None, "sale", input={"task": task_text(tag), "request_id": rid}, context=context),
            timeout=RUN_TIMEOUT_S,
        )
        return out, time.perf_counter() - t0

    async def drive() -> tuple[float, float, int, list[tuple[dict[str, Any], float]], float, float]:
        client = get_client(url=api_url, timeout=RUN_TIMEOUT_S)
        warm_out, warm_s = await one(client, "LT-warm")  # cold: graph import, embedder, connections
        _check_run(warm_out, "load-lt-warm", "LT-warm")
        single_out, single_s = await one(client, "LT-single")
        _check_run(single_out, "load-lt-single", "LT-single")
        before = len(wire.requests())
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one(client, tag) for tag in tags))
        total = time.perf_counter() - t0
        return warm_s, single_s, before, list(results), total, t0

    warm_s, single_s, before, results, total, t_load = asyncio.run(drive())

    # Every run completed, with its own answer and a winner.
    winners = Counter(_check_run(out, f"load-{tag.lower()}", tag) for (out, _), tag in zip(results, tags, strict=True))
    latencies = [s for _, s in results]

    # The endpoint saw exactly the calls of 20 runs of the fixed shape, each answered once (no retry, no error).
    load: list[RecordedRequest] = wire.requests()[before:]
    assert all(r.method == "POST" and r.status == 200 and r.retry_count == 0 for r in load), \
        [(r.method, r.model, r.status, r.retry_count) for r in load if r.status != 200 or r.retry_count]
    phases = Counter(phase_of(r.body or {}) for r in load)
    assert phases == Counter({p: n * N_RUNS for p, n in CALLS_PER_RUN.items()}), phases
    by_model = Counter((r.model, phase_of(r.body or {})) for r in load)
    for name in NAMES:
        assert by_model[(name, "bid")] == N_RUNS and by_model[(name, "jury")] == 3 * N_RUNS, by_model
        assert by_model[(name, "execute")] == winners[name], (by_model, winners)
    executed = Counter(tag_of(r.body or {}) for r in load if phase_of(r.body or {}) == "execute")
    assert executed == Counter(tags), executed  # one execution per run, each on its own task
    peak = {name: wire.max_in_flight(name) for name in NAMES}
    windows = {
        p: (min(r.arrived for r in load if phase_of(r.body or {}) == p) - t_load,
            max((r.finished or r.arrived) for r in load if phase_of(r.body or {}) == p) - t_load)
        for p in CALLS_PER_RUN
    }

    # The memory holds every auction exactly once, under its request_id, with its own bids.
    memory = AuctionMemory.from_url(chroma_url)
    export = tmp_path / "memory.jsonl"
    memory.export_jsonl(export)
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    auctions = [line for line in lines if line.get("kind") == "auction"]
    expected_ids = {f"load-{t.lower()}" for t in tags} | {"load-lt-warm", "load-lt-single"}
    ids = Counter(a["auction_id"] for a in auctions)
    assert set(ids) == expected_ids and all(n == 1 for n in ids.values()), ids
    assert memory.count_auctions() == len(expected_ids) == N_RUNS + 2
    tasks = Counter(a["task"] for a in auctions)
    assert all(tasks[task_text(t)] == 1 for t in tags), tasks  # no run recorded twice under another id
    assert memory.count_strategies() == 3 * (N_RUNS + 2)
    for tag in tags:
        rid = f"load-{tag.lower()}"
        bids = memory.get_auction(rid)
        assert sorted(b.agent for b in bids) == sorted(NAMES), (rid, bids)
        assert all(b.round == "original" and tag in b.strategy and b.task == task_text(tag) for b in bids), (rid, bids)
        won = [b.agent for b in bids if b.won]
        assert len(won) == 1, (rid, won)

    p50, p95 = _percentile(latencies, 50), _percentile(latencies, 95)
    print(
        f"\nload test: {N_RUNS} concurrent runs via langgraph dev + langgraph-sdk, {LATENCY_S * 1000:.0f} ms per model call, "
        f"{sum(CALLS_PER_RUN.values())} calls a run"
        f"\n  warm-up run (cold)  {warm_s:6.2f} s"
        f"\n  one run             {single_s:6.2f} s"
        f"\n  run latency         p50 {p50:6.2f} s   p95 {p95:6.2f} s   max {max(latencies):6.2f} s   "
        f"mean {statistics.mean(latencies):6.2f} s"
        f"\n  total wall time     {total:6.2f} s   = x{total / single_s:.2f} of one run   "
        f"({N_RUNS / total:.1f} runs/s; sequential would be ~{N_RUNS * single_s:.1f} s)"
        f"\n  model calls (s after the load started): "
        + "   ".join(f"{p} {a:.2f}-{b:.2f}" for p, (a, b) in windows.items())
        + f"\n  winners {dict(winners)}   peak calls in flight per model {peak}"
    )
    # The runs overlapped on the endpoint (they were not served one after another).
    assert max(peak.values()) >= 4, peak
