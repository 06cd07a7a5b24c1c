"""Routers that need no training and pay no overhead: one agent always, a random agent, the oracle.

They do not bid, so they are evaluated on the plain executions (:mod:`sale_graph.bench.routers.base`).
"""

from __future__ import annotations

import hashlib

import numpy as np

from sale_graph.bench.market.market import Market
from sale_graph.bench.routers.base import Router


class SingleAgentRouter(Router):
    """Always the same agent."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.name = f"agent:{agent}"

    def choose(self, market: Market, idx: np.ndarray) -> np.ndarray:
        """That agent on every task."""
        if self.agent not in market.agents:
            raise ValueError(f"router {self.name}: agent {self.agent!r} not in the log's pool {market.agents}")
        return np.full(len(idx), market.agents.index(self.agent))


class RandomRouter(Router):
    """A uniformly random agent per task, decided by a seeded hash of the task id (reproducible)."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def choose(self, market: Market, idx: np.ndarray) -> np.ndarray:
        """A hashed agent per task."""
        h = [int.from_bytes(hashlib.sha256(f"{self.seed}:{market.task_ids[t]}".encode()).digest()[:8], "big") for t in idx]
        return np.array([x % market.n_agents for x in h], dtype=int)


class OracleRouter(Router):
    """The cheapest agent that solved the task (an upper bound no real router reaches)."""

    name = "oracle"

    def choose(self, market: Market, idx: np.ndarray) -> np.ndarray:
        """The cheapest passing execution per task (the cheapest execution where none passed)."""
        return market.oracle(plain=market.has_plain)[np.asarray(idx, dtype=int)]
