"""`sale bench record` against the real embedded pool: a small market, then crash-and-resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sale_graph.bench.market.log import read_log
from sale_graph.bench.runs.record import RecordSettings, record_tasks
from sale_graph.bench.tasks.schema import task_from_dict, write_tasks

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "examples" / "corpus.jsonl"  # the search tasks' local corpus (ships with the repo)
SEARCH = {"backend": "local", "path": str(CORPUS)}
CAPS = ["--bid-max-tokens", "48", "--jury-max-tokens", "8", "--execute-step-max-tokens", "48", "--execute-max-steps", "2",
        "--corpus", str(CORPUS)]
TASKS = [
    {"id": "cap-fr", "domain": "search", "text": "What is the capital of France?", "gold": ["Paris"], "bin": 0, "bin_source": "proxy:test"},
    {"id": "add", "domain": "coding", "text": "Write a Python function add(a, b) that returns a + b.",
     "tests": "def check(candidate):\n    assert candidate(2, 3) == 5\n", "entry_point": "add", "bin": 1, "bin_source": "proxy:test"},
    {"id": "planet", "domain": "search", "text": "Name the largest planet of the solar system.", "gold": ["Jupiter"], "bin": 0,
     "bin_source": "proxy:test"},
]


def test_record_small_market(embedded_pool, tmp_path) -> None:
    tasks = [task_from_dict(t) for t in TASKS[:2]]
    settings = RecordSettings(bid_max_tokens=48, jury_max_tokens=8, execute_step_max_tokens=48, execute_max_steps=2)
    log = tmp_path / "log.jsonl"
    summary = record_tasks(tasks, embedded_pool, str(log), settings, search=SEARCH, progress=False)
    assert summary.recorded == 2 and summary.cost_usd > 0
    records = read_log(log).records
    assert [r["task"]["id"] for r in records] == ["cap-fr", "add"]
    n = len(embedded_pool.names)
    for rec in records:
        assert [b["agent"] for b in rec["bids"]] == embedded_pool.names
        ok = [b for b in rec["bids"] if b["status"] == "ok"]
        for b in ok:
            assert 0 < b["tokens"] <= 48 and b["entropy_source"] in ("logprobs", "text") and b["cost_usd"] > 0
        assert len(rec["jury"]) == n * len(ok)  # every agent judges every successful bid, its own included
        assert {(v["judge"], v["bidder"]) for v in rec["jury"]} == {(j, b["agent"]) for b in ok for j in embedded_pool.names}
        for v in rec["jury"]:
            assert (v["status"] == "ok") == (v["gamma"] is not None) and v["reason"]
        assert [e["agent"] for e in rec["executions"]] == embedded_pool.names
        assert [e["agent"] for e in rec["plain_executions"]] == embedded_pool.names  # the baselines' runs, no plan
        for e in rec["executions"] + rec["plain_executions"]:
            assert isinstance(e["passed"], bool) and e["grade"]["detail"]
            assert e["steps"] <= 2 and e["output_tokens"] <= 2 * 48
        assert {e["mode"] for e in rec["executions"]} == {"plan"} and {e["mode"] for e in rec["plain_executions"]} == {"plain"}
    # a second run skips both tasks
    again = record_tasks(tasks, embedded_pool, str(log), settings, search=SEARCH, progress=False)
    assert again.recorded == 0 and again.done_before == 2
    # the report runs on the real log (split all: a 2-task log has no test split to speak of)
    from sale_graph.bench.report.build import run_report

    rep, paths, _ = run_report(log, tmp_path / "report", split="all", text_routers=False)
    assert rep["meta"]["tasks"] == 2 and (tmp_path / "report" / "results.json").is_file()


def _start(tasks_file: Path, log: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sale_graph.bench", "record", "--tasks", str(tasks_file), "--out", str(log),
         "--no-progress", *CAPS],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def _wait_lines(log: Path, n: int, proc: subprocess.Popen[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_bytes().count(b"\n") >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"recorder exited early ({proc.returncode}): {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.2)
    raise AssertionError(f"no {n} records in {log} within {timeout} s")


@pytest.fixture
def sigint_reaches_children() -> Any:
    """Children started here act on Ctrl-C even when this process was started with SIGINT ignored.

    A command started in the background by a non-interactive shell ignores SIGINT, and its
    children inherit that: the recorder would never see the test's Ctrl-C. While this
    process catches the signal instead, its children start with the default (Python's
    ``KeyboardInterrupt``).
    """
    before = signal.getsignal(signal.SIGINT)
    if before == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("sigint_reaches_children")
def test_resume_after_sigint_and_sigkill(embedded_pool, tmp_path) -> None:
    tasks_file = tmp_path / "tasks.jsonl"
    write_tasks([task_from_dict(t) for t in TASKS], tasks_file)
    log = tmp_path / "log.jsonl"
    env = dict(os.environ)

    proc = _start(tasks_file, log, env)  # Ctrl-C after the first record
    _wait_lines(log, 1, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err

    proc = _start(tasks_file, log, env)  # SIGKILL once one more record is in, then a torn write
    _wait_lines(log, 2, proc)
    proc.kill()
    proc.communicate(timeout=30)
    with log.open("ab") as fh:
        fh.write(b'{"schema": 1, "task": {"id": "plan')  # what a write cut by the kill looks like

    proc = _start(tasks_file, log, env)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "removed a partial last line" in err
    ids = [r["task"]["id"] for r in read_log(log, allow_partial_tail=False).records]
    assert sorted(ids) == sorted(t["id"] for t in TASKS)  # every task exactly once
    lines = log.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["executions"] for line in lines)
