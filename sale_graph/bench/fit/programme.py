"""The pieces of the weight MILP: features, regret, winnable agents, selection constraints, objectives.

:func:`sale_graph.bench.fit.weights.fit_weights` writes the whole programme in its
docstring; this module builds its matrices. Variables are laid out as
``[w (m features) | x (one binary per (task, agent) with a bid) | objective variables]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix, csr_matrix

from sale_graph.bench.fit.defaults import OBJECTIVES
from sale_graph.bench.market.market import Market
from sale_graph.bench.routers.variants import Variant


class FitError(RuntimeError):
    """The weight programme could not be built or solved."""


class NoSignalError(FitError):
    """No dev task where the choice of agent changes the regret: every weight vector is equally good."""


def imputed_gamma(gamma: np.ndarray) -> np.ndarray:
    """``gamma[t, bidder, judge]`` with a missing vote replaced by the mean of the bid's present votes (0 if none)."""
    present = np.isfinite(gamma)
    count = present.sum(axis=2, keepdims=True)
    total = np.where(present, gamma, 0.0).sum(axis=2, keepdims=True)
    mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return np.where(present, gamma, mean)


def outcome_regret(market: Market, fail_penalty: float = 2.0, cost_scale: float | None = None) -> tuple[np.ndarray, float]:
    """``z[t, i]``: regret of selecting agent ``i`` on task ``t`` (see ``fit_weights``) and the cost scale used."""
    scale = float(cost_scale if cost_scale is not None else market.exec_cost.max())
    scale = scale if scale > 0 else 1.0
    u = np.where(market.passed, market.exec_cost / scale, fail_penalty)
    u_valid = np.where(market.bid_ok, u, np.inf)
    best = np.min(u_valid, axis=1, keepdims=True)
    best = np.where(np.isfinite(best), best, 0.0)
    return np.where(market.bid_ok, u - best, 0.0), scale


@dataclass
class Features:
    """The bids' features ``f[t, i]`` (so that ``C - V = f . w``) under one variant, and how to map ``w`` back."""

    values: np.ndarray  # (T, n, m): [cost~, -H, -gamma_1..-gamma_n]
    allowed: np.ndarray  # (m,) False where the variant fixes the weight at zero
    c_max: float  # cost feature scale: w_c = w~_c / c_max
    price_ref: float | None = None  # price-blind: the one price every bid is costed at
    const_tokens: float | None = None  # length-blind: the one length every bid is costed at


def build_features(dev: Market, v: Variant) -> Features:
    """Features of the dev bids for variant ``v`` (cost mode, jury mask, weights fixed at zero)."""
    n = dev.n_agents
    price = dev.price_out[None, :].repeat(dev.n_tasks, axis=0)
    tokens = dev.bid_tokens
    price_ref = const_tokens = None
    if v.cost_mode == "price-blind":
        price_ref = float(dev.price_out.mean())
        price = np.full_like(price, price_ref)
    elif v.cost_mode == "length-blind":
        ok_tokens = dev.bid_tokens[dev.bid_ok]
        const_tokens = float(np.median(ok_tokens)) if ok_tokens.size else 0.0
        tokens = np.full_like(tokens, round(const_tokens))
    raw_cost = price * tokens
    c_max = float(raw_cost[dev.bid_ok].max()) if dev.bid_ok.any() else 1.0
    c_max = c_max if c_max > 0 else 1.0
    gamma = np.where(v.mask(n)[None, :, :], dev.gamma, np.nan)
    values = np.concatenate([(raw_cost / c_max)[:, :, None], -dev.entropy[:, :, None], -imputed_gamma(gamma)], axis=2)
    allowed = np.ones(values.shape[2], dtype=bool)
    if "cost" in v.zero:
        allowed[0] = False
    if "entropy" in v.zero:
        allowed[1] = False
    if "jury" in v.zero:
        allowed[2:] = False
    return Features(values, allowed, c_max, price_ref, const_tokens)


def _lp_winnable(f: np.ndarray, i: int, others: list[int], d: np.ndarray, allowed: np.ndarray, w_max: float) -> bool:
    m = f.shape[1]
    a_ub = np.array([f[i] - f[k] for k in others])
    res = linprog(np.zeros(m), A_ub=a_ub, b_ub=-d, A_eq=np.ones((1, m)), b_eq=[1.0],
                  bounds=[(0.0, w_max if ok else 0.0) for ok in allowed], method="highs")
    return bool(res.status == 0)


def winnable_agents(feats: Features, bid_ok: np.ndarray, rank: dict[int, int], delta: float, w_max: float) -> np.ndarray:
    """``win[t, i]``: whether some weights (``0 <= w <= w_max``, ``sum w = 1``, fixed zeros kept) make the rule pick ``i``.

    Decided without an LP where a corner of the weight simplex already makes ``i`` win
    (``w_max = 1``), or where ``i`` cannot beat some ``k`` whatever the weights; an LP otherwise.
    """
    f_all, allowed = feats.values, feats.allowed
    T, n, _ = f_all.shape
    win = np.zeros((T, n), dtype=bool)
    cols = np.flatnonzero(allowed)
    for t in range(T):
        valid = np.flatnonzero(bid_ok[t])
        f = f_all[t]
        for i in map(int, valid):
            others = [int(k) for k in valid if k != i]
            if not others:
                win[t, i] = True
                continue
            d = np.array([delta if rank[k] < rank[i] else 0.0 for k in others])
            diff = f[i][None, cols] - f[others][:, cols]  # (others, allowed features): S_i - S_k at each corner
            if (diff.min(axis=1) > -d).any():
                continue  # some k beats i at every corner, so at every weight vector
            if w_max >= 1.0 and (diff <= -d[:, None]).all(axis=0).any():
                win[t, i] = True
                continue
            win[t, i] = _lp_winnable(f, i, others, d, allowed, w_max)
    return win


@dataclass
class Programme:
    """The selection constraints over dev tasks, shared by every objective and both stages."""

    feats: Features
    bid_ok: np.ndarray
    z: np.ndarray
    win: np.ndarray
    matters: np.ndarray
    bins: np.ndarray
    rank: dict[int, int]
    delta: float
    w_max: float
    pairs: list[tuple[int, int]] = field(init=False)
    xcol: dict[tuple[int, int], int] = field(init=False)

    def __post_init__(self) -> None:
        T, n = self.bid_ok.shape
        self.pairs = [(t, i) for t in range(T) for i in range(n) if self.bid_ok[t, i]]
        m = self.m
        self.xcol = {p: m + k for k, p in enumerate(self.pairs)}

    @property
    def m(self) -> int:
        """Number of weights."""
        return int(self.feats.values.shape[2])

    @property
    def n_base(self) -> int:
        """Number of variables before the objective's own: weights and selection binaries."""
        return self.m + len(self.pairs)

    def regret_entries(self, t: int, scale: float = 1.0) -> list[tuple[int, float]]:
        """``(column, scale * z_ti)`` of task ``t``'s selected regret ``r_t = sum_i z_ti x_ti`` (zeros left out)."""
        n = self.bid_ok.shape[1]
        return [(self.xcol[(t, i)], scale * float(self.z[t, i])) for i in range(n) if self.bid_ok[t, i] and self.z[t, i] != 0.0]

    def selection_rows(self) -> _Rows:
        """``sum w = 1``, one agent per task, and the big-M rows that make the selected agent the rule's winner."""
        rows = _Rows()
        f_all = self.feats.values
        allowed = self.feats.allowed
        rows.add([(f, 1.0) for f in range(self.m)], 1.0, 1.0)
        T, n = self.bid_ok.shape
        for t in range(T):
            valid = [i for i in range(n) if self.bid_ok[t, i]]
            rows.add([(self.xcol[(t, i)], 1.0) for i in valid], 1.0, 1.0)
            for k in valid:
                if not self.win[t, k]:
                    continue  # x_tk is fixed at 0: its rows could never bind
                for i in valid:
                    if i == k:
                        continue
                    d = self.delta if self.rank[i] < self.rank[k] else 0.0
                    diff = np.where(allowed, f_all[t, k] - f_all[t, i], 0.0)
                    big_m = max(0.0, float(diff[allowed].max()) + d)
                    entries = [(f, float(diff[f])) for f in range(self.m) if diff[f] != 0.0]
                    rows.add(entries + [(self.xcol[(t, k)], big_m)], -np.inf, big_m - d)
        return rows

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the weights and selection binaries (unwinnable pairs and fixed weights at 0)."""
        lower = np.zeros(self.n_base)
        upper = np.concatenate([np.where(self.feats.allowed, self.w_max, 0.0), np.ones(len(self.pairs))])
        for (t, i), col in self.xcol.items():
            if not self.win[t, i]:
                upper[col] = 0.0
        return lower, upper


class _Rows:
    """A sparse constraint matrix built row by row: ``lb <= A v <= ub``."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.lb: list[float] = []
        self.ub: list[float] = []

    def add(self, entries: list[tuple[int, float]], lo: float, hi: float) -> None:
        """Append the row ``lo <= sum(v[c] * a for c, a in entries) <= hi``."""
        r = len(self.lb)
        for c, v in entries:
            self.rows.append(r)
            self.cols.append(c)
            self.vals.append(v)
        self.lb.append(lo)
        self.ub.append(hi)

    def matrix(self, nvar: int) -> csr_matrix:
        """The rows as a CSR matrix with ``nvar`` columns."""
        return coo_matrix((self.vals, (self.rows, self.cols)), shape=(len(self.lb), nvar)).tocsr()


@dataclass
class ObjectiveSpec:
    """An objective's extra variables and rows, and its cost vector over all variables."""

    name: str
    n_extra: int
    rows: _Rows
    cost: np.ndarray
    extra_lower: np.ndarray
    extra_upper: np.ndarray


def objective_spec(prog: Programme, objective: str, cvar_alpha: float, fail_penalty: float) -> ObjectiveSpec:
    """The primary objective's variables, rows and cost vector (see ``fit_weights`` for the formulas)."""
    T = prog.bid_ok.shape[0]
    base = prog.n_base
    rows = _Rows()
    d_tasks = np.flatnonzero(prog.matters)
    if objective == "mean":
        cost = np.zeros(base)
        for t in range(T):
            for col, zv in prog.regret_entries(t, 1.0 / T):
                cost[col] = zv
        return ObjectiveSpec("mean", 0, rows, cost, np.zeros(0), np.zeros(0))
    if objective in ("minmax", "binmax"):
        q = base
        groups = [[int(t)] for t in d_tasks] if objective == "minmax" else \
            [[int(t) for t in d_tasks if prog.bins[t] == b] for b in np.unique(prog.bins[d_tasks])]
        for g in groups:
            rows.add([(q, 1.0)] + [(c, -v) for t in g for c, v in prog.regret_entries(t, 1.0 / len(g))], 0.0, np.inf)
        cost = np.zeros(base + 1)
        cost[q] = 1.0
        return ObjectiveSpec(objective, 1, rows, cost, np.zeros(1), np.full(1, fail_penalty))
    if objective == "cvar":
        eta, s0, k = base, base + 1, len(d_tasks)
        for j, task in enumerate(d_tasks.tolist()):  # s_t >= r_t - eta
            rows.add([(s0 + j, 1.0), (eta, 1.0)] + [(c, -v) for c, v in prog.regret_entries(task)], 0.0, np.inf)
        cost = np.zeros(base + 1 + k)
        cost[eta] = 1.0
        cost[s0:] = 1.0 / ((1.0 - cvar_alpha) * k)
        return ObjectiveSpec("cvar", 1 + k, rows, cost, np.zeros(1 + k), np.full(1 + k, fail_penalty))
    raise FitError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")


def primary_value(objective: str, regret: np.ndarray, matters: np.ndarray, bins: np.ndarray, cvar_alpha: float) -> float:
    """The objective's value for per-task selected regrets ``regret`` (recomputed from a selection, not the solver)."""
    r = regret[matters]
    if objective == "mean":
        return float(regret.mean()) if regret.size else 0.0
    if r.size == 0:
        return 0.0
    if objective == "minmax":
        return float(r.max())
    if objective == "binmax":
        return float(max(r[bins[matters] == b].mean() for b in np.unique(bins[matters])))
    k = r.size  # CVaR: min over eta of eta + sum (r - eta)+ / ((1 - alpha) k); eta at a sorted regret is optimal
    best = np.inf
    for eta in np.unique(r):
        best = min(best, float(eta + np.maximum(r - eta, 0.0).sum() / ((1.0 - cvar_alpha) * k)))
    return float(best)
