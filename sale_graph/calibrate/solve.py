"""The cost weight solved exactly on the recorded table of bids and jury values.

On one task the auction picks ``argmin_i (w_c * price_i * |s_i| - V_i)``: each bid's
``C - V`` is a line in ``w_c``, and the winner changes only where two lines cross.
Over all the calibration's tasks these crossings (breakpoints) cut ``[0, inf)`` into
intervals on which every task's winner is fixed, and with it the dearest agent's share
of wins and the expected cost per task. :func:`solve_cost_weight` walks the breakpoints
upwards, evaluating each one (where ties go to the cheaper agent) and each interval
after it, takes the first that meets the target, narrows it down to the smallest
``w_c`` that does, and checks that ``w_c`` with the live selection rule itself
(:func:`sale_graph.scoring.select_winner` on the costs and values rounded as the
auction's table rounds them). Nothing is re-run: the values ``V_i`` do not depend on
``w_c``, so the recorded bids and votes decide every task for every ``w_c``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sale_graph.calibrate.errors import CalibrationError
from sale_graph.nodes.score import build_table
from sale_graph.pool import AgentPool
from sale_graph.scoring import select_winner, strategy_cost
from sale_graph.weights import Weights

DEFAULT_EXECUTION_TOKENS = 4000
"""Tokens one execution is assumed to take for a budget target, priced at the winner's output price."""
_BISECTIONS = 64


@dataclass(frozen=True)
class AuctionTable:
    """The recorded auctions as arrays over ``T`` tasks and ``n`` agents (pool order).

    Attributes:
        task_ids: the tasks, in order.
        agents: the pool's agents.
        price: each agent's price per 1M output tokens (the cost term's ``price``).
        tokens: ``|s|`` of each bid (0 where the agent has no bid).
        value: ``V`` of each bid as the auction's table rounds it (NaN where no bid).
        ok: whether the agent has a bid on the task.
        auction_cost: dollars the auction (bids and jury) cost on each task.
    """

    task_ids: list[str]
    agents: list[str]
    price: np.ndarray
    tokens: np.ndarray
    value: np.ndarray
    ok: np.ndarray
    auction_cost: np.ndarray

    @property
    def dearest(self) -> list[int]:
        """Indices of the dearest agents (every agent at the top price)."""
        top = float(self.price.max())
        return [i for i, p in enumerate(self.price.tolist()) if p == top]

    def winners(self, w_c: float) -> np.ndarray:
        """Each task's winner at ``w_c`` (vectorised; :meth:`winners_exact` is the live rule call by call)."""
        cost = np.round((w_c * self.price[None, :]) * self.tokens, 6)
        net = np.where(self.ok, np.round(cost - np.nan_to_num(self.value), 12), np.inf)
        names = np.argsort(np.argsort(np.array(self.agents)))  # rank of each name: the last tie-break
        keys = (np.broadcast_to(names, net.shape), np.broadcast_to(self.price, net.shape), net)
        return np.lexsort(keys, axis=-1)[:, 0]

    def winners_exact(self, w_c: float) -> np.ndarray:
        """Each task's winner at ``w_c`` by the auction's own rule (``select_winner`` on the rounded table)."""
        out = []
        for t in range(len(self.task_ids)):
            idx = np.flatnonzero(self.ok[t])
            costs = [round(strategy_cost(w_c, float(self.price[i]), int(self.tokens[t, i])), 6) for i in idx]
            sel = select_winner(costs, [float(self.value[t, i]) for i in idx], [float(self.price[i]) for i in idx],
                                [self.agents[i] for i in idx])
            out.append(int(idx[sel.index]))
        return np.array(out, dtype=int)

    def breakpoints(self) -> np.ndarray:
        """Every positive ``w_c`` at which two bids of one task have equal ``C - V``, sorted, without repeats."""
        slope = self.price[None, :] * self.tokens
        found: list[np.ndarray] = []
        n = len(self.agents)
        for i in range(n):
            for j in range(i + 1, n):
                both = self.ok[:, i] & self.ok[:, j] & (slope[:, i] != slope[:, j])
                w = (self.value[both, i] - self.value[both, j]) / (slope[both, i] - slope[both, j])
                found.append(w[np.isfinite(w) & (w > 0)])
        return np.unique(np.concatenate(found)) if found else np.array([])

    def dearest_share(self, winners: np.ndarray) -> float:
        """Share of the tasks won by a dearest agent."""
        return float(np.isin(winners, self.dearest).mean())

    def expected_cost(self, winners: np.ndarray, execution_tokens: int) -> float:
        """Mean dollars per task: the auction's measured cost plus the winner's execution at ``execution_tokens``."""
        return float((self.auction_cost + self.price[winners] * execution_tokens / 1e6).mean())


def table_from_records(records: Sequence[Mapping[str, Any]], pool: AgentPool, weights: Weights) -> AuctionTable:
    """The table of the recorded auctions: each bid's ``|s|`` and ``V`` as the auction's own table computes them."""
    agents = pool.names
    index = {a: i for i, a in enumerate(agents)}
    T, n = len(records), len(agents)
    tokens, value, ok = np.zeros((T, n)), np.full((T, n), np.nan), np.zeros((T, n), dtype=bool)
    for t, rec in enumerate(records):
        for row in build_table(rec["bids"], rec["jury"], pool, weights):
            if row["round"] == "original":
                i = index[row["agent"]]
                tokens[t, i], value[t, i], ok[t, i] = row["tokens"], row["value"], True
    return AuctionTable(
        task_ids=[str(r["task"]["id"]) for r in records], agents=agents,
        price=np.array([a.price for a in pool.agents], dtype=float), tokens=tokens, value=value, ok=ok,
        auction_cost=np.array([float((r.get("auction") or {}).get("cost_usd", 0.0)) for r in records]),
    )


@dataclass(frozen=True)
class Target:
    """What the cost weight must achieve: one of two targets.

    ``largest_share``: the dearest agent wins at most this share of the tasks. ``budget_usd``:
    the expected cost per task is at most this, counting the auction's measured cost and an
    execution of ``execution_tokens`` tokens at the winner's output price.
    """

    largest_share: float | None = None
    budget_usd: float | None = None
    execution_tokens: int = DEFAULT_EXECUTION_TOKENS

    def __post_init__(self) -> None:
        if (self.largest_share is None) == (self.budget_usd is None):
            raise CalibrationError("give one target: a largest share (--largest-share) or a budget per task (--budget)")
        share = self.largest_share
        if share is not None and not (isinstance(share, (int, float)) and 0.0 <= share <= 1.0):
            raise CalibrationError(f"--largest-share is a share of the tasks in [0, 1], got {share!r}")
        budget = self.budget_usd
        if budget is not None and not (isinstance(budget, (int, float)) and np.isfinite(budget) and budget > 0):
            raise CalibrationError(f"--budget is dollars per task, a positive number, got {budget!r}")
        if not isinstance(self.execution_tokens, int) or self.execution_tokens < 1:
            raise CalibrationError(f"--execution-tokens must be a positive integer, got {self.execution_tokens!r}")

    @property
    def limit(self) -> float:
        """The number the metric must not exceed."""
        if self.largest_share is not None:
            return float(self.largest_share)
        return float(self.budget_usd or 0.0)

    def metric(self, table: AuctionTable, winners: np.ndarray) -> float:
        """The dearest agent's share of wins, or the expected cost per task."""
        if self.largest_share is not None:
            return table.dearest_share(winners)
        return table.expected_cost(winners, self.execution_tokens)

    def describe(self) -> str:
        """The target in words."""
        if self.largest_share is not None:
            return f"the dearest agent wins at most {self.largest_share:.1%} of the tasks"
        return f"expected cost at most ${self.budget_usd:g} per task (an execution = {self.execution_tokens} tokens)"

    def to_dict(self) -> dict[str, Any]:
        """The target for the weights file's provenance."""
        if self.largest_share is not None:
            return {"largest_share": self.largest_share}
        return {"budget_usd": self.budget_usd, "execution_tokens": self.execution_tokens}


@dataclass(frozen=True)
class Solution:
    """The calibrated cost weight and what it gives on the calibration's tasks.

    Attributes:
        w_c: the smallest cost weight meeting the target.
        interval: the range of ``w_c`` (from, up to; ``None``: no end) deciding every task as ``w_c`` does.
        largest_share: the dearest agent's share of wins at ``w_c``.
        expected_cost_usd: the expected cost per task at ``w_c`` (the target's execution estimate).
        wins: tasks won by each agent at ``w_c``.
        at_zero: the target's metric with no cost term (``w_c = 0``).
        breakpoints: how many breakpoints the table has.
    """

    w_c: float
    interval: tuple[float, float | None]
    largest_share: float
    expected_cost_usd: float
    wins: dict[str, int]
    at_zero: float
    breakpoints: int


def _points(bps: np.ndarray) -> list[tuple[float, int]]:
    """``(w_c, k)`` to evaluate in order: 0, then each breakpoint (k = its index) and the middle of the interval after it."""
    out: list[tuple[float, int]] = [(0.0, -1)]
    for k, b in enumerate(bps.tolist()):
        nxt = bps[k + 1] if k + 1 < len(bps) else 2.0 * b
        out += [(b, k), ((b + float(nxt)) / 2.0, k)]
    return out


def _narrow(table: AuctionTable, target: Target, lo: float, hi: float) -> float:
    """The smallest ``w_c`` in ``(lo, hi]`` meeting the target, to float precision (``lo`` fails, ``hi`` meets)."""
    for _ in range(_BISECTIONS):
        mid = (lo + hi) / 2.0
        if mid <= lo or mid >= hi:
            break
        if target.metric(table, table.winners(mid)) <= target.limit:
            hi = mid
        else:
            lo = mid
    return hi


def _solution(table: AuctionTable, target: Target, w_c: float, k: int, bps: np.ndarray, at_zero: float) -> Solution:
    winners = table.winners_exact(w_c)
    lo = 0.0 if k < 0 else float(bps[k])
    hi = float(bps[k + 1]) if k + 1 < len(bps) else None
    return Solution(
        w_c=w_c, interval=(lo, hi), largest_share=table.dearest_share(winners),
        expected_cost_usd=table.expected_cost(winners, target.execution_tokens),
        wins={a: int((winners == i).sum()) for i, a in enumerate(table.agents)}, at_zero=at_zero, breakpoints=len(bps),
    )


def solve_cost_weight(table: AuctionTable, target: Target) -> Solution:
    """The smallest ``w_c`` whose decisions on the table meet ``target`` (see the module docstring).

    Raises:
        CalibrationError: the table is empty, or no ``w_c`` meets the target (the message gives the
            best that any ``w_c`` reaches and where).
    """
    if not table.task_ids:
        raise CalibrationError("no recorded auction to calibrate on")
    bps = table.breakpoints()
    at_zero = target.metric(table, table.winners_exact(0.0))
    best = (np.inf, 0.0)
    previous = 0.0
    for w, k in _points(bps):
        value = target.metric(table, table.winners(w))
        best = min(best, (value, w))
        if value > target.limit:
            previous = w
            continue
        candidates = [w] if k < 0 or w == bps[k] else [_narrow(table, target, previous, w), w]
        for c in candidates:
            if target.metric(table, table.winners_exact(c)) <= target.limit:
                return _solution(table, target, c, k, bps, at_zero)
        previous = w
    if target.largest_share is not None:
        what, shown = "the dearest agent's share", f"{best[0]:.1%}"
        why = "its bids are short enough to win some tasks even when the cost term dominates"
    else:
        what, shown = "the expected cost per task", f"${best[0]:.6g}"
        why = f"the auction itself costs ${float(table.auction_cost.mean()):.6g} per task"
    raise CalibrationError(
        f"no cost weight meets the target ({target.describe()}) on these {len(table.task_ids)} tasks: the lowest "
        f"{what} any w_c gives is {shown} (at w_c = {best[1]:.6g}; {why}). Raise the target."
    )
