"""``calibrate_weights``: a cost weight for your pool from your own unlabelled tasks.

It runs a route-only auction per task (bids and jury, no execution; :mod:`.record`),
keeps them as a market log, and solves the cost weight exactly on the recorded table
(:mod:`.solve`) so that the dearest agent wins at most a target share of the tasks, or
the expected cost per task stays within a budget. The value weights (``w_h``, the
jury's) are kept from the weights given (default: the documented defaults). What it
returns writes a weights file that ``sale run --weights`` and ``SaleContext(weights=...)``
read, with its provenance under ``meta.calibration``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from sale_graph.calibrate.errors import CalibrationError
from sale_graph.calibrate.record import RecordedAuctions, TaskProgress, pool_agents, record_auctions
from sale_graph.calibrate.solve import DEFAULT_EXECUTION_TOKENS, AuctionTable, Solution, Target, solve_cost_weight, table_from_records
from sale_graph.calibrate.tasks import CalibrationTask, read_task_file, tasks_digest, tasks_from_texts
from sale_graph.llm import ModelFactory
from sale_graph.pool import AgentPool, load_pool
from sale_graph.weights import Weights, load_weights


def _version() -> str:
    try:
        return version("sale-graph")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree that was never installed
        return "unknown"


@dataclass
class Calibration:
    """A calibrated cost weight, the weights that carry it, and how it was found.

    Attributes:
        weights: the weights to use: the calibrated ``w_c`` with the given value weights.
        solution: the solved ``w_c`` and what it gives on the calibration's tasks.
        target: what it had to achieve.
        table: the recorded auctions as the solver saw them.
        auctions: the records, the failed tasks, and how many came from the log.
        default: the same figures at the pool-scaled default ``w_c`` (``w_c``, ``largest_share``,
            ``expected_cost_usd``), for comparison.
        provenance: what the weights file records under ``meta.calibration``.
    """

    weights: Weights
    solution: Solution
    target: Target
    table: AuctionTable
    auctions: RecordedAuctions
    default: dict[str, float]
    provenance: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The weights file's content: the weights and ``meta.calibration``."""
        return {**self.weights.to_dict(), "meta": {"calibration": self.provenance}}

    def save(self, path: str | Path) -> Path:
        """Write the weights file (JSON) that ``--weights`` accepts."""
        p = Path(path).expanduser()
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return p

    def summary(self) -> list[str]:
        """A few lines for a person: the target, what was achieved, the weight and what the default gave."""
        s = self.solution
        dear = ", ".join(self.table.agents[i] for i in self.table.dearest)
        hi = "inf" if s.interval[1] is None else f"{s.interval[1]:.6g}"
        failed = len(self.auctions.failures)
        lines = [
            f"tasks: {len(self.table.task_ids)} auctions ({self.auctions.reused} from the log)"
            + (f", {failed} failed and left out" if failed else ""),
            f"target: {self.target.describe()}",
            f"achieved on these tasks: dearest agent ({dear}) wins {s.largest_share:.1%}; expected cost "
            f"${s.expected_cost_usd:.6g} per task (an execution = {self.target.execution_tokens} tokens)",
            f"w_c = {s.w_c:.6g} (any w_c in [{s.interval[0]:.6g}, {hi}) decides these tasks alike; {s.breakpoints} breakpoints)",
            "wins: " + ", ".join(f"{a} {n}" for a, n in s.wins.items()),
            f"pool-scaled default w_c = {self.default['w_c']:.6g}: dearest agent wins {self.default['largest_share']:.1%}, "
            f"expected cost ${self.default['expected_cost_usd']:.6g} per task",
        ]
        return lines


def _tasks(tasks: str | Path | Sequence[str | CalibrationTask], domain: str | None) -> tuple[list[CalibrationTask], dict[str, Any]]:
    if isinstance(tasks, (str, Path)):
        found, digest = read_task_file(tasks, domain)
        return found, {"file": str(tasks), "sha256": digest}
    items = list(tasks)
    if all(isinstance(t, CalibrationTask) for t in items):
        found = [t for t in items if isinstance(t, CalibrationTask)]
    else:
        found = tasks_from_texts([t.text if isinstance(t, CalibrationTask) else t for t in items], domain)
    if not found:
        raise CalibrationError("the task list is empty: give at least one task")
    return found, {"file": None, "sha256": tasks_digest(found)}


def _pool(pool: AgentPool | str | Path) -> AgentPool:
    p = pool if isinstance(pool, AgentPool) else load_pool(str(pool))
    if len(p.agents) < 2:
        raise CalibrationError(f"pool {p.source!r} has {len(p.agents)} agent; a cost weight needs at least two agents to choose between")
    if len({a.price for a in p.agents}) < 2:
        raise CalibrationError(f"pool {p.source!r}: every agent has the same price, so the cost weight changes no decision")
    return p


def calibrate_weights(
    pool: AgentPool | str | Path,
    tasks: str | Path | Sequence[str | CalibrationTask],
    *,
    largest_share: float | None = None,
    budget: float | None = None,
    execution_tokens: int = DEFAULT_EXECUTION_TOKENS,
    weights: Weights | str | Path | None = None,
    log: str | Path | None = None,
    jobs: int = 4,
    settings: Mapping[str, Any] | None = None,
    model_factory: ModelFactory | None = None,
    check_endpoints: bool = True,
    domain: str | None = None,
    on_task: Callable[[TaskProgress], None] | None = None,
) -> Calibration:
    """Calibrate the cost weight ``w_c`` on unlabelled tasks, without executing any.

    Every input is checked before the first model call. Tasks already in ``log`` (same
    pool, same text) are not auctioned again, so solving again for another target costs
    nothing.

    Args:
        pool: the pool (an :class:`~sale_graph.pool.AgentPool` or a pool TOML), at least two agents of different prices.
        tasks: a task file (one task per line, or JSONL with ``text``), or the tasks' texts.
        largest_share: target: the dearest agent(s) win at most this share of the tasks (0 to 1).
        budget: target instead: the expected cost per task in dollars (the auction's measured cost
            plus an execution of ``execution_tokens`` tokens at the winner's output price).
        execution_tokens: the execution's assumed size for a budget target.
        weights: the value weights to keep (``w_h``, the jury's): a :class:`Weights`, a weights file
            or ``None`` for the defaults; their ``w_c`` is replaced.
        log: the market log to keep the auctions in (and reuse); ``None`` keeps them in memory only.
        jobs: tasks auctioned at once.
        settings: more :class:`~sale_graph.context.SaleContext` fields for the auctions (token caps,
            ``jury_mode``, ``max_concurrency``...); use those of your live runs.
        model_factory: the chat models (default: the pool's endpoints).
        check_endpoints: ping every endpoint before the first auction.
        domain: the domain of tasks that name none.
        on_task: progress callback, one call per task.

    Returns:
        The :class:`Calibration`; ``.save(path)`` writes the weights file.

    Raises:
        CalibrationError: a bad target, task list, pool or log, or a target no ``w_c`` meets.
        PoolError, WeightsError: a bad pool or weights file.
    """
    target = Target(largest_share=largest_share, budget_usd=budget, execution_tokens=execution_tokens)
    the_pool = _pool(pool)
    found, task_source = _tasks(tasks, domain)
    base = weights if isinstance(weights, Weights) else load_weights(None if weights is None else str(weights))
    base.check_judges(the_pool.names)
    log_path = Path(log).expanduser() if log is not None else None
    auctions = record_auctions(the_pool, found, weights=base, log=log_path, jobs=jobs, settings=settings,
                               model_factory=model_factory, check_endpoints=check_endpoints, on_task=on_task)
    if not auctions.records:
        first = next(iter(auctions.failures.items()), ("-", "no task"))
        raise CalibrationError(f"no auction succeeded on the {len(found)} tasks (e.g. task {first[0]}: {first[1]})")
    table = table_from_records(auctions.records, the_pool, base)
    solution = solve_cost_weight(table, target)
    prices = {a.name: a.price for a in the_pool.agents}
    default_w = replace(base, w_c=None, cost_from_pool=False, cost_rule="").for_prices(prices).cost_weight
    at_default = table.winners_exact(default_w)
    default = {"w_c": default_w, "largest_share": table.dearest_share(at_default),
               "expected_cost_usd": table.expected_cost(at_default, target.execution_tokens)}
    calibrated = Weights(w_c=solution.w_c, w_h=base.w_h, jury=dict(base.jury), default_jury_weight=base.default_jury_weight,
                         source="sale calibrate")
    provenance = {
        "tool": "sale calibrate", "version": _version(), "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "pool": {"source": the_pool.source, "agents": pool_agents(the_pool)},
        "tasks": {**task_source, "count": len(found), "auctions": len(auctions.records), "reused_from_log": auctions.reused,
                  "failed": dict(list(auctions.failures.items())[:20]), "failed_count": len(auctions.failures)},
        "log": str(log_path) if log_path is not None else None,
        "target": target.to_dict(),
        "dearest": [table.agents[i] for i in table.dearest],
        "achieved": {"largest_share": solution.largest_share, "expected_cost_usd": solution.expected_cost_usd,
                     "execution_tokens": target.execution_tokens},
        "wins": solution.wins, "w_c_interval": list(solution.interval), "breakpoints": solution.breakpoints,
        "at_w_c_0": solution.at_zero, "default": default, "value_weights": base.source,
        "settings": {k: v for k, v in dict(settings or {}).items() if isinstance(v, (str, int, float, bool, type(None)))},
    }
    return Calibration(weights=calibrated, solution=solution, target=target, table=table, auctions=auctions,
                       default=default, provenance=provenance)
