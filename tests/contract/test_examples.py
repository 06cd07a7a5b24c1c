"""The examples of docs/langgraph.md run against the loopback wire server.

Each test writes a pool TOML pointing at a :class:`WireServer` (two agents, ``large``
wins every auction, see :mod:`tests.contract.sale_apps`) and calls the example's
``main(pool_path)``, as ``python examples/<name>.py POOL.toml`` does (``durable_app`` takes
its command's arguments, ``--pool`` among them); one example also runs as that command, in a
subprocess, with the pool from ``$SALE_POOL``. ``durable_app`` killed and resumed is
``tests/integration/test_durable_auction.py``.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from sale_graph.jury.ask import forget_detected
from tests.contract.sale_apps import LARGE_PLAN, behaviours, chats, native_tool_calls, write_pool
from tests.contract.wire_server import WireServer

pytestmark = pytest.mark.contract

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str) -> ModuleType:
    """The module ``examples/<name>.py``."""
    return importlib.import_module(f"examples.{name}")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[WireServer]:
    forget_detected()
    native_tool_calls(monkeypatch)
    with WireServer(behaviours()) as s:
        yield s
    forget_detected()


def test_subgraph_app_runs_the_auction_and_the_winner_executes(
    server: WireServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = example("subgraph_app").main(str(write_pool(tmp_path / "pool.toml", server)))
    assert out["selection"]["winner"] == "large" and out["answer"] == "5"
    assert out["history"] == [{"task": out["task"], "answer": "5", "winner": "large"}]
    executed = chats(server, "agent")
    assert [r.model for r in executed] == ["large", "large"]  # the tool call, then the answer
    assert "winner: large" in capsys.readouterr().out


def test_middleware_agent_answers_with_the_winners_model(server: WireServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = example("middleware_agent").main(str(write_pool(tmp_path / "pool.toml", server)))
    assert out["sale_auction"]["selection"]["winner"] == "large"
    assert out["messages"][-1].content == "Final Answer: 5"
    assert [r.model for r in chats(server, "agent")] == ["large", "large"]
    assert "agent model calls: 2" in capsys.readouterr().out


def test_router_app_routes_to_the_winners_node(server: WireServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = example("router_app").main(str(write_pool(tmp_path / "pool.toml", server)))
    assert out["sale_strategy"] == LARGE_PLAN and out["messages"][-1].content == "Final Answer: 5"
    calls = chats(server, "agent")
    assert [r.model for r in calls] == ["large", "large"]
    assert LARGE_PLAN in str(calls[0].body["messages"][0]["content"])  # type: ignore[index]
    assert "winner: large -> node thorough_agent" in capsys.readouterr().out


def test_durable_app_runs_a_new_auction_on_a_finished_thread(server: WireServer, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--checkpointer", f"sqlite:///{tmp_path / 'checkpoints.sqlite'}", "--thread", "t", "--pool",
            str(write_pool(tmp_path / "pool.toml", server)), "--memory-dir", str(tmp_path / "memory")]
    first = example("durable_app").main(args)
    second = example("durable_app").main([*args, "--json"])  # the thread's run finished: nothing to resume
    assert not first["resumed"] and not second["resumed"] and first["auction_id"] != second["auction_id"]
    assert [h["winner"] for h in second["history"]] == ["large", "large"] and second["answer"] == "5"
    assert not [e for e in second["ledger"] if e.get("replayed")]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"ran auction {first['auction_id']}: winner large, answer '5', 8 paid calls")
    assert json.loads(printed[1])["auction_id"] == second["auction_id"]


@pytest.mark.integration  # a fresh interpreter importing LangChain: seconds, so not among the fast tests
def test_an_example_runs_as_a_command_with_the_pool_from_the_environment(server: WireServer, tmp_path: Path) -> None:
    env = {**os.environ, "SALE_POOL": str(write_pool(tmp_path / "pool.toml", server)), "SALE_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, str(EXAMPLES / "middleware_agent.py")], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "winner: large" in done.stdout and "agent model calls:" in done.stdout
