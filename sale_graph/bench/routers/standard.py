"""The report's set of routers (:func:`standard_routers`): who would have executed each task, and at what cost.

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

* ``agent:<name>``: always that agent; ``random``: a uniform agent per task (seeded hash of the task id);
  ``oracle``: the cheapest agent (realised execution cost) that solved the task (:mod:`sale_graph.bench.routers.simple`).
* ``knn``, ``mlp``: text routers (:mod:`sale_graph.bench.routers.text`).
* ``llm-classifier``: the recorded choice of one text-classifier call per task, as langchain's
  ``ModelRouterMiddleware`` makes it (:mod:`sale_graph.bench.routers.classifier`); only for logs that have it.
* ``cascade``, ``sale`` and its refitted ablations (:mod:`sale_graph.bench.routers.auction`).
"""

from __future__ import annotations

import numpy as np

from sale_graph.bench.market.market import Market
from sale_graph.bench.routers.auction import CascadeRouter, SaleWeights
from sale_graph.bench.routers.base import Router
from sale_graph.bench.routers.classifier import ClassifierRouter, has_classifier
from sale_graph.bench.routers.simple import OracleRouter, RandomRouter, SingleAgentRouter
from sale_graph.bench.routers.text import EmbeddingStore, KNNRouter, MLPRouter
from sale_graph.bench.routers.variants import ABLATIONS, VARIANTS
from sale_graph.weights import Weights

SALE_VARIANTS = tuple(VARIANTS)


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
