"""``langgraph dev`` with the repository's ``langgraph.json``, driven by the SDK, on the loopback wire server.

* An unknown context key (``use_memmory``) fails the run with an error naming the allowed
  keys (the API server alone drops it silently), and the thread's next run works.
* ``routed_agents`` routes a chat turn to the winner's agent node, offline.

The pool is a TOML pointing at a :class:`WireServer` in this process (``large`` wins every
auction: :mod:`tests.contract.sale_apps`); ``routed_agents`` gets it from ``$SALE_POOL``.
The server runs in a temporary directory on a free port, in its own process group.
"""

from __future__ import annotations

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

from tests.contract.sale_apps import LARGE_PLAN, behaviours, native_tool_calls, write_pool
from tests.contract.wire_server import WireServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def wire() -> Iterator[WireServer]:
    with pytest.MonkeyPatch.context() as patch, WireServer(behaviours()) as server:
        native_tool_calls(patch)  # routed_agents' agent nodes call their add tool natively
        yield server


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, wire: WireServer) -> Iterator[dict[str, Any]]:
    """``langgraph dev`` serving the repo's graphs, ``$SALE_POOL`` = the wire pool; the process group is ended after."""
    pytest.importorskip("langgraph_api", reason='needs langgraph-cli[inmem]: pip install "langgraph-cli[inmem]"')
    tmp = tmp_path_factory.mktemp("langgraph-dev-integrations")
    pool = write_pool(tmp / "pool.toml", wire)
    cfg = json.loads((REPO / "langgraph.json").read_text())
    cfg["graphs"] = {k: str(REPO / v.lstrip("./")) for k, v in cfg["graphs"].items()}
    cfg["dependencies"] = [str(REPO)]
    (tmp / "langgraph.json").write_text(json.dumps(cfg))
    port = _free_port()
    env = {**os.environ, "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false", "SALE_POOL": str(pool),
           "SALE_HOME": str(tmp / "home")}
    log = tmp / "server.log"
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("langgraph")), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1",
         "--port", str(port), "--config", str(tmp / "langgraph.json")],
        cwd=tmp, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"langgraph dev did not start:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield {"url": url, "pool": str(pool)}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_an_unknown_context_key_fails_the_run_naming_the_allowed_keys(api: dict[str, Any]) -> None:
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=api["url"])
    thread = client.threads.create()
    context = {"pool": api["pool"], "route_only": True, "check_endpoints": False}
    bad = client.runs.wait(thread["thread_id"], "sale", input={"task": "What is 2 + 3?"},
                           context={**context, "use_memmory": False}, raise_error=False)
    error = bad["__error__"]  # type: ignore[index,call-overload]
    assert error["error"] == "ContextError"
    assert "'use_memmory' (did you mean 'use_memory'?)" in error["message"] and "allowed: pool, weights" in error["message"]
    assert client.runs.list(thread["thread_id"])[0]["status"] == "error"
    good = client.runs.wait(thread["thread_id"], "sale", input={"task": "What is 2 + 3?"},
                            context={**context, "use_memory": False})
    assert good["selection"]["winner"] == "large"  # type: ignore[index,call-overload]


def test_routed_agents_routes_a_chat_turn_to_the_winners_node(api: dict[str, Any]) -> None:
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=api["url"])
    thread = client.threads.create()
    out = client.runs.wait(thread["thread_id"], "routed_agents", input={"messages": [{"role": "user", "content": "What is 2 + 3?"}]},
                           context={"use_memory": False, "check_endpoints": False})
    assert out["sale_strategy"] == LARGE_PLAN  # type: ignore[index,call-overload]
    assert out["messages"][-1]["content"] == "Final Answer: 5"  # type: ignore[index,call-overload]
    refused = client.runs.wait(thread["thread_id"], "routed_agents", input={"messages": [{"role": "user", "content": "Hi"}]},
                               context={"pool": api["pool"]}, raise_error=False)
    assert "routes the pool it was started with" in refused["__error__"]["message"]  # type: ignore[index,call-overload]
