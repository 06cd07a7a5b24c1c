"""Cost-quality curves, RouterBench's AIQ, and Pareto dominance between routers.

Curves (each point: a setting, pass@1 and mean dollars per task on the evaluated tasks;
the routers' own default settings are still chosen on dev):

* ``knn``, ``mlp``: the tolerance ``tol`` (cheapest agent within ``tol`` of the best prediction);
* ``cascade``: the self-score threshold (1.01: never accept, i.e. the largest agent plus overhead);
* ``sale``: SALE's cost weight ``w_c`` (the pool-scaled default when the fit set it to 0) times a scale, 0 to 1024
  (0: value only; larger: cheaper agents).

AIQ (Average Improvement in Quality, Hu et al., RouterBench 2024): the area under a
router's non-decreasing, concave cost-quality frontier, divided by the width of the
cost range ``[c_lo, c_hi]`` (the cheapest and dearest point of any router in the report).
Below the router's cheapest point its quality is 0 (it cannot run that cheaply); above
its dearest point it keeps its best quality; between its frontier points it is linearly
interpolated (a random mix of two settings reaches every point between them). A router
with one setting has a step frontier. AIQ is in pass@1 units (0-1): higher is better.

Pareto dominance: router A is dominated by B when B's pass@1 is at least A's and B's cost
at most A's, one of them strictly (point estimates; the oracle is not a real router and
dominates nobody here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from sale_graph.bench.market.market import Market
from sale_graph.bench.routers.auction import CASCADE_THRESHOLDS, AuctionRouter, CascadeRouter
from sale_graph.bench.routers.base import Router, evaluate
from sale_graph.bench.routers.text import KNNRouter, MLPRouter, cheapest_within
from sale_graph.weights import Weights

TOLERANCES = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
COST_SCALES = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0, 1024.0)


def _point(setting: float, passed: np.ndarray, cost: np.ndarray) -> dict[str, float]:
    return {"setting": float(setting), "pass_at_1": float(passed.mean()), "cost_per_task": float(cost.mean())}


def _text_curve(router: KNNRouter | MLPRouter, market: Market, idx: np.ndarray) -> list[dict[str, float]]:
    scores = router.predict(market, idx)
    passed_all, cost_all, _, _ = market.outcomes(market.has_plain)
    pts = []
    for tol in TOLERANCES:
        pick = cheapest_within(scores, market, tol)
        passed, cost = passed_all[idx, pick], cost_all[idx, pick]
        if not market.has_plain:
            cost = cost + market.bid_cost[idx, pick]
        pts.append(_point(tol, passed, cost))
    return pts


def cost_quality_curves(routers: Sequence[Router], market: Market, idx: np.ndarray) -> dict[str, list[dict[str, float]]]:
    """The curves of the report's tunable routers (see the module docstring), evaluated on tasks ``idx``."""
    curves: dict[str, list[dict[str, float]]] = {}
    for r in routers:
        if isinstance(r, (KNNRouter, MLPRouter)):
            curves[r.name] = _text_curve(r, market, idx)
        elif isinstance(r, CascadeRouter):
            pts = []
            for th in CASCADE_THRESHOLDS:
                out = evaluate(CascadeRouter(th), market, idx)
                pts.append(_point(th, out.passed, out.cost))
            curves[r.name] = pts
        elif isinstance(r, AuctionRouter) and r.name == "sale":
            pts = []
            prices = dict(zip(market.agents, market.price_out.tolist(), strict=True))
            ref = r.weights.for_prices(prices).cost_weight
            ref = ref if ref > 0 else Weights().for_prices(prices).cost_weight  # a fit may set w_c = 0: scale the default
            for s in COST_SCALES:
                scaled = AuctionRouter(replace(r.weights, w_c=ref * s), r.variant.name, price_ref=r.price_ref,
                                    const_tokens=r.const_tokens)
                out = evaluate(scaled, market, idx)
                pts.append(_point(s, out.passed, out.cost))
            curves[r.name] = pts
    return curves


def frontier(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The non-decreasing concave frontier of ``(cost, quality)`` points, cheapest first."""
    pareto: list[tuple[float, float]] = []
    for c, q in sorted(points, key=lambda p: (p[0], -p[1])):
        if not pareto or q > pareto[-1][1]:
            pareto.append((c, q))
    hull: list[tuple[float, float]] = []
    for p in pareto:  # upper hull: drop a point below the chord of its neighbours
        while len(hull) >= 2:
            (c1, q1), (c2, q2) = hull[-2], hull[-1]
            if (q2 - q1) * (p[0] - c1) <= (p[1] - q1) * (c2 - c1):
                hull.pop()
            else:
                break
        hull.append(p)
    return hull


def aiq(points: Sequence[tuple[float, float]], c_lo: float, c_hi: float) -> float:
    """Area under the router's frontier over ``[c_lo, c_hi]``, divided by its width (see the module docstring)."""
    if c_hi <= c_lo or not points:
        return float(max((q for _, q in points), default=0.0))
    hull = frontier(points)
    grid = np.linspace(c_lo, c_hi, 2001)
    cs = np.array([c for c, _ in hull])
    qs = np.array([q for _, q in hull])
    vals = np.interp(grid, cs, qs, left=0.0, right=float(qs[-1]))
    vals[grid < cs[0]] = 0.0
    return float(np.trapezoid(vals, grid) / (c_hi - c_lo))


def aiq_table(points: dict[str, tuple[float, float]], curves: dict[str, list[dict[str, float]]]) -> dict[str, float]:
    """AIQ per router: its curve where it has one, else its single point; one cost range for all."""
    per: dict[str, list[tuple[float, float]]] = {name: [p] for name, p in points.items()}
    for name, pts in curves.items():
        per[name] = [(p["cost_per_task"], p["pass_at_1"]) for p in pts] + per.get(name, [])
    all_costs = [c for pts in per.values() for c, _ in pts]
    c_lo, c_hi = min(all_costs), max(all_costs)
    return {name: round(aiq(pts, c_lo, c_hi), 4) for name, pts in per.items()}


def dominance(points: dict[str, tuple[float, float]], exclude: Sequence[str] = ("oracle",)) -> dict[str, list[str]]:
    """``{router: [routers that dominate it]}`` for every dominated router (``points``: cost, pass@1)."""
    out: dict[str, list[str]] = {}
    for a, (ca, qa) in points.items():
        by = [b for b, (cb, qb) in points.items()
              if b != a and b not in exclude and qb >= qa and cb <= ca and (qb > qa or cb < ca)]
        if by:
            out[a] = sorted(by, key=lambda b: (-points[b][1], points[b][0]))
    return out


def curves_summary(points: dict[str, tuple[float, float]], curves: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """Curves, AIQ and dominance in one JSON-ready block."""
    return {"curves": curves, "aiq": aiq_table(points, curves), "dominated_by": dominance(points),
            "points": {k: {"cost_per_task": c, "pass_at_1": q} for k, (c, q) in points.items()}}
