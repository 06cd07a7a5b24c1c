"""A sampled start for the weight MILP: the best of a few thousand weight vectors, replayed with the rule.

scipy's ``milp`` takes no starting solution, and on a few hundred noisy dev tasks HiGHS can
spend its whole time limit without a feasible point. Every weight vector, though, gives a
selection (the rule's picks), so thousands can be scored in a fraction of a second: the
corners of the weight simplex (every weight on one term) and Dirichlet samples over the
weights the variant leaves free. The best of them

* bounds each stage's objective (a cutoff row ``F <= F_sampled``, which lets HiGHS prune),
* is kept when the MILP finds nothing as good within its time limit (the fit says so), and
* gives, with the MILP's dual bound, the gap that is reported for whatever solution is kept.

A sample counts only where its picks satisfy the MILP's own selection constraints (a dearer
agent wins by at least ``delta``), so every kept sample is a feasible MILP solution and its
picks are exactly what the replayed rule does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sale_graph.bench.fit.programme import Programme

N_SAMPLES = 4000


@dataclass
class Sampled:
    """The sampled weight vectors, their picks and their per-task regrets."""

    weights: np.ndarray  # (K, m), each row sums to 1
    picks: np.ndarray  # (T, K) agent index per task
    regret: np.ndarray  # (T, K)


def sample_weights(prog: Programme, n: int = N_SAMPLES, seed: int = 0) -> np.ndarray:
    """Corners and Dirichlet samples over the free weights (``w_max`` respected), one vector per row."""
    rng = np.random.default_rng(seed)
    free = np.flatnonzero(prog.feats.allowed)
    rows = [np.eye(len(free))]
    for conc in (0.2, 1.0):
        rows.append(rng.dirichlet(np.full(len(free), conc), size=n // 2))
    w_free = np.vstack(rows)
    w_free = w_free[(w_free <= prog.w_max + 1e-12).all(axis=1)]
    w = np.zeros((len(w_free), prog.m))
    w[:, free] = w_free
    return w


def rule_picks(prog: Programme, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per task and weight vector, the agent the MILP's selection constraints allow, and which vectors allow one everywhere.

    Agent ``k`` is allowed on task ``t`` when ``S_tk <= S_ti - delta`` for every cheaper ``i``
    and ``S_tk <= S_ti`` for every dearer ``i`` (the live rule's pick, won by a margin of at least
    ``delta`` over cheaper agents, as in the MILP). A weight vector that leaves some task with no
    allowed agent (a win by less than ``delta``) is dropped: its picks would rest on rounding.
    """
    T, n = prog.bid_ok.shape
    scores = np.einsum("tnm,km->tnk", prog.feats.values, w)
    scores = np.where(prog.bid_ok[:, :, None], scores, np.inf)
    allowed = prog.bid_ok[:, :, None].repeat(len(w), axis=2)
    for k in range(n):
        for i in range(n):
            if i == k:
                continue
            d = prog.delta if prog.rank[i] < prog.rank[k] else 0.0
            allowed[:, k] &= ~prog.bid_ok[:, i, None] | (scores[:, k] <= scores[:, i] - d)
    picks = np.argmax(allowed, axis=1)
    return picks, np.asarray(allowed.any(axis=1).all(axis=0))


def evaluate_samples(prog: Programme, n: int = N_SAMPLES, seed: int = 0) -> Sampled:
    """Score the sampled weight vectors (those the MILP's constraints allow): picks and per-task regrets."""
    w = sample_weights(prog, n, seed)
    picks, valid = rule_picks(prog, w)
    picks = picks[:, valid]
    regret = np.take_along_axis(prog.z, picks, axis=1)
    return Sampled(w[valid], picks, regret)


def primary_values(objective: str, regret: np.ndarray, matters: np.ndarray, bins: np.ndarray, cvar_alpha: float) -> np.ndarray:
    """The objective of every column of ``regret`` (T, K): the vectorised twin of ``programme.primary_value``."""
    if objective == "mean":
        return np.asarray(regret.mean(axis=0))
    r = regret[matters]
    if r.shape[0] == 0:
        return np.zeros(regret.shape[1])
    if objective == "minmax":
        return np.asarray(r.max(axis=0))
    if objective == "binmax":
        b = bins[matters]
        return np.max([r[b == v].mean(axis=0) for v in np.unique(b)], axis=0)
    k = r.shape[0]  # CVaR: eta at the ceil(alpha k)-th smallest regret (the alpha-quantile) is optimal
    srt = np.sort(r, axis=0)
    eta = srt[max(0, int(np.ceil(cvar_alpha * k)) - 1)]
    return np.asarray(eta + np.maximum(r - eta, 0.0).sum(axis=0) / ((1.0 - cvar_alpha) * k))


def best_sample(s: Sampled, prog: Programme, objective: str, cvar_alpha: float, bound: float | None = None,
                bound_objective: str | None = None) -> int | None:
    """Index of the best sample by (objective, mean regret); ``None`` when no sample qualifies.

    With ``bound``, only samples whose ``bound_objective`` is within it qualify.
    """
    value = primary_values(objective, s.regret, prog.matters, prog.bins, cvar_alpha)
    mean = s.regret.mean(axis=0)
    ok = np.ones(len(value), dtype=bool)
    if bound is not None and bound_objective is not None:
        ok = primary_values(bound_objective, s.regret, prog.matters, prog.bins, cvar_alpha) <= bound
    if not ok.any():
        return None
    idx = np.flatnonzero(ok)
    return int(idx[np.lexsort((mean[idx], value[idx]))[0]])
