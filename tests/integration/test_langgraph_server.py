"""The graphs served by ``langgraph dev`` (in-memory LangGraph API) and driven with the official SDK.

The server runs on loopback in its own process group, on a free port, with
analytics and tracing off. It gets the repository's ``langgraph.json`` with the
graph paths made absolute and runs in a temporary directory, so its dev
persistence (``.langgraph_api/``) does not land in the working tree; ``PYTHONPATH``
names the repository, so the server imports this checkout's ``sale_graph`` (not the
one an editable install points at).

``langgraph.json``'s ``http.app`` serves the SALE gateway beside the graphs: a second
server, its pool (``$SALE_POOL``) on the loopback wire server, answers
``/v1/chat/completions`` and still serves the graphs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.contract.sale_apps import LARGE_PLAN, behaviours, chats, write_pool
from tests.contract.wire_server import WireServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SMALL_CAPS = {"use_memory": False, "bid_max_tokens": 48, "jury_max_tokens": 8, "execute_step_max_tokens": 48,
              "execute_max_steps": 2}
# The embedded_server fixture has already checked the endpoints; the per-run ping (a few
# seconds' timeout) only adds flakiness when other processes keep the 2 cores busy.
CONTEXT = {**SMALL_CAPS, "check_endpoints": False}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_config(tmp: Path) -> Path:
    """The repo's langgraph.json with paths made absolute (the CLI resolves them against the cwd)."""
    cfg = json.loads((REPO / "langgraph.json").read_text())
    cfg["graphs"] = {name: str(REPO / spec.lstrip("./")) if spec.startswith("./") else spec for name, spec in cfg["graphs"].items()}
    cfg["dependencies"] = [str((REPO / d).resolve()) for d in cfg.get("dependencies", [])]
    path = tmp / "langgraph.json"
    path.write_text(json.dumps(cfg, indent=2))
    return path


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_repo_langgraph_json_is_valid() -> None:
    pytest.importorskip("langgraph_cli", reason='needs langgraph-cli[inmem]: pip install "langgraph-cli[inmem]"')
    from langgraph_cli.config import validate_config_file

    cfg = validate_config_file(REPO / "langgraph.json")
    assert set(cfg["graphs"]) == {"sale", "research_assistant", "routed_agents"}
    for spec in cfg["graphs"].values():
        path, _, var = spec.partition(":")
        assert (REPO / path).is_file() and var == "graph"
    assert cfg["env"]["LANGSMITH_TRACING"] == "false"


@contextlib.contextmanager
def _langgraph_dev(tmp: Path, **env: str) -> Iterator[dict[str, Any]]:
    """``langgraph dev`` on a free loopback port with ``env`` added; killed (whole process group) afterwards."""
    config = _server_config(tmp)
    port = _free_port()
    env = {**os.environ, "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p), **env}
    cli = Path(sys.executable).with_name("langgraph")
    log_path = tmp / "server.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [str(cli), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port), "--config", str(config)],
        cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    info = {"url": url, "port": port, "pgid": proc.pid, "proc": proc, "log": log_path, "cwd": tmp}
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"langgraph dev exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"langgraph dev did not answer /ok in 120 s:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield info
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def langgraph_server(tmp_path_factory: pytest.TempPathFactory, embedded_server: Any) -> Iterator[dict[str, Any]]:
    """``langgraph dev`` on a free loopback port; killed (whole process group) afterwards.

    It depends on ``embedded_server`` so that it inherits ``SALE_EMBEDDED_PORT``: runs
    with no ``pool`` in their context use the embedded servers the tests started.
    """
    pytest.importorskip("langgraph_api", reason='needs langgraph-cli[inmem]: pip install "langgraph-cli[inmem]"')
    with _langgraph_dev(tmp_path_factory.mktemp("langgraph-dev")) as info:
        yield info


@pytest.fixture(scope="module")
def gateway_wire() -> Iterator[WireServer]:
    """The loopback wire server behind the gateway's pool (``large`` wins each auction)."""
    with WireServer(behaviours()) as server:
        yield server


@pytest.fixture(scope="module")
def langgraph_gateway_server(tmp_path_factory: pytest.TempPathFactory, gateway_wire: WireServer) -> Iterator[dict[str, Any]]:
    """``langgraph dev`` whose ``http.app`` (the SALE gateway) has ``$SALE_POOL`` on the wire server: quick, no model servers."""
    pytest.importorskip("langgraph_api", reason='needs langgraph-cli[inmem]: pip install "langgraph-cli[inmem]"')
    tmp = tmp_path_factory.mktemp("langgraph-dev-gateway")
    pool = write_pool(tmp / "pool.toml", gateway_wire)
    with _langgraph_dev(tmp, SALE_POOL=str(pool), SALE_GATEWAY_CONFIG="") as info:
        yield info


def test_the_gateway_answers_chat_completions_beside_the_graphs(langgraph_gateway_server: dict[str, Any],
                                                                 gateway_wire: WireServer) -> None:
    import openai
    from langgraph_sdk import get_sync_client

    url = langgraph_gateway_server["url"]
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="any", max_retries=0, timeout=60)
    assert [m.id for m in client.models.list()] == ["sale", "small", "large"]
    raw = client.chat.completions.with_raw_response.create(
        model="sale", messages=[{"role": "user", "content": "What is 2 + 3?"}], extra_headers={"x-sale-session": "lg-dev"})
    answer = raw.parse()
    assert answer.choices[0].message.content == "Final Answer: 5"
    assert raw.headers["x-sale-winner"] == "large" and raw.headers["x-sale-pinned"] == "false"
    assert answer.model_extra["sale"]["strategy"] == LARGE_PLAN  # type: ignore[index]
    streamed = client.chat.completions.create(model="sale", messages=[{"role": "user", "content": "And 3 + 4?"}],
                                              stream=True, extra_headers={"x-sale-session": "lg-dev"})
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "Final Answer: 5"
    assert [r.model for r in chats(gateway_wire, "bid")] and len(chats(gateway_wire, "bid")) == 2  # the second turn was pinned
    assert [r.model for r in chats(gateway_wire, "agent")] == ["large", "large"]
    # The gateway's metrics sit beside the API server's own /metrics; the graphs are still served.
    metrics = httpx.get(f"{url}/v1/sale/metrics", timeout=10)
    assert metrics.status_code == 200 and 'sale_gateway_turns_total{kind="pinned"} 1.0' in metrics.text
    error = httpx.post(f"{url}/v1/chat/completions", json={"model": "gpt-5", "messages": []}, timeout=10)
    assert error.status_code == 400 and set(error.json()["error"]) == {"message", "type", "code", "param"}
    graphs = {a["graph_id"] for a in get_sync_client(url=url).assistants.search()}
    assert graphs == {"sale", "research_assistant", "routed_agents"}


def test_schemas_render(langgraph_server: dict[str, Any]) -> None:
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=langgraph_server["url"])
    assistants = {a["graph_id"]: a for a in client.assistants.search()}
    assert set(assistants) == {"sale", "research_assistant", "routed_agents"}

    sale = client.assistants.get_schemas(assistants["sale"]["assistant_id"])
    # A task, or chat-shaped input (the task from the last human message): neither key is required alone.
    assert not sale["input_schema"].get("required")
    assert {"task", "messages", "domain", "gold", "tests", "entry_point"} <= set(sale["input_schema"]["properties"])
    assert {"answer", "selection", "bids", "votes", "ledger"} <= set(sale["output_schema"]["properties"])
    ctx = sale["context_schema"]
    assert ctx["title"] == "SaleContext"
    assert {"pool", "weights", "bid_max_tokens", "use_memory", "approve_before_execute"} <= set(ctx["properties"])
    # pool: AgentPool | str | None renders as anyOf with the AgentPool object defined.
    pool_types = ctx["properties"]["pool"]["anyOf"]
    assert {"$ref": "#/$defs/AgentPool"} in pool_types and {"type": "string"} in pool_types and {"type": "null"} in pool_types
    assert "AgentSpec" in ctx["$defs"] and "price_output" in ctx["$defs"]["AgentSpec"]["properties"]

    assistant = client.assistants.get_schemas(assistants["research_assistant"]["assistant_id"])
    assert assistant["input_schema"]["required"] == ["question"]
    assert "final_report" in assistant["output_schema"]["properties"]
    assert assistant["context_schema"]["title"] == "SaleContext"


def test_auction_through_the_api(langgraph_server: dict[str, Any], embedded_server: Any) -> None:
    from langgraph_sdk import get_sync_client

    from sale_graph.embedded import embedded_pool

    client = get_sync_client(url=langgraph_server["url"])
    thread = client.threads.create()
    parts = []
    start = time.monotonic()
    for part in client.runs.stream(
        thread["thread_id"], "sale", input={"task": "What is the capital of Australia?"},
        stream_mode=["updates", "custom"], context=CONTEXT,
    ):
        parts.append((time.monotonic() - start, part.event, part.data))
    assert not [d for _, ev, d in parts if ev == "error"], parts

    names = [d["event"] for _, ev, d in parts if ev == "custom"]
    pool_names = set(embedded_pool().names)
    assert names[0] == "auction_start"
    order = [n for n in names if n in ("bid", "jury", "select")]
    assert order == ["bid"] * 2 + ["jury"] * 4 + ["select"]
    assert names.index("select") < names.index("execute_start") < names.index("execute")
    updated_nodes = [next(iter(d)) for _, ev, d in parts if ev == "updates"]
    assert updated_nodes[0] == "prepare" and updated_nodes[-1] == "remember"
    assert updated_nodes.count("bid") == 2 and updated_nodes.count("jury") == 4
    # Streamed while the models worked: the bids arrived before the execution had even started.
    t_bid = max(t for t, ev, d in parts if ev == "custom" and d["event"] == "bid")
    t_exec = next(t for t, ev, d in parts if ev == "custom" and d["event"] == "execute")
    assert t_bid < t_exec, (t_bid, t_exec)

    values = client.threads.get_state(thread["thread_id"])["values"]
    assert {b["agent"] for b in values["bids"]} == pool_names
    assert all(b["status"] == "ok" and 0 < b["tokens"] <= 48 for b in values["bids"])
    assert len(values["votes"]) == 4 and all(v["reason"] for v in values["votes"])
    assert values["selection"]["winner"] in pool_names and values["selection"]["reason"]
    assert {r["agent"] for r in values["scores"]} == pool_names
    assert {"bid", "jury"} <= {e["phase"] for e in values["ledger"]}
    assert all(e["input_tokens"] > 0 for e in values["ledger"])
    assert values["execution"]["agent"] == values["selection"]["winner"]
    assert len(values["auction_id"]) == 32 and names.count("auction_start") == 1


def test_approval_interrupt_and_pool_as_json_through_the_api(langgraph_server: dict[str, Any], embedded_server: Any) -> None:
    """The context's ``pool`` as a JSON object (AgentPool | str | None) and a human override via ``Command``."""
    from dataclasses import asdict

    from langgraph_sdk import get_sync_client

    from sale_graph.embedded import embedded_pool

    pool = embedded_pool()
    pool_json = {"agents": [asdict(a) for a in pool.agents]}
    client = get_sync_client(url=langgraph_server["url"])
    thread = client.threads.create()
    ctx = {**CONTEXT, "pool": pool_json, "approve_before_execute": True}
    client.runs.wait(thread["thread_id"], "sale", input={"task": "Name the largest planet."}, context=ctx)
    state = client.threads.get_state(thread["thread_id"])
    assert state["next"] == ["approve"]
    interrupts = [i for task in state["tasks"] for i in task.get("interrupts", [])]
    assert len(interrupts) == 1
    winner = interrupts[0]["value"]["winner"]
    assert winner in pool.names and "execution" not in state["values"]
    other = next(n for n in pool.names if n != winner)

    client.runs.wait(thread["thread_id"], "sale", command={"resume": {"winner": other}}, context=ctx)
    values = client.threads.get_state(thread["thread_id"])["values"]
    assert values["selection"]["winner"] == other and "human override" in values["selection"]["reason"]
    assert values["execution"]["agent"] == other
    assert len(values["bids"]) == 2 and len(values["votes"]) == 4  # the resume re-ran no bid or vote


def test_server_is_gone_after_kill(langgraph_server: dict[str, Any]) -> None:
    """Stop the server the way the fixture does and check no process of its group is left."""
    proc = langgraph_server["proc"]
    pgid = langgraph_server["pgid"]
    assert _group_alive(pgid) and _port_open(langgraph_server["port"])
    os.killpg(pgid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _group_alive(pgid), "processes of the langgraph dev group survived SIGTERM"
    assert not _port_open(langgraph_server["port"])
