"""A market log as arrays: what every agent bid, how every judge scored it, how every agent did.

``Market.from_records`` turns the records of ``sale bench record`` into numpy
arrays indexed ``[task, agent]`` (and ``[task, bidder, judge]`` for the jury),
which the weight fit, the routers and the report share. Missing data stays
visible: a failed bid has ``bid_ok = False``, a missing vote is ``NaN``.

Two executions per agent and task can be logged: ``executions`` follow the
agent's own bid (what SALE and the cascade execute) and ``plain_executions``
run the task without a plan (what single agents and text routers execute, as
the paper's baselines do). ``has_plain`` says whether the log has the second
kind for every task and agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sale_graph.bench.market.errors import MarketError
from sale_graph.bench.market.log import read_log
from sale_graph.bench.market.parse import build_market


@dataclass
class Market:
    """Arrays over ``T`` tasks and ``n`` agents (agents in the log's pool order).

    Attributes:
        records: the raw records (``route(record)`` of a router takes one of these).
        agents, price_in, price_out: the pool (prices in dollars per 1M tokens).
        task_ids, domains, bins, splits, texts, bin_sources, sources, families: per task
            (``families``: the task's family, or its id when it has none).
        bid_ok, bid_tokens, entropy, bid_cost, bid_tok_total, bid_seconds, strategies: per (task, agent).
        gamma: (T, n, n) judge ``j``'s gamma of bidder ``i``'s bid, NaN when missing.
        vote_cost, vote_tokens, vote_seconds: (T, n, n), zero where no call was made.
        passed, exec_cost, exec_tokens, exec_seconds: per (task, agent): the agent's own graded execution of its bid.
        plain_passed, plain_cost, plain_tokens, plain_seconds: per (task, agent): its execution without a plan
            (copies of the plan-following arrays when the log has none; see ``has_plain``).
        has_plain: every task has every agent's plain execution.
        synthetic: the generator's settings for a synthetic log (``None`` for a recorded one).
    """

    records: list[dict[str, Any]]
    agents: list[str]
    price_in: np.ndarray
    price_out: np.ndarray
    task_ids: list[str]
    domains: np.ndarray
    bins: np.ndarray
    splits: np.ndarray
    texts: list[str]
    bin_sources: list[str]
    sources: np.ndarray
    families: list[str]
    bid_ok: np.ndarray
    bid_tokens: np.ndarray
    entropy: np.ndarray
    bid_cost: np.ndarray
    bid_tok_total: np.ndarray
    bid_seconds: np.ndarray
    strategies: list[list[str]]
    gamma: np.ndarray
    vote_cost: np.ndarray
    vote_tokens: np.ndarray
    vote_seconds: np.ndarray
    passed: np.ndarray
    exec_cost: np.ndarray
    exec_tokens: np.ndarray
    exec_seconds: np.ndarray
    plain_passed: np.ndarray
    plain_cost: np.ndarray
    plain_tokens: np.ndarray
    plain_seconds: np.ndarray
    has_plain: bool = False
    synthetic: dict[str, Any] | None = None

    @property
    def n_tasks(self) -> int:
        """Number of tasks."""
        return len(self.task_ids)

    @property
    def n_agents(self) -> int:
        """Number of agents."""
        return len(self.agents)

    def indices(self, split: str = "all") -> np.ndarray:
        """Task indices of ``split`` (``dev``, ``test`` or ``all``)."""
        if split == "all":
            return np.arange(self.n_tasks)
        if split not in ("dev", "test"):
            raise ValueError(f"split must be dev, test or all, got {split!r}")
        return np.flatnonzero(self.splits == split)

    def price_order(self) -> list[int]:
        """Agent indices from cheapest to dearest (ties by name), the auction's tie-break order."""
        return sorted(range(self.n_agents), key=lambda i: (self.price_out[i], self.agents[i]))

    @property
    def largest(self) -> int:
        """Index of the dearest agent (the paper's 'largest agent')."""
        return self.price_order()[-1]

    def outcomes(self, plain: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(passed, cost, tokens, seconds)`` of the plain executions (``plain=True``) or the plan-following ones."""
        if plain:
            return self.plain_passed, self.plain_cost, self.plain_tokens, self.plain_seconds
        return self.passed, self.exec_cost, self.exec_tokens, self.exec_seconds

    def oracle(self, plain: bool = False) -> np.ndarray:
        """Per task, the cheapest agent (by realised execution cost) that passed; if none passed, the cheapest execution."""
        passed, exec_cost, _, _ = self.outcomes(plain)
        cost = np.where(passed, exec_cost, np.inf)
        best = np.argmin(cost, axis=1)
        none = ~passed.any(axis=1)
        if none.any():
            best[none] = np.argmin(exec_cost[none], axis=1)
        return best

    def subset(self, idx: np.ndarray) -> Market:
        """The market restricted to tasks ``idx`` (arrays copied)."""
        idx = np.asarray(idx, dtype=int)
        out: dict[str, Any] = {}
        for name, value in self.__dict__.items():
            if name in ("agents", "price_in", "price_out", "has_plain", "synthetic"):
                out[name] = value
            elif isinstance(value, np.ndarray):
                out[name] = value[idx]
            else:
                out[name] = [value[i] for i in idx]
        return Market(**out)

    @classmethod
    def from_log(cls, path: str | Path) -> Market:
        """Read a log (ignoring a partial last line) and build the market."""
        contents = read_log(path)
        if not contents.records:
            raise MarketError(f"{path}: the log has no complete record yet")
        return cls.from_records(contents.records, source=str(path))

    @classmethod
    def from_records(cls, records: list[dict[str, Any]], source: str = "<records>") -> Market:
        """Build the arrays; every record must be a market record of the same pool (names and prices).

        A live record (``kind: live``, written by ``sale bench live``) is refused
        with a :class:`MarketError` that says how to read it
        (:func:`sale_graph.bench.report.live.live_section`).
        """
        return cls(**build_market(records, source))


def split_records(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(market records, live records)`` of a log that may hold both kinds."""
    live = [r for r in records if r.get("kind") == "live"]
    market = [r for r in records if r.get("kind") != "live"]
    return market, live
