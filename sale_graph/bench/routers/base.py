"""What every replayed router shares: its decisions, the replay of them (:class:`Replay`), and who is charged for a plan.

A market log holds two executions per agent and task (:mod:`sale_graph.bench.market.market`):
one following the agent's own bid and one plain. A router that bids (SALE, the
cascade) executes the plan it paid for. A router that does not bid (single agents,
random, the oracle, kNN, MLP: ``plain = True``) is evaluated on the plain executions,
as the paper's baselines run plain ReAct; when the log has none (recorded with
``--no-plain``) it is evaluated on the plan-following executions and charged for the
chosen agent's bid (tokens, dollars and seconds), and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sale_graph.bench.market.market import Market


@dataclass
class Decisions:
    """A router's decisions on tasks ``idx``: executing agent (-1: none), and what it paid besides that execution."""

    idx: np.ndarray
    agent: np.ndarray
    overhead_cost: np.ndarray
    overhead_tokens: np.ndarray
    overhead_seconds: np.ndarray


@dataclass
class Replay:
    """A router replayed on tasks ``idx``: per task, passed, dollars, tokens and seconds in all, and its own (auction) share of them."""

    idx: np.ndarray
    agent: np.ndarray
    passed: np.ndarray
    cost: np.ndarray
    tokens: np.ndarray
    seconds: np.ndarray
    overhead_cost: np.ndarray
    overhead_tokens: np.ndarray
    overhead_seconds: np.ndarray


class Router:
    """Base class: subclasses implement :meth:`choose` (and :meth:`decide` when they pay overhead).

    ``plain`` is True for routers that do not bid: they execute without a plan.
    """

    name = "router"
    plain = True

    def fit(self, market: Market, idx: np.ndarray) -> Router:
        """Train on tasks ``idx`` of ``market`` (dev); untrained routers ignore it."""
        return self

    def choose(self, market: Market, idx: np.ndarray) -> np.ndarray:
        """The executing agent's index for each task in ``idx`` (-1 when none can execute)."""
        raise NotImplementedError

    def decide(self, market: Market, idx: np.ndarray) -> Decisions:
        """Decisions with no overhead (routers that pay for bids or votes override this)."""
        idx = np.asarray(idx, dtype=int)
        z = np.zeros(len(idx))
        return Decisions(idx, self.choose(market, idx), z, z.copy(), z.copy())

    def route(self, record: dict[str, Any]) -> str:
        """The agent this router sends one logged task to."""
        market = Market.from_records([record])
        pick = int(self.choose(market, np.array([0]))[0])
        if pick < 0:
            raise ValueError(f"router {self.name}: no agent can execute task {record['task']['id']!r} (no bid succeeded)")
        return market.agents[pick]


def charged_for_plan(router: Router, market: Market) -> bool:
    """Whether ``router`` is evaluated on plan-following executions it did not bid for (a log without plain ones)."""
    return router.plain and not market.has_plain


def evaluate(router: Router, market: Market, idx: np.ndarray) -> Replay:
    """Replay ``router`` on tasks ``idx``: the chosen agent's logged execution plus the overhead.

    A plain router uses the plain executions; on a log without them it uses the
    plan-following ones and pays the chosen agent's bid (:func:`charged_for_plan`).
    """
    d = router.decide(market, np.asarray(idx, dtype=int))
    ok = d.agent >= 0
    a = np.where(ok, d.agent, 0)
    passed_all, cost_all, tok_all, sec_all = market.outcomes(router.plain and market.has_plain)
    passed = ok & passed_all[d.idx, a]
    ex_cost = np.where(ok, cost_all[d.idx, a], 0.0)
    ex_tok = np.where(ok, tok_all[d.idx, a], 0.0)
    ex_sec = np.where(ok, sec_all[d.idx, a], 0.0)
    oc, ot, osec = d.overhead_cost, d.overhead_tokens, d.overhead_seconds
    if charged_for_plan(router, market):
        oc = oc + np.where(ok, market.bid_cost[d.idx, a], 0.0)
        ot = ot + np.where(ok, market.bid_tok_total[d.idx, a], 0.0)
        osec = osec + np.where(ok, market.bid_seconds[d.idx, a], 0.0)
    return Replay(idx=d.idx, agent=d.agent, passed=passed, cost=ex_cost + oc, tokens=ex_tok + ot, seconds=ex_sec + osec,
                   overhead_cost=oc, overhead_tokens=ot, overhead_seconds=osec)
