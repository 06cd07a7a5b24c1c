r"""`sale bench fit`: learn the auction weights on the dev split of a market log with a MILP.

The programme (docs/method.md, "Weights"), solved with :func:`scipy.optimize.milp` (HiGHS).

Data, for every dev task ``t`` and every agent ``i`` whose bid succeeded (``A_t``):

* features of the bid, each in [0, 1]:
  ``c~_ti = price_i * |s_ti| / c_max`` (cost feature; ``c_max`` the largest ``price * |s|`` on dev),
  ``h_ti`` (bid entropy), ``g_tij`` (judge ``j``'s gamma; a missing vote is imputed by the mean of the
  present votes on that bid, or 0 when no judge answered - the live rule renormalises over present
  judges, which equals this imputation under equal jury weights);
* the auction score under weights ``w``: ``S_ti(w) = w~_c c~_ti - w_h h_ti - sum_j w_j g_tij``
  (that is ``C - V``; linear in ``w``);
* the realised outcome of the agent's own execution: ``u_ti = cost_ti / cost_max`` if it passed and
  ``u_ti = P`` if it failed (``cost_max`` the dearest dev execution, ``P`` the failure penalty, default 2 > 1 >= any
  cost term), and its regret against the best agent on that task ``z_ti = u_ti - min_{k in A_t} u_tk``
  (0 for the oracle agent). A failure costs ``P`` whoever failed: the dollars a failed run wasted are not
  part of the regret (they are in every cost figure of the report). With the earlier definition
  ``u = cost/cost_max + P * failed`` a failing dear agent had a larger regret than a failing cheap one;
  with stochastic executions some failure is unavoidable for every weight vector, so the maximum was
  always a failure and min-max reduced to "only let the cheapest agent fail", i.e. nearly always pick
  the cheapest agent (on the synthetic 753-task log: dev pass@1 32 %, test 37 %, against 78 % / 74 %
  for the mean objective; see docs/benchmarks.md).
* ``W_t``, the agents that can win task ``t`` under some weights (one LP per agent: ``exists w`` in the
  box with ``sum w = 1`` and ``S_ti(w) <= S_tk(w) - delta_ki`` for every ``k``), and ``D``, the dev tasks
  where the choice matters: ``z_ti`` is not the same for every ``i in W_t``. A task outside ``D`` (all
  agents failed, or only an agent that never wins the auction passed) has the same regret whatever the
  weights: it carries no signal and would only pin ``Q``. It is left out of the maximum, kept in the mean.

Variables: ``w = (w~_c, w_h, w_1..w_n)`` continuous, ``x_ti`` binary (agent ``i`` selected on ``t``;
fixed to 0 for ``i`` outside ``W_t``), ``Q``.

min-max (default)::

    minimise    Q + eps * (1/T) sum_t sum_i z_ti x_ti
    subject to  sum_{i in A_t} x_ti = 1                                  for every t        (one agent per task)
                S_tk(w) - S_ti(w) + M_tki x_tk <= M_tki - delta_ki       for every t, k != i in A_t
                Q >= sum_i z_ti x_ti                                     for every t in D
                sum_f w_f = 1,   0 <= w_f <= w_max

``delta_ki = delta`` when ``i`` is cheaper than ``k`` (price, then name) and 0 otherwise: the
selected agent must have the smallest ``C - V``, strictly smaller than any cheaper agent's, which is
exactly the live rule ``argmin (C - V)`` with ties to the cheaper agent. This ties the selection
variables to the weights, so the programme cannot pick the oracle agent without weights that make the
auction pick it; with every weight on one feature the rule is still well defined, and the
normalisation ``sum w = 1`` removes the trivial rescaling (``C - V`` scaled by any positive factor picks
the same agents; ``w = 0`` would make every bid tie). Because ``w >= 0`` and ``sum w = 1``,
``S_tk - S_ti = (f_tk - f_ti) . w <= max_f (f_tk - f_ti)_f``, so ``M_tki = max(0, max_f (f_tk - f_ti)_f + delta_ki)``
is a valid big-M (tighter than the uniform ``2 + delta``, which made the relaxation weak).
``eps`` (1e-3) makes the objective the lexicographic programme "minimise ``Q``, then the mean regret
among min-max optima" in weighted form. (A two-stage solve, stage 2 minimising the mean with ``x_ti``
fixed to 0 where ``z_ti > Q*``, cannot be warm-started from stage 1 in scipy's ``milp`` and HiGHS found
no feasible point for it in 120 s on the synthetic log, so the weighted form is used.) Within the MIP
gap HiGHS reports, the tie-break is the best found, not proven optimal: ``meta`` reports the gap.

mean (ablation)::  minimise (1/T) sum_t sum_i z_ti x_ti   subject to the same selection constraints.

Tasks with no successful bid are left out (the live auction cannot run on them either); tasks with one
bid fix ``x``. The fitted ``w~_c`` is converted back to the live cost scale, ``w_c = w~_c / c_max``, and
written with ``w_h`` and one jury weight per judge to a file :func:`sale_graph.weights.load_weights` reads.
The fit is then checked by replaying the live selection rule (:func:`sale_graph.scoring.select_winner`
through :class:`~sale_graph.bench.routers.SaleRouter`) with the fitted weights on dev and test, and the
file's ``meta`` reports the objective and how often that rule picks the oracle agent.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_matrix

from sale_graph.bench.market import Market
from sale_graph.weights import Weights

Objective = Literal["minmax", "mean"]


class FitError(RuntimeError):
    """The weight programme could not be built or solved."""


@dataclass
class FitResult:
    """Fitted weights, the programme's solution and how the rule does on dev and test."""

    weights: Weights
    objective: str
    objective_value: float
    max_regret: float
    mean_regret: float
    status: str
    mip_gap: float | None
    seconds: float
    n_dev_tasks: int
    skipped_tasks: int
    raw_weights: dict[str, float]
    selection: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def to_file_dict(self) -> dict[str, Any]:
        """The weights file content: ``w_c``, ``w_h``, ``jury`` and ``meta``."""
        return {**self.weights.to_dict(), "meta": self.meta}

    def save(self, path: str | Path) -> Path:
        """Write the weights file (JSON)."""
        p = Path(path).expanduser()
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_file_dict(), indent=2) + "\n", encoding="utf-8")
        return p


def imputed_gamma(market: Market) -> np.ndarray:
    """``gamma[t, bidder, judge]`` with a missing vote replaced by the mean of the bid's present votes (0 if none)."""
    g = market.gamma
    present = np.isfinite(g)
    count = present.sum(axis=2, keepdims=True)
    mean = np.where(count > 0, np.nansum(np.where(present, g, 0.0), axis=2, keepdims=True) / np.maximum(count, 1), 0.0)
    return np.where(present, g, mean)


def outcome_regret(market: Market, fail_penalty: float = 2.0, cost_scale: float | None = None) -> tuple[np.ndarray, float]:
    """``z[t, i]``: regret of selecting agent ``i`` on task ``t`` (see the module docstring) and the cost scale used."""
    scale = float(cost_scale if cost_scale is not None else market.exec_cost.max())
    scale = scale if scale > 0 else 1.0
    u = np.where(market.passed, market.exec_cost / scale, fail_penalty)
    u_valid = np.where(market.bid_ok, u, np.inf)
    best = np.min(u_valid, axis=1, keepdims=True)
    best = np.where(np.isfinite(best), best, 0.0)
    return np.where(market.bid_ok, u - best, 0.0), scale


def winnable_agents(feats: np.ndarray, bid_ok: np.ndarray, rank: dict[int, int], delta: float,
                    w_max: float) -> np.ndarray:
    """``win[t, i]``: whether some weights (``0 <= w <= w_max``, ``sum w = 1``) make the rule pick ``i`` on ``t`` (LP)."""
    T, n, m = feats.shape
    win = np.zeros((T, n), dtype=bool)
    for t in range(T):
        valid = np.flatnonzero(bid_ok[t])
        for i in valid:
            others = [k for k in valid if k != i]
            if not others:
                win[t, i] = True
                continue
            a_ub = np.array([feats[t, i] - feats[t, k] for k in others])
            b_ub = np.array([-(delta if rank[k] < rank[i] else 0.0) for k in others])
            res = linprog(np.zeros(m), A_ub=a_ub, b_ub=b_ub, A_eq=np.ones((1, m)), b_eq=[1.0],
                          bounds=[(0.0, w_max)] * m, method="highs")
            win[t, i] = res.status == 0
    return win


def fit_weights(
    market: Market,
    *,
    objective: Objective = "minmax",
    split: str = "dev",
    fail_penalty: float = 2.0,
    w_max: float = 1.0,
    delta: float = 1e-4,
    eps: float = 1e-3,
    time_limit_s: float = 120.0,
    evaluate: bool = True,
) -> FitResult:
    """Solve the weight MILP on ``split`` of ``market`` (see the module docstring for the programme)."""
    if objective not in ("minmax", "mean"):
        raise FitError(f"objective must be 'minmax' or 'mean', got {objective!r}")
    if fail_penalty <= 1:
        raise FitError(f"fail_penalty must exceed 1 (the largest cost term), got {fail_penalty}")
    if not 0 < w_max <= 1:
        raise FitError(f"w_max must be in (0, 1] (weights sum to 1), got {w_max}")
    idx = market.indices(split)
    dev = market.subset(idx)
    keep = dev.bid_ok.any(axis=1)
    skipped = int((~keep).sum())
    dev = dev.subset(np.flatnonzero(keep))
    T, n = dev.n_tasks, dev.n_agents
    if T == 0:
        raise FitError(f"no {split} task with a successful bid in the log; record more tasks or check the split")
    raw_cost = dev.price_out[None, :] * dev.bid_tokens
    c_max = float(raw_cost[dev.bid_ok].max()) or 1.0
    feats = np.concatenate([
        (raw_cost / c_max)[:, :, None], -dev.entropy[:, :, None], -imputed_gamma(dev),
    ], axis=2)  # (T, n, m): S = feats @ w
    m = feats.shape[2]
    z, cost_scale = outcome_regret(dev, fail_penalty)

    pairs = [(t, i) for t in range(T) for i in range(n) if dev.bid_ok[t, i]]
    xcol = {p: m + k for k, p in enumerate(pairs)}
    nx = len(pairs)
    use_q = objective == "minmax"
    nvar = m + nx + (1 if use_q else 0)
    qcol = m + nx
    rank = {a: r for r, a in enumerate(dev.price_order())}
    win = winnable_agents(feats, dev.bid_ok, rank, delta, w_max)
    if not win.any(axis=1).all():
        raise FitError(f"no weights with w_max={w_max} let the auction pick any agent on some {split} task; raise w_max")
    z_win = np.where(win, z, np.nan)
    matters = (np.nanmax(z_win, axis=1) - np.nanmin(z_win, axis=1)) > 1e-12

    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lb: list[float] = []
    ub: list[float] = []
    r = 0

    def add(entries: list[tuple[int, float]], lo: float, hi: float) -> None:
        nonlocal r
        for c, v in entries:
            rows.append(r)
            cols.append(c)
            vals.append(v)
        lb.append(lo)
        ub.append(hi)
        r += 1

    add([(f, 1.0) for f in range(m)], 1.0, 1.0)  # sum w = 1
    for t in range(T):
        valid = [i for i in range(n) if dev.bid_ok[t, i]]
        add([(xcol[(t, i)], 1.0) for i in valid], 1.0, 1.0)
        for k in valid:
            for i in valid:
                if i == k:
                    continue
                d = delta if rank[i] < rank[k] else 0.0
                diff = feats[t, k] - feats[t, i]
                big_m = max(0.0, float(diff.max()) + d)
                add([(f, float(diff[f])) for f in range(m) if diff[f] != 0.0] + [(xcol[(t, k)], big_m)], -np.inf, big_m - d)
        if use_q and matters[t]:
            add([(qcol, 1.0)] + [(xcol[(t, i)], -float(z[t, i])) for i in valid if z[t, i] != 0.0], 0.0, np.inf)
    A = coo_matrix((vals, (rows, cols)), shape=(r, nvar)).tocsr()

    c = np.zeros(nvar)
    for (t, i), col in xcol.items():
        c[col] = (eps if use_q else 1.0) * z[t, i] / T
    if use_q:
        c[qcol] = 1.0
    integrality = np.zeros(nvar)
    integrality[m:m + nx] = 1
    lower = np.zeros(nvar)
    upper = np.concatenate([np.full(m, w_max), np.ones(nx), [np.inf] if use_q else []])
    for (t, i), col in xcol.items():
        if not win[t, i]:
            upper[col] = 0.0  # no weights make the auction pick i on t
    start = time.perf_counter()
    res = milp(c, constraints=LinearConstraint(A, lb, ub), integrality=integrality, bounds=Bounds(lower, upper),
               options={"time_limit": time_limit_s, "disp": False})
    seconds = time.perf_counter() - start
    if res.x is None:
        raise FitError(f"the weight MILP found no solution ({res.message}); status {res.status}")
    w = np.clip(res.x[:m], 0.0, None)
    x = res.x[m:m + nx]
    sel = np.full(T, -1)
    for (t, i), val in zip(pairs, x):
        if val > 0.5:
            sel[t] = i
    chosen = z[np.arange(T), sel]
    q_value = float(chosen[matters].max()) if matters.any() else 0.0
    judges = dev.agents
    weights = Weights(w_c=float(w[0] / c_max), w_h=float(w[1]),
                      jury={j: float(w[2 + k]) for k, j in enumerate(judges)}, source=f"bench fit ({objective})")
    status = {0: "optimal", 1: "time or iteration limit (best solution found)", 2: "infeasible", 3: "unbounded"}.get(res.status, str(res.status))
    result = FitResult(
        weights=weights, objective=objective, objective_value=float(res.fun), max_regret=float(chosen.max()),
        mean_regret=float(chosen.mean()), status=status, mip_gap=getattr(res, "mip_gap", None), seconds=seconds,
        n_dev_tasks=T, skipped_tasks=skipped,
        raw_weights={"w_c_normalised": float(w[0]), "w_h": float(w[1]), **{f"jury:{j}": float(w[2 + k]) for k, j in enumerate(judges)}},
        selection=sel,
    )
    result.meta = {
        "objective": objective, "objective_value": result.objective_value, "status": status,
        "max_regret_dev": result.max_regret, "mean_regret_dev": result.mean_regret,
        "mip_gap": result.mip_gap, "solve_seconds": round(seconds, 3), "dev_tasks": T,
        "dev_tasks_without_bids": skipped, "fail_penalty": fail_penalty, "cost_scale_usd": cost_scale,
        "c_max": c_max, "delta": delta, "w_max": w_max, "eps": eps if use_q else 0.0,
        "regret": "u = exec_cost/cost_scale if passed else fail_penalty; z = u - min_agents u",
        "tasks_where_choice_matters": int(matters.sum()),
        "max_regret_where_choice_matters": q_value,
        "tasks_with_fixed_regret": int((~matters).sum()),
        "fixed_regret_max": float(z_win[~matters].max(initial=0.0, where=np.isfinite(z_win[~matters]))) if (~matters).any() else 0.0,
    }
    if evaluate:
        result.meta.update(evaluate_fit(market, weights, dev_selection=sel, dev_market=dev))
    return result


def evaluate_fit(market: Market, weights: Weights, *, dev_selection: np.ndarray | None = None,
                 dev_market: Market | None = None) -> dict[str, Any]:
    """How often the live rule with ``weights`` picks the oracle agent (and passes) on dev and test.

    With the MILP's own selection, also how often it agrees with the replayed rule on dev
    (imputed missing votes can make them differ).
    """
    from sale_graph.bench.routers import SaleRouter

    out: dict[str, Any] = {}
    router = SaleRouter(weights)
    oracle = market.oracle()
    for split in ("dev", "test"):
        idx = market.indices(split)
        idx = idx[market.bid_ok[idx].any(axis=1)]
        if len(idx) == 0:
            out[f"oracle_agreement_{split}"] = None
            continue
        picks = router.choose(market, idx)
        out[f"oracle_agreement_{split}"] = round(float(np.mean(picks == oracle[idx])), 4)
        out[f"pass_at_1_{split}"] = round(float(np.mean(market.passed[idx, picks])), 4)
        out[f"tasks_{split}"] = int(len(idx))
    if dev_selection is not None and dev_market is not None and dev_market.n_tasks:
        replay = router.choose(dev_market, np.arange(dev_market.n_tasks))
        out["milp_replay_agreement_dev"] = round(float(np.mean(replay == dev_selection)), 4)
    return out
