"""Route-only auctions on the calibration's tasks, kept as a market log.

Each task gets one auction of the library's own graph with ``route_only=True`` (bids
and jury, no execution), no memory and no refinement, under the weights being
calibrated (only their value terms matter: the cost weight is solved afterwards on
the recorded table). The log is the bench's append-only JSONL market log
(:mod:`sale_graph.bench.market.log`: one fsync'd line per task, a partial last line
repaired) with records of kind ``route``: the task, the pool's agents and prices, every
bid and every jury vote exactly as the auction's state holds them, and the auction's
own cost. A record of the same pool and task text is reused, never run again, so a
calibration can be re-solved for another target, or resumed after a crash, without a
model call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sale_graph.bench.market.errors import LogError
from sale_graph.bench.market.log import LogWriter, read_log, repair_log
from sale_graph.calibrate.errors import CalibrationError
from sale_graph.calibrate.tasks import CalibrationTask
from sale_graph.context import SaleContext
from sale_graph.errors import SaleError
from sale_graph.graph import build_sale_graph
from sale_graph.llm import ModelFactory, openai_factory
from sale_graph.pool import AgentPool, check_pool
from sale_graph.state import SaleInput
from sale_graph.weights import Weights

RECORD_SCHEMA = 1
KIND = "route"
"""The ``kind`` of a calibration record: a market record with bids and jury but no executions."""
FORCED = {"route_only": True, "use_memory": False, "refine": False, "check_endpoints": False}
"""What every calibration auction runs with, whatever the caller's settings."""


def pool_agents(pool: AgentPool) -> list[dict[str, Any]]:
    """The pool as a market record lists it: name, model and prices of every agent."""
    return [{"name": a.name, "model": a.model, "price_input": a.price_input, "price_output": a.price_output} for a in pool.agents]


@dataclass(frozen=True)
class TaskProgress:
    """One task done: ``status`` is ``recorded`` (auction run now), ``reused`` (from the log) or ``failed``."""

    done: int
    total: int
    task_id: str
    status: str
    detail: str = ""


@dataclass
class RecordedAuctions:
    """The calibration's auctions: the records (in task order), the failed tasks and how many came from the log."""

    records: list[dict[str, Any]]
    failures: dict[str, str] = field(default_factory=dict)
    reused: int = 0
    log: Path | None = None


def _same_pool(rec: Mapping[str, Any], agents: list[dict[str, Any]]) -> bool:
    have = [(a.get("name"), a.get("price_input"), a.get("price_output")) for a in rec.get("agents") or []]
    return have == [(a["name"], a["price_input"], a["price_output"]) for a in agents]


def reusable_records(log: Path, pool: AgentPool, tasks: Sequence[CalibrationTask]) -> dict[str, dict[str, Any]]:
    """The log's records by task id, after checking they are calibration records of this pool and these tasks.

    Raises:
        CalibrationError: the log is damaged, holds other records, was recorded with another
            pool, or holds one of the task ids with another text.
    """
    if not log.exists():
        return {}
    try:
        repair_log(log)
        records = read_log(log).records
    except (LogError, OSError) as exc:
        raise CalibrationError(f"calibration log {str(log)!r}: {exc}") from exc
    agents = pool_agents(pool)
    texts = {t.id: t.text for t in tasks}
    out: dict[str, dict[str, Any]] = {}
    for rec in records:
        tid = str(rec["task"]["id"])
        if rec.get("kind") != KIND:
            raise CalibrationError(f"calibration log {str(log)!r} holds a record of kind {rec.get('kind')!r} (task {tid!r}); "
                                   "give --log a file of its own")
        if not _same_pool(rec, agents):
            raise CalibrationError(f"calibration log {str(log)!r} was recorded with another pool (agents or prices differ); "
                                   "give --log a new file for this pool")
        if tid in texts and rec["task"].get("text") != texts[tid]:
            raise CalibrationError(f"calibration log {str(log)!r} holds task {tid!r} with another text; give --log a new file")
        out[tid] = rec
    return out


def route_record(task: CalibrationTask, pool: AgentPool, out: Mapping[str, Any]) -> dict[str, Any]:
    """The log record of one route-only auction's final state."""
    ledger = out.get("ledger") or []
    fingerprint = (out.get("run_context") or {}).get("fingerprint") or {}
    return {
        "schema": RECORD_SCHEMA, "kind": KIND, "task": task.to_dict(), "agents": pool_agents(pool),
        "bids": list(out.get("bids") or []), "jury": list(out.get("votes") or []),
        "auction": {"calls": len(ledger), "input_tokens": int(sum(e["input_tokens"] for e in ledger)),
                    "output_tokens": int(sum(e["output_tokens"] for e in ledger)),
                    "cost_usd": float(sum(e["cost_usd"] for e in ledger))},
        "winner": (out.get("selection") or {}).get("winner"), "w_c": fingerprint.get("w_c"),
        "degraded": out.get("degraded"), "notes": list(out.get("notes") or []),
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def record_auctions(
    pool: AgentPool,
    tasks: Sequence[CalibrationTask],
    *,
    weights: Weights,
    log: Path | None = None,
    jobs: int = 4,
    settings: Mapping[str, Any] | None = None,
    model_factory: ModelFactory | None = None,
    check_endpoints: bool = False,
    on_task: Callable[[TaskProgress], None] | None = None,
) -> RecordedAuctions:
    """Run a route-only auction per task not already in ``log``, appending each to it; failures are kept apart.

    Args:
        pool: the agents.
        tasks: the calibration's tasks.
        weights: the auction's weights (its value terms are what the calibration keeps).
        log: the market log to reuse and append to (``None``: keep the records in memory only).
        jobs: tasks auctioned at once (each auction's own calls are bounded by ``max_concurrency``).
        settings: more :class:`~sale_graph.context.SaleContext` fields (token caps, ``jury_mode``,
            ``jury_quorum``, ``max_concurrency``...); route-only, no memory and no refinement are forced.
        model_factory: the chat models (default: the pool's OpenAI-compatible endpoints).
        check_endpoints: ping every endpoint first, when some task needs an auction.
        on_task: called after each task (from the calling thread).

    Raises:
        CalibrationError: a bad log (see :func:`reusable_records`) or a bad setting.
    """
    if jobs < 1:
        raise CalibrationError(f"jobs must be at least 1, got {jobs}")
    try:
        context = SaleContext(**{**dict(settings or {}), "pool": pool, "weights": weights, **FORCED})
    except (SaleError, ValueError, TypeError) as exc:
        raise CalibrationError(f"calibration settings: {exc}") from exc
    old = reusable_records(log, pool, tasks) if log is not None else {}
    graph = build_sale_graph(model_factory=model_factory or openai_factory).compile()
    result = RecordedAuctions(records=[], log=log)
    by_id: dict[str, dict[str, Any]] = {}
    todo = [t for t in tasks if t.id not in old]
    if todo and check_endpoints:
        check_pool(pool)
    done = 0
    for t in tasks:
        if t.id in old:
            by_id[t.id] = old[t.id]
            result.reused += 1
            done += 1
            if on_task is not None:
                on_task(TaskProgress(done, len(tasks), t.id, "reused"))
    writer = LogWriter(log) if log is not None and todo else None

    def run(task: CalibrationTask) -> dict[str, Any]:
        inputs = SaleInput(task=task.text, task_id=task.id)
        if task.domain:
            inputs["domain"] = task.domain
        return route_record(task, pool, graph.invoke(inputs, context=context))

    try:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="sale-calibrate") as ex:
            futures = {ex.submit(run, t): t for t in todo}
            for fut in as_completed(futures):
                task = futures[fut]
                try:
                    rec = fut.result()
                except SaleError as exc:  # the auction could not decide (no bid, no quorum, an endpoint refused)
                    status, detail = "failed", " ".join(str(exc).split())
                    result.failures[task.id] = detail
                else:
                    status, detail = "recorded", str(rec["winner"])
                    by_id[task.id] = rec
                    if writer is not None:
                        writer.append(rec)
                done += 1
                if on_task is not None:
                    on_task(TaskProgress(done, len(tasks), task.id, status, detail))
    finally:
        if writer is not None:
            writer.close()
    result.records = [by_id[t.id] for t in tasks if t.id in by_id]
    return result
