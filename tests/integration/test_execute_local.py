"""The executor on real endpoints: a coding task checked in the sandbox, through the CLI.

A coding task's outcome says what it rests on (``execution.graded_by``): ``"tests"`` when
the task's tests ran in the sandbox on the code of the final message, ``"none"`` when
there was no code to run them on (or the run stopped). The wire-server test pins each case
with scripted answers; the embedded pool's small models may write prose instead of code,
so its test checks that the record tells the truth about whichever happened.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from sale_graph.executor.grading import NO_CODE
from tests.contract.sale_apps import role_of, write_pool
from tests.contract.wire_formats import ModelBehaviour
from tests.contract.wire_server import WireServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CODING_TASK = ROOT / "examples" / "coding_task.json"  # add(a, b), checked by two asserts

CORRECT = "Final Answer:\n```python\ndef add(a, b):\n    return a + b\n```"
WRONG = "Final Answer:\n```python\ndef add(a, b):\n    return a - b\n```"
PROSE = "Final Answer: I would add the two numbers together."


def sale_run(*args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``sale run --no-memory --json --task-file examples/coding_task.json ARGS`` in a subprocess."""
    run = subprocess.run([sys.executable, "-m", "sale_graph.cli", "run", "--no-memory", "--json",
                          "--task-file", str(CODING_TASK), *args], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    return run, json.loads(run.stdout)


def has_code(answer: str) -> bool:
    if "```" in answer:
        return True
    try:
        ast.parse(answer)
    except SyntaxError:
        return False
    return bool(answer.strip())


@pytest.mark.parametrize(("answer", "outcome", "graded_by", "detail"), [
    (CORRECT, "passed", "tests", ""),
    (WRONG, "failed", "tests", "AssertionError"),  # the tests ran and the first assert failed
    (PROSE, "failed", "none", NO_CODE),  # nothing to run the tests on: said so, not a test failure
])
def test_coding_outcome_says_whether_the_tests_ran_in_the_sandbox(tmp_path: Path, answer: str, outcome: str,
                                                                  graded_by: str, detail: str) -> None:
    def respond(request: Mapping[str, Any]) -> str:
        return {"jury": "SCORE: 4", "agent": answer}.get(role_of(request), "1. Write add(a, b). 2. Run the tests.")

    with WireServer({m: ModelBehaviour(responder=respond) for m in ("small", "large")}) as server:
        run, state = sale_run("--pool", str(write_pool(tmp_path / "pool.toml", server)))
    ex = state["execution"]
    assert "executes with tools: run_python, run_tests" in run.stderr
    assert (ex["status"], ex["outcome"], ex["graded_by"]) == ("completed", outcome, graded_by), ex
    assert detail in ex["outcome_detail"] and bool(ex["outcome_detail"]) == bool(detail)


def test_coding_task_file_runs_tests_in_sandbox(embedded_server) -> None:
    run, state = sale_run()
    ex = state["execution"]
    # The coding tools were offered to the executor (the progress line names them).
    assert "executes with tools: run_python, run_tests" in run.stderr
    seen = (ex["status"], ex["outcome"], ex["graded_by"], ex["outcome_detail"], state["answer"][:300])
    if ex["graded_by"] == "tests":  # the tests ran in the sandbox on the winner's code: passed, or the failing test
        assert ex["status"] == "completed" and (ex["outcome"] == "passed" or ex["outcome_detail"]), seen
    else:  # the small model wrote no code (or the run stopped): failed, saying why, never a sandbox verdict
        assert ex["graded_by"] == "none" and ex["outcome"] == "failed", seen
        assert (ex["outcome_detail"] == NO_CODE and not has_code(state["answer"])) or ex["status"] != "completed", seen


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
