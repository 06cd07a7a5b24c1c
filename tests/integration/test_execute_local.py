"""The executor on the embedded pool: a coding task checked in the sandbox, through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_coding_task_file_runs_tests_in_sandbox(embedded_server) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "sale_graph.cli", "run", "--no-memory", "--json",
         "--task-file", str(ROOT / "examples" / "coding_task.json")],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    state = json.loads(run.stdout)
    ex = state["execution"]
    assert ex["outcome"] in ("passed", "failed")
    assert ex["outcome_detail"] or ex["outcome"] == "passed"
    # The coding tools were offered to the executor (the progress line names them).
    assert "executes with tools: run_python, run_tests" in run.stderr


def test_execution_limits_hold_on_the_real_server(embedded_pool) -> None:
    from sale_graph import SaleContext, build_sale_graph

    graph = build_sale_graph().compile()
    ctx = SaleContext(pool=embedded_pool, use_memory=False, bid_max_tokens=32, jury_max_tokens=8,
                      execute_step_max_tokens=32, execute_max_steps=2, execute_wall_time_s=120)
    out = graph.invoke({"task": "Compute 17 * 23 with run_python and report the result.", "domain": "coding"}, context=ctx)
    ex = out["execution"]
    steps = [e for e in out["ledger"] if e["phase"] == "execute"]
    assert steps and len(steps) == ex["steps"] <= 2
    assert all(0 < e["output_tokens"] <= 32 for e in steps)
    assert ex["status"] in ("completed", "budget_exhausted")
    if ex["status"] == "budget_exhausted":
        assert "budget" in ex["detail"] and out["answer"] == ""


def test_search_task_searches_the_local_corpus_and_is_graded(embedded_server) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "sale_graph.cli", "run", "--no-memory", "--json",
         "--task-file", str(ROOT / "examples" / "search_task.json"), "--corpus", str(ROOT / "examples" / "corpus.jsonl")],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    state = json.loads(run.stdout)
    ex = state["execution"]
    assert "executes with tools: web_search, fetch_page" in run.stderr
    assert "step 0: 0 tokens -> web_search" in run.stderr  # the opening search ran against the corpus
    assert ex["tool_calls"] >= 1
    assert ex["outcome"] in ("passed", "failed") and ex["outcome_detail"]
