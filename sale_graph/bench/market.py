"""A market log as arrays: what every agent bid, how every judge scored it, how every agent did.

``Market.from_records`` turns the records of ``sale bench record`` into numpy
arrays indexed ``[task, agent]`` (and ``[task, bidder, judge]`` for the jury),
which the weight fit, the routers and the report share. Missing data stays
visible: a failed bid has ``bid_ok = False``, a missing vote is ``NaN``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sale_graph.bench.logio import read_log


class MarketError(ValueError):
    """The records cannot form one market (different pools, missing parts)."""


@dataclass
class Market:
    """Arrays over ``T`` tasks and ``n`` agents (agents in the log's pool order).

    Attributes:
        records: the raw records (``route(record)`` of a router takes one of these).
        agents, price_in, price_out: the pool (prices in dollars per 1M tokens).
        task_ids, domains, bins, splits, texts, bin_sources: per task.
        bid_ok, bid_tokens, entropy, bid_cost, bid_tok_total, bid_seconds, strategies: per (task, agent).
        gamma: (T, n, n) judge ``j``'s gamma of bidder ``i``'s bid, NaN when missing.
        vote_cost, vote_tokens, vote_seconds: (T, n, n), zero where no call was made.
        passed, exec_cost, exec_tokens, exec_seconds: per (task, agent): the agent's own graded execution.
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

    @property
    def n_tasks(self) -> int:
        return len(self.task_ids)

    @property
    def n_agents(self) -> int:
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

    def oracle(self) -> np.ndarray:
        """Per task, the cheapest agent (by realised execution cost) that passed; if none passed, the cheapest execution."""
        cost = np.where(self.passed, self.exec_cost, np.inf)
        best = np.argmin(cost, axis=1)
        none = ~self.passed.any(axis=1)
        best[none] = np.argmin(self.exec_cost[none], axis=1) if none.any() else best[none]
        return best

    def subset(self, idx: np.ndarray) -> "Market":
        """The market restricted to tasks ``idx`` (arrays copied)."""
        idx = np.asarray(idx, dtype=int)
        out: dict[str, Any] = {}
        for name, value in self.__dict__.items():
            if name in ("agents", "price_in", "price_out"):
                out[name] = value
            elif isinstance(value, np.ndarray):
                out[name] = value[idx]
            else:
                out[name] = [value[i] for i in idx]
        return Market(**out)

    @classmethod
    def from_log(cls, path: str | Path) -> "Market":
        """Read a log (ignoring a partial last line) and build the market."""
        contents = read_log(path)
        if not contents.records:
            raise MarketError(f"{path}: the log has no complete record yet")
        return cls.from_records(contents.records, source=str(path))

    @classmethod
    def from_records(cls, records: list[dict[str, Any]], source: str = "<records>") -> "Market":
        """Build the arrays; every record must come from the same pool (names and prices)."""
        if not records:
            raise MarketError(f"{source}: no records")
        pool = records[0].get("agents")
        if not pool:
            raise MarketError(f"{source}: record of task {records[0]['task'].get('id')!r} has no 'agents' list")
        agents = [a["name"] for a in pool]
        index = {a: i for i, a in enumerate(agents)}
        T, n = len(records), len(agents)
        f = lambda *shape: np.zeros(shape, dtype=float)  # noqa: E731
        bid_ok = np.zeros((T, n), dtype=bool)
        passed = np.zeros((T, n), dtype=bool)
        has_exec = np.zeros((T, n), dtype=bool)
        bid_tokens, entropy, bid_cost, bid_tok, bid_sec = f(T, n), f(T, n), f(T, n), f(T, n), f(T, n)
        exec_cost, exec_tok, exec_sec = f(T, n), f(T, n), f(T, n)
        gamma = np.full((T, n, n), np.nan)
        vote_cost, vote_tok, vote_sec = f(T, n, n), f(T, n, n), f(T, n, n)
        strategies = [[""] * n for _ in range(T)]
        for t, rec in enumerate(records):
            tid = rec["task"].get("id")
            if [a["name"] for a in rec.get("agents", [])] != agents or [a["price_output"] for a in rec["agents"]] != [a["price_output"] for a in pool]:
                raise MarketError(f"{source}: task {tid!r} was recorded with another pool than the first record; "
                                  "analyse logs of one pool at a time")
            for b in rec.get("bids", []):
                i = index[b["agent"]]
                bid_ok[t, i] = b.get("status") == "ok"
                bid_tokens[t, i] = b.get("tokens", 0)
                entropy[t, i] = b.get("entropy", 0.0)
                bid_cost[t, i] = b.get("cost_usd", 0.0)
                bid_tok[t, i] = b.get("input_tokens", 0) + b.get("output_tokens", 0)
                bid_sec[t, i] = b.get("seconds", 0.0)
                strategies[t][i] = b.get("strategy", "")
            for v in rec.get("jury", []):
                i, j = index[v["bidder"]], index[v["judge"]]
                if v.get("status") == "ok" and v.get("gamma") is not None:
                    gamma[t, i, j] = float(v["gamma"])
                vote_cost[t, i, j] = v.get("cost_usd", 0.0)
                vote_tok[t, i, j] = v.get("input_tokens", 0) + v.get("output_tokens", 0)
                vote_sec[t, i, j] = v.get("seconds", 0.0)
            for e in rec.get("executions", []):
                i = index[e["agent"]]
                has_exec[t, i] = True
                passed[t, i] = bool(e.get("passed"))
                exec_cost[t, i] = e.get("cost_usd", 0.0)
                exec_tok[t, i] = e.get("input_tokens", 0) + e.get("output_tokens", 0)
                exec_sec[t, i] = e.get("seconds", 0.0)
            if not has_exec[t].all():
                missing = [agents[i] for i in np.flatnonzero(~has_exec[t])]
                raise MarketError(f"{source}: task {tid!r} has no execution for {', '.join(missing)}")
        return cls(
            records=records, agents=agents,
            price_in=np.array([a["price_input"] for a in pool], dtype=float),
            price_out=np.array([a["price_output"] for a in pool], dtype=float),
            task_ids=[str(r["task"]["id"]) for r in records],
            domains=np.array([r["task"]["domain"] for r in records]),
            bins=np.array([int(r["task"]["bin"]) for r in records]),
            splits=np.array([r["task"].get("split", "test") for r in records]),
            texts=[r["task"]["text"] for r in records],
            bin_sources=[r["task"].get("bin_source", "?") for r in records],
            bid_ok=bid_ok, bid_tokens=bid_tokens, entropy=entropy, bid_cost=bid_cost, bid_tok_total=bid_tok,
            bid_seconds=bid_sec, strategies=strategies, gamma=gamma, vote_cost=vote_cost, vote_tokens=vote_tok,
            vote_seconds=vote_sec, passed=passed, exec_cost=exec_cost, exec_tokens=exec_tok, exec_seconds=exec_sec,
        )
