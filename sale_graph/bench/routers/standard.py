"""Routers replayed on a market log: who would have executed each task, and what it would have cost.

Every router has the same interface (:class:`~sale_graph.bench.routers.base.Router`):

* ``route(record) -> agent name`` for one log record (what a router is);
* ``fit(market, idx)`` trains on the dev tasks ``idx`` (no-op for untrained routers);
* ``decide(market, idx) -> Decisions``: for many tasks at once, the executing agent and
  every cost the router pays besides that execution (bids, jury votes, escalations).

Because the log holds every agent's own graded executions of every task, every
router is evaluated on the same tasks with the same outcomes
(:func:`~sale_graph.bench.routers.base.evaluate`); routers that do not bid are
evaluated on the plain executions (no plan), routers that bid on the plan-following ones.

Routers:

* ``agent:<name>``: always that agent.
* ``random``: a uniform agent per task (seeded hash of the task id).
* ``oracle``: the cheapest agent (realised execution cost) that solved the task.
* ``knn``, ``mlp``: text routers (:mod:`sale_graph.bench.routers.text`).
* ``llm-classifier``: the recorded choice of one text-classifier call per task, as langchain's
  ``ModelRouterMiddleware`` makes it (:mod:`sale_graph.bench.routers.classifier`); only for logs that have it.
* ``cascade``, ``sale`` and its refitted ablations (:mod:`sale_graph.bench.routers.auction`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sale_graph.bench.routers.auction import CascadeRouter, SaleRouter
from sale_graph.bench.routers.classifier import ClassifierRouter, has_classifier
from sale_graph.bench.market.market import Market
from sale_graph.bench.routers.base import Decisions, Outcome, Router, charged_for_plan, evaluate
from sale_graph.bench.routers.text import EmbeddingStore, KNNRouter, MLPRouter, cheapest_within, default_cache_path
from sale_graph.bench.routers.variants import ABLATIONS, VARIANTS
from sale_graph.weights import Weights

SALE_VARIANTS = tuple(VARIANTS)


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


@dataclass
class SaleWeights:
    """SALE's weights and the refitted weights of its ablations (``{variant name: (weights, fit meta)}``)."""

    full: Weights = field(default_factory=Weights)
    ablations: dict[str, tuple[Weights, dict[str, Any]]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def router(self, name: str) -> SaleRouter:
        """The replay router of variant ``name`` with its own refitted weights and constants."""
        if name == "full":
            return SaleRouter(self.full, "full", price_ref=self.meta.get("price_ref"), const_tokens=self.meta.get("const_tokens"))
        w, meta = self.ablations[name]
        variant = "full" if name == "mean-objective" else name
        return SaleRouter(w, variant, name=f"sale:{name}", price_ref=meta.get("price_ref"), const_tokens=meta.get("const_tokens"))


def standard_routers(
    market: Market,
    dev_idx: np.ndarray,
    *,
    weights: Weights | SaleWeights | None = None,
    weights_mean: Weights | None = None,
    store: EmbeddingStore | None = None,
    text_routers: bool = True,
) -> list[Router]:
    """Every router of the report, trained on ``dev_idx``: agents, random, oracle, knn, mlp, llm-classifier, cascade, SALE, ablations.

    ``weights`` is SALE's weights (default: the documented defaults), with the refitted
    ablations when it is a :class:`SaleWeights` read from a fitted weights file; ablations
    without refitted weights are left out (replaying SALE's own weights minus a term would
    not measure the term). ``weights_mean`` adds or replaces ``sale:mean-objective``.
    Text routers are skipped (with ``text_routers=False``) when no embeddings are wanted.
    """
    sw = weights if isinstance(weights, SaleWeights) else SaleWeights(weights or Weights())
    if weights_mean is not None:
        sw.ablations["mean-objective"] = (weights_mean, {})
    routers: list[Router] = [SingleAgentRouter(a) for a in market.agents]
    routers += [RandomRouter(0), OracleRouter()]
    if text_routers and len(dev_idx):
        st = store or EmbeddingStore()
        routers += [KNNRouter(st).fit(market, dev_idx), MLPRouter(st, tol=0.05).fit(market, dev_idx)]
    if has_classifier(market):  # logs recorded before the classifier (or with --no-classifier) have none
        routers.append(ClassifierRouter())
    routers.append(CascadeRouter().fit(market, dev_idx) if len(dev_idx) else CascadeRouter(0.6))
    routers.append(sw.router("full"))
    routers += [sw.router(v.name) for v in ABLATIONS if v.name in sw.ablations]
    return routers


__all__ = [
    "SALE_VARIANTS", "CascadeRouter",
    "ClassifierRouter", "Decisions", "EmbeddingStore", "KNNRouter", "MLPRouter", "OracleRouter", "Outcome",
    "RandomRouter", "Router", "SaleRouter", "SaleWeights", "SingleAgentRouter", "charged_for_plan", "cheapest_within",
    "default_cache_path", "evaluate", "standard_routers",
]
