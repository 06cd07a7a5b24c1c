"""The two stages of the weight fit: each a MILP (scipy ``milp``, HiGHS) started from the sampled best.

A stage keeps the better of the MILP's solution and the sampled start
(:mod:`sale_graph.bench.fit.sampling`), judged on the stage's own objective and then the mean
regret, and reports HiGHS's status and the gap of what it kept against the MILP's dual bound.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from sale_graph.bench.fit.programme import ObjectiveSpec, Programme, primary_value
from sale_graph.bench.fit.sampling import Sampled, best_sample

_STATUS = {0: "optimal", 1: "time limit", 2: "infeasible", 3: "unbounded", 4: "solver error"}


@dataclass
class Solution:
    """Weights (normalised, ``sum w = 1``) and the selection they make on the dev tasks."""

    w: np.ndarray
    sel: np.ndarray
    source: str  # "milp" or "sampled start"


@dataclass
class StageResult:
    """One stage: what HiGHS said, the gap of the kept solution, and where that solution came from."""

    stage: int
    status: str
    gap: float | None
    asked_gap: float
    seconds: float
    kept: str = "milp"

    def describe(self) -> str:
        """E.g. ``stage 1: optimal, gap 0 (asked 1e-06), 0.8 s``."""
        gap = "n/a" if self.gap is None else f"{self.gap:.3g}"
        kept = "" if self.kept == "milp" else f"; kept the {self.kept}"
        return f"stage {self.stage}: {self.status}, gap {gap} (asked {self.asked_gap:g}), {self.seconds:.1f} s{kept}"


def _matrix(prog: Programme, spec: ObjectiveSpec, extra_rows: list[tuple[np.ndarray, float]]) -> tuple[LinearConstraint, int]:
    rows = prog.selection_rows()
    offset = len(rows.lb)
    for r, c, v in zip(spec.rows.rows, spec.rows.cols, spec.rows.vals, strict=True):
        rows.rows.append(r + offset)
        rows.cols.append(c)
        rows.vals.append(v)
    rows.lb += spec.rows.lb
    rows.ub += spec.rows.ub
    for row, bound in extra_rows:
        rows.add([(int(c), float(row[c])) for c in np.flatnonzero(row)], -np.inf, bound)
    nvar = prog.n_base + spec.n_extra
    return LinearConstraint(rows.matrix(nvar), rows.lb, rows.ub), nvar


def _milp(prog: Programme, spec: ObjectiveSpec, cost: np.ndarray, extra_rows: list[tuple[np.ndarray, float]],
          fix_above: float | None, gap: float, time_limit_s: float) -> tuple[object, float]:
    """Solve one MILP; ``fix_above``: (min-max) no agent whose regret exceeds it may be selected on a task of D."""
    constraints, nvar = _matrix(prog, spec, extra_rows)
    lower, upper = prog.bounds()
    lower, upper = np.concatenate([lower, spec.extra_lower]), np.concatenate([upper, spec.extra_upper])
    if fix_above is not None:
        for (t, i), col in prog.xcol.items():
            if prog.matters[t] and prog.z[t, i] > fix_above:
                upper[col] = 0.0
    integrality = np.zeros(nvar)
    integrality[prog.m:prog.n_base] = 1
    start = time.perf_counter()
    res = milp(cost, constraints=constraints, integrality=integrality, bounds=Bounds(lower, upper),
               options={"time_limit": time_limit_s, "mip_rel_gap": gap, "disp": False})
    return res, time.perf_counter() - start


def selection_of(prog: Programme, x: np.ndarray) -> np.ndarray:
    """The agent the MILP selected on each task."""
    sel = np.full(prog.bid_ok.shape[0], -1)
    for (t, i), col in prog.xcol.items():
        if x[col] > 0.5:
            sel[t] = i
    return sel


def score(prog: Programme, sol: Solution, objective: str, cvar_alpha: float) -> tuple[float, float]:
    """``(objective value, mean regret)`` of a solution, recomputed from its selection."""
    regret = prog.z[np.arange(len(sol.sel)), sol.sel]
    return primary_value(objective, regret, prog.matters, prog.bins, cvar_alpha), float(regret.mean())


def _gap(value: float, bound: float | None) -> float | None:
    if bound is None or not math.isfinite(bound):
        return None
    return max(0.0, (value - bound) / max(abs(value), 1e-12)) if value > 1e-12 else 0.0


def solve_stage(prog: Programme, spec: ObjectiveSpec, samples: Sampled, *, stage: int, objective: str, cost: np.ndarray,
                cvar_alpha: float, gap: float, time_limit_s: float, incumbents: list[Solution],
                bound: tuple[str, float] | None = None) -> tuple[Solution, StageResult]:
    """Minimise ``cost . v`` (the stage's objective ``objective``), optionally with ``bound = (objective, F)`` held.

    ``incumbents`` are solutions already known to satisfy ``bound`` (stage 1's for stage 2).
    """
    if bound is None:
        k = best_sample(samples, prog, objective, cvar_alpha)
    else:
        k = best_sample(samples, prog, objective, cvar_alpha, bound=bound[1], bound_objective=bound[0])
    known = list(incumbents)
    if k is not None:
        known.append(Solution(samples.weights[k], samples.picks[:, k], "sampled start"))
    best = min(known, key=lambda s: score(prog, s, objective, cvar_alpha)) if known else None
    extra = [(spec.cost, bound[1])] if bound else []
    cutoff = [(cost, score(prog, best, objective, cvar_alpha)[0] + 1e-9)] if best is not None else []
    fix = bound[1] if bound and bound[0] == "minmax" else (cutoff[0][1] if cutoff and objective == "minmax" else None)
    res, seconds = _milp(prog, spec, cost, extra + cutoff, fix, gap, time_limit_s)
    if getattr(res, "status", None) == 2 and cutoff:  # the sampled start's margins were below delta: go without it
        res, more = _milp(prog, spec, cost, extra, bound[1] if bound and bound[0] == "minmax" else None, gap, time_limit_s)
        seconds += more
    x = getattr(res, "x", None)
    status = _STATUS.get(getattr(res, "status", 4), "solver error")
    if x is not None:
        milp_sol = Solution(np.clip(x[:prog.m], 0.0, None), selection_of(prog, x), "milp")
        if best is None or score(prog, milp_sol, objective, cvar_alpha) <= score(prog, best, objective, cvar_alpha):
            best = milp_sol
        if status == "time limit":
            status = "time limit (best solution found)"
    if best is None:
        raise RuntimeError(f"stage {stage}: no solution ({status})")
    value = score(prog, best, objective, cvar_alpha)[0]
    g = getattr(res, "mip_gap", None) if best.source == "milp" and status == "optimal" else \
        _gap(value, getattr(res, "mip_dual_bound", None))
    return best, StageResult(stage, status, g, gap, seconds, best.source)
