"""`sale bench live`: SALE with its memory, run for real on the test split in task order.

Unlike the replayed routers, SALE with memory changes as it goes (each auction
is remembered and cheaper agents refine from it), so it needs real model
calls: every task runs through the compiled graph (:func:`sale_graph.runner.run_auction`)
with a fresh memory directory (unless one is given) and is graded like the
recorded executions. One JSONL line per task, fsync'd and resumable like the
market log (a rerun continues with the same memory). Slow: one full auction
per task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sale_graph.bench.logio import LogWriter, read_log, repair_log
from sale_graph.bench.record import RecordSettings, grade_execution
from sale_graph.bench.tasks import Task
from sale_graph.pool import AgentPool


@dataclass
class LiveSummary:
    """What one live run did."""

    done_before: int
    ran: int
    passed: int
    cost_usd: float


def live_input(task: Task) -> dict[str, Any]:
    """The graph input for a benchmark task (task text, id, domain, and how to check the answer)."""
    inp: dict[str, Any] = {"task": task.text, "task_id": task.id, "domain": task.domain}
    if task.gold:
        inp["gold"] = task.gold
    if task.tests:
        inp["tests"] = task.tests
    if task.entry_point:
        inp["entry_point"] = task.entry_point
    return inp


def run_live(
    tasks: Sequence[Task],
    pool: AgentPool,
    out: str | Path,
    *,
    settings: RecordSettings | None = None,
    weights: str | None = None,
    memory_dir: str | None = None,
    search: dict[str, Any] | None = None,
    progress: bool = True,
) -> LiveSummary:
    """Run the real graph with memory on ``tasks`` in order; append one graded line per task to ``out``."""
    from sale_graph.context import SaleContext
    from sale_graph.graph import build_sale_graph
    from sale_graph.runner import run_auction

    settings = settings or RecordSettings()
    out = Path(out)
    repair_log(out)
    done = {str(r["task"]["id"]) for r in read_log(out).records} if out.exists() else set()
    mem = memory_dir or str(out.with_name(out.name + ".memory"))
    ctx = SaleContext(
        pool=pool, weights=weights, use_memory=True, refine=True, memory_dir=mem, check_endpoints=False,
        max_concurrency=settings.max_concurrency, bid_max_tokens=settings.bid_max_tokens,
        jury_max_tokens=settings.jury_max_tokens, execute_step_max_tokens=settings.execute_step_max_tokens,
        execute_max_steps=settings.execute_max_steps, execute_max_tokens=settings.execute_max_tokens,
        execute_wall_time_s=settings.execute_wall_time_s, search=search,
    )
    graph = build_sale_graph().compile()
    todo = [t for t in tasks if t.id not in done]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), unit="task", desc="live SALE")
    ran = passed = 0
    cost = 0.0
    try:
        with LogWriter(out) as writer:
            for task in todo:
                run = run_auction(live_input(task), ctx, graph=graph)
                state = run.state
                grade = grade_execution(task, state.get("answer", ""), settings.f1_threshold)
                ledger = state.get("ledger", [])
                by_phase: dict[str, dict[str, float]] = {}
                for e in ledger:
                    ph = by_phase.setdefault(e["phase"], {"tokens": 0, "cost_usd": 0.0})
                    ph["tokens"] += e["input_tokens"] + e["output_tokens"]
                    ph["cost_usd"] += e["cost_usd"]
                task_cost = sum(e["cost_usd"] for e in ledger)
                ok = bool(grade.pop("passed"))
                writer.append({
                    "schema": 1, "kind": "live", "task": task.to_dict(),
                    "winner": state.get("selection", {}).get("winner"),
                    "provisional_winner": state.get("selection", {}).get("provisional_winner"),
                    "refinement": state.get("refinement", {}), "execution": state.get("execution", {}),
                    "passed": ok, "grade": grade, "cost_usd": task_cost, "by_phase": by_phase,
                    "timings": run.timings, "agents": [a.name for a in pool.agents],
                })
                ran += 1
                cost += task_cost
                passed += int(ok)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"${cost:.6f}")
    finally:
        if bar is not None:
            bar.close()
    return LiveSummary(done_before=len(done), ran=ran, passed=passed, cost_usd=cost)
