"""`sale bench fit`: learn the auction weights on the dev split of a market log with a two-stage MILP.

See :func:`fit_weights` for the programme; its pieces are built in
:mod:`sale_graph.bench.fit.programme`, and the ablations (one refit per
variant) in :mod:`sale_graph.bench.fit.ablations`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sale_graph.bench.fit.defaults import DEFAULT_CVAR_ALPHA, DEFAULT_GAP, DEFAULT_OBJECTIVE, DEFAULT_TOLERANCE, OBJECTIVES
from sale_graph.bench.fit.programme import (
    Features,
    FitError,
    NoSignalError,
    ObjectiveSpec,
    Programme,
    build_features,
    objective_spec,
    outcome_regret,
    primary_value,
    winnable_agents,
)
from sale_graph.bench.fit.provenance import fit_record
from sale_graph.bench.fit.sampling import evaluate_samples
from sale_graph.bench.fit.stages import Solution, StageResult, score, solve_stage
from sale_graph.bench.market.market import Market
from sale_graph.bench.routers.auction import AuctionRouter
from sale_graph.bench.routers.variants import FULL, Variant
from sale_graph.weights import Weights


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
    stages: list[StageResult] = field(default_factory=list)
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


def _check_args(objective: str, fail_penalty: float, w_max: float, cvar_alpha: float, tolerance: float) -> None:
    if objective not in OBJECTIVES:
        raise FitError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if fail_penalty <= 1:
        raise FitError(f"fail_penalty must exceed 1 (the largest cost term), got {fail_penalty}")
    if not 0 < w_max <= 1:
        raise FitError(f"w_max must be in (0, 1] (weights sum to 1), got {w_max}")
    if not 0 <= cvar_alpha < 1:
        raise FitError(f"cvar_alpha must be in [0, 1), got {cvar_alpha}")
    if tolerance < 0:
        raise FitError(f"tolerance must be >= 0, got {tolerance}")


def _no_signal_message(dev: Market, split: str, z_win: np.ndarray) -> str:
    all_fail = int((~dev.passed.any(axis=1)).sum())
    return (f"no {split} task where the choice of agent changes the regret ({dev.n_tasks} tasks: {all_fail} where every "
            f"agent failed, {dev.n_tasks - all_fail} where only agents the auction cannot pick passed or every winnable agent "
            f"did equally well; {int(dev.passed.sum())} of {dev.passed.size} executions passed). Every weight vector is "
            "equally good here, so any fit would be arbitrary: record tasks that some agents solve and others do not")


def _fit_tasks(market: Market, split: str) -> tuple[Market, int]:
    """The split's tasks with at least one successful bid (the auction cannot run on the others), and how many were left out."""
    dev = market.subset(market.indices(split))
    keep = dev.bid_ok.any(axis=1)
    if not keep.any():
        raise FitError(f"no {split} task with a successful bid in the log; record more tasks or check the split")
    return dev.subset(np.flatnonzero(keep)), int((~keep).sum())


def build_programme(dev: Market, v: Variant, split: str, fail_penalty: float, delta: float, w_max: float) -> Programme:
    """Features, regret, winnable agents and the tasks where the choice matters; :class:`NoSignalError` if there are none."""
    feats = build_features(dev, v)
    z, _ = outcome_regret(dev, fail_penalty)
    rank = {a: r for r, a in enumerate(dev.price_order())}
    win = winnable_agents(feats, dev.bid_ok, rank, delta, w_max)
    if not win.any(axis=1).all():
        raise FitError(f"no weights with w_max={w_max} let the auction pick any agent on some {split} task; raise w_max")
    z_win = np.where(win, z, np.nan)
    matters = (np.nanmax(z_win, axis=1) - np.nanmin(z_win, axis=1)) > 1e-12
    if not matters.any():
        raise NoSignalError(_no_signal_message(dev, split, z_win))
    return Programme(feats, dev.bid_ok, z, win, matters, dev.bins, rank, delta, w_max)


def _overall(stages: list[StageResult]) -> str:
    """``optimal`` when every stage was solved to its gap, else the first stage's status that was not."""
    return next((s.status for s in stages if s.status != "optimal"), "optimal")


def fit_weights(
    market: Market,
    *,
    objective: str = DEFAULT_OBJECTIVE,
    split: str = "dev",
    fail_penalty: float = 2.0,
    w_max: float = 1.0,
    delta: float = 1e-4,
    cvar_alpha: float = DEFAULT_CVAR_ALPHA,
    tolerance: float = DEFAULT_TOLERANCE,
    gap: float = DEFAULT_GAP,
    time_limit_s: float = 120.0,
    variant: Variant = FULL,
    evaluate: bool = True,
) -> FitResult:
    r"""Fit the weights on ``split`` of ``market`` by a two-stage MILP (scipy ``milp``, HiGHS).

    Data, for every task ``t`` of the split with a successful bid and every agent ``i`` whose bid
    succeeded (``A_t``):

    * features ``f_ti`` in [0, 1] with ``C - V = f_ti . w``: the cost feature
      ``c~_ti = price_i |s_ti| / c_max`` (``c_max`` the largest on the split), ``-H_ti``, and ``-g_tij``
      for every judge ``j`` (a missing vote imputed by the mean of the bid's present votes, 0 if none;
      the live rule renormalises over present judges, the same under equal jury weights). A variant
      (:mod:`sale_graph.bench.routers.variants`) changes the cost feature or masks votes, and fixes weights at 0;
    * regret ``z_ti = u_ti - min_{k in A_t} u_tk``, ``u_ti = cost_ti / cost_max`` if ``i``'s plan-following run passed, else ``P``;
    * ``W_t``: agents some weights let win (corner test or LP); ``D``: tasks where ``z_ti`` differs over
      ``W_t``. Tasks outside ``D`` have the same regret whatever the weights. If ``D`` is empty the fit
      raises :class:`NoSignalError` (the CLI exits 2): any weights would be "optimal".

    Variables: ``w = (w~_c, w_h, w_1..w_n)``, ``0 <= w <= w_max`` (0 where the variant fixes it),
    ``sum w = 1``; ``x_ti`` binary (0 for ``i`` outside ``W_t``); ``r_t = sum_i z_ti x_ti``.
    Selection constraints (the live rule ``argmin (C - V)``, ties to the cheaper agent)::

        sum_{i in A_t} x_ti = 1                                       for every t
        (f_tk - f_ti) . w + M_tki x_tk <= M_tki - delta_ki            for every t, k != i in A_t

    with ``delta_ki = delta`` when ``i`` is cheaper than ``k`` (else 0) and the big-M
    ``M_tki = max(0, max_f (f_tk - f_ti)_f + delta_ki)`` over the free weights.

    Primary objective ``F`` (stage 1):

    * ``minmax``: ``min Q`` s.t. ``Q >= r_t`` for t in D (the worst task);
    * ``binmax``: ``min Q`` s.t. ``Q >= mean_{t in D, bin b} r_t`` for every bin b (the worst bin's mean);
    * ``cvar``: ``min eta + sum_{t in D} s_t / ((1 - alpha) |D|)`` s.t. ``s_t >= r_t - eta``, ``s_t >= 0``
      (the mean regret of the worst ``1 - alpha`` share of tasks, ``alpha = cvar_alpha``);
    * ``mean``: ``min (1/T) sum_t r_t`` (one stage).

    Stage 2 (every objective but ``mean``)::

        minimise    (1/T) sum_t r_t
        subject to  the same constraints,  F <= F1 + tolerance

    where ``F1`` is stage 1's value (for ``minmax`` also ``x_ti = 0`` wherever ``z_ti > F1 + tolerance``).
    Each stage runs to the relative MIP gap ``gap`` within ``time_limit_s`` s from a sampled start
    (:mod:`~sale_graph.bench.fit.sampling`: a cutoff, and the fallback when HiGHS finds nothing better);
    both statuses and the kept solution's gap to the dual bound are reported (``meta.stages``).
    ``w~_c`` is converted back to the live scale, ``w_c = w~_c / c_max``.
    """
    _check_args(objective, fail_penalty, w_max, cvar_alpha, tolerance)
    dev, skipped = _fit_tasks(market, split)
    prog = build_programme(dev, variant, split, fail_penalty, delta, w_max)
    spec = objective_spec(prog, objective, cvar_alpha, fail_penalty)
    samples = evaluate_samples(prog)
    sol, st1 = solve_stage(prog, spec, samples, stage=1, objective=objective, cost=spec.cost, cvar_alpha=cvar_alpha, gap=gap,
                           time_limit_s=time_limit_s, incumbents=[])
    stages = [st1]
    if objective != "mean":
        bound = score(prog, sol, objective, cvar_alpha)[0] + tolerance + 1e-9
        sol, st2 = solve_stage(prog, spec, samples, stage=2, objective="mean", cost=_mean_cost(prog, spec), cvar_alpha=cvar_alpha,
                               gap=gap, time_limit_s=time_limit_s, incumbents=[sol], bound=(objective, bound))
        stages.append(st2)
    result = _result(dev, prog, sol, objective, variant, stages, skipped, cvar_alpha)
    result.meta.update({
        "fail_penalty": fail_penalty, "delta": delta, "w_max": w_max, "tolerance": tolerance, "gap_asked": gap,
        "time_limit_s": time_limit_s, "cvar_alpha": cvar_alpha if objective == "cvar" else None,
        "fit": fit_record(market, split, dev.task_ids),
        **(_evaluated(market, dev, prog, result, variant) if evaluate else {}),
    })
    return result


def _evaluated(market: Market, dev: Market, prog: Programme, result: FitResult, variant: Variant) -> dict[str, Any]:
    return evaluate_fit(market, result.weights, variant, price_ref=prog.feats.price_ref, const_tokens=prog.feats.const_tokens,
                        dev_selection=result.selection, dev_market=dev)


def _mean_cost(prog: Programme, spec: ObjectiveSpec) -> np.ndarray:
    """Stage 2's cost vector: the mean regret over every dev task."""
    T = prog.bid_ok.shape[0]
    cost = np.zeros_like(spec.cost)
    for t in range(T):
        for col, zv in prog.regret_entries(t, 1.0 / T):
            cost[col] = zv
    return cost


def _result(dev: Market, prog: Programme, sol: Solution, objective: str, variant: Variant, stages: list[StageResult],
            skipped: int, cvar_alpha: float) -> FitResult:
    feats: Features = prog.feats
    w, sel = sol.w, sol.sel
    T = dev.n_tasks
    chosen = prog.z[np.arange(T), sel]
    value = primary_value(objective, chosen, prog.matters, prog.bins, cvar_alpha)
    judges = dev.agents
    weights = Weights(w_c=float(w[0] / feats.c_max), w_h=float(w[1]), jury={j: float(w[2 + k]) for k, j in enumerate(judges)},
                      source=f"bench fit ({objective}{'' if variant.name == 'full' else ', ' + variant.name})")
    last = stages[-1]
    result = FitResult(
        weights=weights, objective=objective, objective_value=value, max_regret=float(chosen.max()),
        mean_regret=float(chosen.mean()), status=_overall(stages), mip_gap=last.gap,
        seconds=sum(s.seconds for s in stages), n_dev_tasks=T, skipped_tasks=skipped,
        raw_weights={"w_c_normalised": float(w[0]), "w_h": float(w[1]), **{f"jury:{j}": float(w[2 + k]) for k, j in enumerate(judges)}},
        selection=sel, stages=stages,
    )
    matters = prog.matters
    result.meta = {
        "objective": objective, "variant": variant.name, "removes": variant.removes, "objective_value": value,
        "status": result.status, "status_detail": "; ".join(s.describe() for s in stages),
        "stages": [{"stage": s.stage, "status": s.status, "mip_gap": s.gap, "gap_asked": s.asked_gap, "seconds": round(s.seconds, 3)}
                   for s in stages],
        "mip_gap": result.mip_gap, "solve_seconds": round(result.seconds, 3), "dev_tasks": T, "dev_tasks_without_bids": skipped,
        "max_regret_dev": result.max_regret, "mean_regret_dev": result.mean_regret,
        "max_regret_where_choice_matters": float(chosen[matters].max()),
        "tasks_where_choice_matters": int(matters.sum()), "tasks_with_fixed_regret": int((~matters).sum()),
        "fixed_regret_max": float(np.where(prog.win, prog.z, 0.0)[~matters].max(initial=0.0)),
        "c_max": feats.c_max, "price_ref": feats.price_ref, "const_tokens": feats.const_tokens,
        "regret": "u = exec_cost/cost_max if passed else fail_penalty; z = u - min_agents u",
    }
    return result


def evaluate_fit(market: Market, weights: Weights, v: Variant = FULL, *, price_ref: float | None = None,
                 const_tokens: float | None = None, dev_selection: np.ndarray | None = None,
                 dev_market: Market | None = None) -> dict[str, Any]:
    """How often the live rule with ``weights`` picks the oracle agent (and passes) on dev and test.

    With the MILP's own selection, also how often it agrees with the replayed rule on dev
    (imputed missing votes can make them differ).
    """
    out: dict[str, Any] = {}
    router = AuctionRouter(weights, v.name, price_ref=price_ref, const_tokens=const_tokens)
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


__all__ = ["FitResult", "build_programme", "evaluate_fit", "fit_weights"]
