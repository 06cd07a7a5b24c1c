"""Market records to arrays: the parsing behind :meth:`sale_graph.bench.market.market.Market.from_records`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sale_graph.bench.market.errors import MarketError


def _zeros(*shape: int) -> np.ndarray:
    return np.zeros(shape, dtype=float)


@dataclass
class _Executions:
    """One kind of execution (plan-following or plain) per (task, agent)."""

    T: int
    n: int
    present: np.ndarray = field(init=False)
    passed: np.ndarray = field(init=False)
    cost: np.ndarray = field(init=False)
    tokens: np.ndarray = field(init=False)
    seconds: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.present = np.zeros((self.T, self.n), dtype=bool)
        self.passed = np.zeros((self.T, self.n), dtype=bool)
        self.cost, self.tokens, self.seconds = _zeros(self.T, self.n), _zeros(self.T, self.n), _zeros(self.T, self.n)

    def add(self, t: int, i: int, e: dict[str, Any]) -> None:
        """Store execution ``e`` of agent ``i`` on task ``t``."""
        self.present[t, i] = True
        self.passed[t, i] = bool(e.get("passed"))
        self.cost[t, i] = e.get("cost_usd", 0.0)
        self.tokens[t, i] = e.get("input_tokens", 0) + e.get("output_tokens", 0)
        self.seconds[t, i] = e.get("seconds", 0.0)


@dataclass
class _Auction:
    """Bids and the jury matrix per task."""

    T: int
    n: int
    bid_ok: np.ndarray = field(init=False)
    bid_tokens: np.ndarray = field(init=False)
    entropy: np.ndarray = field(init=False)
    bid_cost: np.ndarray = field(init=False)
    bid_tok_total: np.ndarray = field(init=False)
    bid_seconds: np.ndarray = field(init=False)
    strategies: list[list[str]] = field(init=False)
    gamma: np.ndarray = field(init=False)
    vote_cost: np.ndarray = field(init=False)
    vote_tokens: np.ndarray = field(init=False)
    vote_seconds: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        T, n = self.T, self.n
        self.bid_ok = np.zeros((T, n), dtype=bool)
        self.bid_tokens, self.entropy, self.bid_cost = _zeros(T, n), _zeros(T, n), _zeros(T, n)
        self.bid_tok_total, self.bid_seconds = _zeros(T, n), _zeros(T, n)
        self.strategies = [[""] * n for _ in range(T)]
        self.gamma = np.full((T, n, n), np.nan)
        self.vote_cost, self.vote_tokens, self.vote_seconds = _zeros(T, n, n), _zeros(T, n, n), _zeros(T, n, n)

    def add_bid(self, t: int, i: int, b: dict[str, Any]) -> None:
        """Store agent ``i``'s bid on task ``t``."""
        self.bid_ok[t, i] = b.get("status") == "ok"
        self.bid_tokens[t, i] = b.get("tokens", 0)
        self.entropy[t, i] = b.get("entropy", 0.0)
        self.bid_cost[t, i] = b.get("cost_usd", 0.0)
        self.bid_tok_total[t, i] = b.get("input_tokens", 0) + b.get("output_tokens", 0)
        self.bid_seconds[t, i] = b.get("seconds", 0.0)
        self.strategies[t][i] = b.get("strategy", "")

    def add_vote(self, t: int, i: int, j: int, v: dict[str, Any]) -> None:
        """Store judge ``j``'s vote on bidder ``i``'s bid on task ``t``."""
        if v.get("status") == "ok" and v.get("gamma") is not None:
            self.gamma[t, i, j] = float(v["gamma"])
        self.vote_cost[t, i, j] = v.get("cost_usd", 0.0)
        self.vote_tokens[t, i, j] = v.get("input_tokens", 0) + v.get("output_tokens", 0)
        self.vote_seconds[t, i, j] = v.get("seconds", 0.0)


def _pool_of(records: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """The first record's pool, after refusing live records and records without a pool."""
    for k, rec in enumerate(records):
        if rec.get("kind") == "route":
            raise MarketError(f"{source}: record {k + 1} (task {rec['task'].get('id')!r}) is a route-only auction of "
                              "`sale calibrate` (bids and jury, no executions); a market log needs `sale bench record`")
        if rec.get("kind") == "live":
            raise MarketError(
                f"{source}: record {k + 1} (task {rec['task'].get('id')!r}) is a live run (`sale bench live`), not a market "
                "record; `sale bench report` reads live records as live runs (sale_graph.bench.report.live.live_section)"
            )
    pool = records[0].get("agents")
    if not pool or not all(isinstance(a, dict) for a in pool):
        raise MarketError(f"{source}: record of task {records[0]['task'].get('id')!r} has no 'agents' list of name/price objects")
    return pool


def _check_pool(rec: dict[str, Any], pool: list[dict[str, Any]], source: str) -> None:
    agents = rec.get("agents", [])
    same = [a.get("name") for a in agents] == [a["name"] for a in pool] and \
        [a.get("price_output") for a in agents] == [a["price_output"] for a in pool]
    if not same:
        raise MarketError(f"{source}: task {rec['task'].get('id')!r} was recorded with another pool than the first record; "
                          "analyse logs of one pool at a time")


def _fill(records: list[dict[str, Any]], index: dict[str, int], pool: list[dict[str, Any]], source: str,
          auction: _Auction, plan: _Executions, plain: _Executions) -> None:
    """Parse every record's bids, votes and executions into the arrays."""
    agents = [a["name"] for a in pool]
    for t, rec in enumerate(records):
        _check_pool(rec, pool, source)
        for b in rec.get("bids", []):
            auction.add_bid(t, index[b["agent"]], b)
        for v in rec.get("jury", []):
            auction.add_vote(t, index[v["bidder"]], index[v["judge"]], v)
        for e in rec.get("executions", []):
            plan.add(t, index[e["agent"]], e)
        for e in rec.get("plain_executions", []):
            plain.add(t, index[e["agent"]], e)
        if not plan.present[t].all():
            missing = [agents[i] for i in np.flatnonzero(~plan.present[t])]
            raise MarketError(f"{source}: task {rec['task'].get('id')!r} has no execution for {', '.join(missing)}")


def build_market(records: list[dict[str, Any]], source: str = "<records>") -> dict[str, Any]:
    """The keyword arguments of :class:`~sale_graph.bench.market.market.Market` for ``records``."""
    if not records:
        raise MarketError(f"{source}: no records")
    pool = _pool_of(records, source)
    agents = [a["name"] for a in pool]
    index = {a: i for i, a in enumerate(agents)}
    T, n = len(records), len(agents)
    auction, plan, plain = _Auction(T, n), _Executions(T, n), _Executions(T, n)
    _fill(records, index, pool, source, auction, plan, plain)
    has_plain = bool(plain.present.all())
    if plain.present.any() and not has_plain:
        raise MarketError(f"{source}: some tasks have plain executions and some do not; record the log in one mode "
                          "(with or without --no-plain)")
    if not has_plain:
        plain = plan
    tasks = [r["task"] for r in records]
    synthetic = records[0].get("synthetic")
    return {
        "records": records, "agents": agents,
        "price_in": np.array([a["price_input"] for a in pool], dtype=float),
        "price_out": np.array([a["price_output"] for a in pool], dtype=float),
        "task_ids": [str(t["id"]) for t in tasks], "domains": np.array([t["domain"] for t in tasks]),
        "bins": np.array([int(t["bin"]) for t in tasks]), "splits": np.array([t.get("split", "test") for t in tasks]),
        "texts": [t["text"] for t in tasks], "bin_sources": [t.get("bin_source", "?") for t in tasks],
        "sources": np.array([str(t.get("source", "?")) for t in tasks]),
        "families": [str(t.get("family") or t["id"]) for t in tasks],
        "bid_ok": auction.bid_ok, "bid_tokens": auction.bid_tokens, "entropy": auction.entropy,
        "bid_cost": auction.bid_cost, "bid_tok_total": auction.bid_tok_total, "bid_seconds": auction.bid_seconds,
        "strategies": auction.strategies, "gamma": auction.gamma, "vote_cost": auction.vote_cost,
        "vote_tokens": auction.vote_tokens, "vote_seconds": auction.vote_seconds,
        "passed": plan.passed, "exec_cost": plan.cost, "exec_tokens": plan.tokens, "exec_seconds": plan.seconds,
        "plain_passed": plain.passed, "plain_cost": plain.cost, "plain_tokens": plain.tokens,
        "plain_seconds": plain.seconds, "has_plain": has_plain,
        "synthetic": synthetic if isinstance(synthetic, dict) else None,
    }
