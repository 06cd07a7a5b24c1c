"""`sale bench live`: SALE with its memory, run for real on the test split in seeded task orders.

Unlike the replayed routers, SALE with memory changes as it goes (each auction is
remembered and cheaper agents refine their bids from it), so its result depends on
the order tasks arrive in and needs real model calls. ``--orders K --seed N`` runs
the tasks in ``K`` orders, order ``k`` being the permutation drawn by
``numpy.random.default_rng([N, k])``, each with a fresh memory of its own
(``<memory dir>/order-<k>``), through the compiled graph
(:func:`sale_graph.runner.run_auction`), graded like the recorded executions.

One JSONL line per (order, task) (``kind: live``), fsync'd and resumable like the
market log (a rerun continues each order with its memory). ``sale bench report``
reads these lines (:mod:`sale_graph.bench.report.live`) alone or beside a market log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sale_graph.bench.market.log import LogWriter, read_log, record_key, repair_log
from sale_graph.bench.runs.record import RecordSettings, grade_execution
from sale_graph.bench.tasks.schema import Task
from sale_graph.context import SaleContext
from sale_graph.graph import build_sale_graph
from sale_graph.pool import AgentPool
from sale_graph.runner import run_auction


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


def task_order(n: int, seed: int, order: int) -> np.ndarray:
    """The permutation of ``n`` tasks used for order ``order`` with seed ``seed``."""
    return np.random.default_rng([seed, order]).permutation(n)


def _by_phase(ledger: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for e in ledger:
        ph = out.setdefault(e["phase"], {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
        ph["input_tokens"] += e["input_tokens"]
        ph["output_tokens"] += e["output_tokens"]
        ph["cost_usd"] += e["cost_usd"]
    return out


def live_record(task: Task, state: dict[str, Any], timings: dict[str, float], pool: AgentPool, order: int, position: int,
                seed: int, f1_threshold: float | None) -> dict[str, Any]:
    """One graded line of a live log: who won (and in which round), the refinement, the outcome and the ledger."""
    grade = grade_execution(task, state.get("answer", ""), f1_threshold)
    ledger = state.get("ledger", [])
    selection = state.get("selection", {})
    execution = {k: v for k, v in (state.get("execution") or {}).items() if k != "answer"}
    return {
        "schema": 2, "kind": "live", "order": order, "position": position, "seed": seed, "task": task.to_dict(),
        "agents": [{"name": a.name, "model": a.model, "price_input": a.price_input, "price_output": a.price_output}
                   for a in pool.agents],
        "winner": selection.get("winner"), "winner_round": selection.get("round"),
        "provisional_winner": selection.get("provisional_winner"), "refinement": state.get("refinement", {}),
        "execution": execution, "answer": state.get("answer", ""), "passed": bool(grade.pop("passed")), "grade": grade,
        "cost_usd": float(sum(e["cost_usd"] for e in ledger)), "by_phase": _by_phase(ledger), "timings": timings,
        "notes": state.get("notes", []),
    }


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
    orders: int = 1,
    seed: int = 0,
    graph: Any | None = None,
) -> LiveSummary:
    """Run the real graph with memory on ``tasks`` in ``orders`` seeded orders; one graded line per (order, task).

    ``graph`` (a compiled SALE graph) is for tests; by default the project's graph is built.
    """
    if orders < 1:
        raise ValueError(f"orders must be at least 1, got {orders}")
    settings = settings or RecordSettings()
    out = Path(out)
    repair_log(out)
    done = {record_key(r) for r in read_log(out).records} if out.exists() else set()
    mem_root = Path(memory_dir or str(out.with_name(out.name + ".memory")))
    graph = graph or build_sale_graph().compile()
    plan = [(k, p, tasks[int(j)]) for k in range(orders) for p, j in enumerate(task_order(len(tasks), seed, k))]
    todo = [(k, p, t) for k, p, t in plan if record_key({"kind": "live", "order": k, "task": {"id": t.id}}) not in done]
    bar = None
    if progress:
        from tqdm import tqdm  # optional extra: bench (tqdm)

        bar = tqdm(total=len(plan), initial=len(plan) - len(todo), unit="task", desc="live SALE")
    ran = passed = 0
    cost = 0.0
    try:
        with LogWriter(out) as writer:
            for k, position, task in todo:
                ctx = SaleContext(
                    pool=pool, weights=weights, use_memory=True, refine=True, memory_dir=str(mem_root / f"order-{k}"),
                    check_endpoints=False, max_concurrency=settings.max_concurrency, bid_max_tokens=settings.bid_max_tokens,
                    jury_max_tokens=settings.jury_max_tokens, execute_step_max_tokens=settings.execute_step_max_tokens,
                    execute_max_steps=settings.execute_max_steps, execute_max_tokens=settings.execute_max_tokens,
                    execute_wall_time_s=settings.execute_wall_time_s, search=search,
                )
                run = run_auction(live_input(task), ctx, graph=graph)
                rec = live_record(task, run.state, run.timings, pool, k, position, seed, settings.f1_threshold)
                writer.append(rec)
                ran += 1
                cost += rec["cost_usd"]
                passed += int(rec["passed"])
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"order {k}, ${cost:.6f}")
    finally:
        if bar is not None:
            bar.close()
    return LiveSummary(done_before=len(plan) - len(todo), ran=ran, passed=passed, cost_usd=cost)
