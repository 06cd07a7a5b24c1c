"""Routers that bid: the self-check cascade, and SALE (with its ablations) replayed on the logged bids and votes.

Both execute the plan they paid for (the plan-following executions of the log).

* ``cascade``: agents from cheapest to dearest; each writes its bid and judges it itself
  (its own jury score of its own bid, gamma in [0, 1]); the first whose self-score reaches the
  threshold executes, else the dearest. Paid: the bids and self-votes of every agent tried.
  The threshold is picked on dev: the cheapest of 0, 0.2, ..., 1.0 whose dev pass@1 is within
  ``CASCADE_TOL`` of the best (1.01, never accept, is only a point of the curve: it is the
  largest agent plus overhead).
* ``sale`` and its ablations (:mod:`sale_graph.bench.routers.variants`): the live selection rule
  (:func:`sale_graph.scoring.strategy_cost`, :func:`~sale_graph.scoring.strategy_value`,
  :func:`~sale_graph.scoring.select_winner`) on the logged bids and votes, no memory. Paid:
  every bid and every vote the variant uses.

:class:`SaleWeights` holds SALE's weights and its ablations' refitted ones, and builds their routers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from sale_graph.bench.market.market import Market
from sale_graph.bench.routers.base import Decisions, Router, evaluate
from sale_graph.bench.routers.variants import variant as get_variant
from sale_graph.scoring import select_winner, strategy_cost, strategy_value
from sale_graph.weights import Weights

CASCADE_THRESHOLDS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.01)
CASCADE_TOL = 0.01


class CascadeRouter(Router):
    """Cheapest first; escalate while the agent's own jury score of its own bid is below the threshold."""

    name = "cascade"
    plain = False

    def __init__(self, threshold: float | None = None) -> None:
        self.threshold = threshold
        self.auto = threshold is None

    def fit(self, market: Market, idx: np.ndarray) -> CascadeRouter:
        """Pick the threshold on dev (see the module docstring); a threshold given to the constructor is kept."""
        if not self.auto:
            return self
        results = []
        for th in CASCADE_THRESHOLDS[:-1]:
            out = evaluate(CascadeRouter(th), market, idx)
            results.append((float(out.passed.mean()), float(out.cost.sum()), th))
        best = max(r[0] for r in results)
        self.threshold = min((r for r in results if r[0] >= best - CASCADE_TOL), key=lambda r: (r[1], r[2]))[2]
        return self

    def decide(self, market: Market, idx: np.ndarray) -> Decisions:
        """The first agent (cheapest first) whose self-score reaches the threshold, and the calls paid on the way."""
        if self.threshold is None:
            raise RuntimeError("cascade router: give a threshold or call fit(market, dev_idx) first")
        idx = np.asarray(idx, dtype=int)
        order = market.price_order()
        agent = np.full(len(idx), order[-1])
        cost, tok, sec = np.zeros(len(idx)), np.zeros(len(idx)), np.zeros(len(idx))
        decided = np.zeros(len(idx), dtype=bool)
        for pos, a in enumerate(order):
            active = ~decided
            last = pos == len(order) - 1
            cost += np.where(active, market.bid_cost[idx, a] + (0 if last else market.vote_cost[idx, a, a]), 0.0)
            tok += np.where(active, market.bid_tok_total[idx, a] + (0 if last else market.vote_tokens[idx, a, a]), 0.0)
            sec += np.where(active, market.bid_seconds[idx, a] + (0 if last else market.vote_seconds[idx, a, a]), 0.0)
            if last:
                break
            self_score = market.gamma[idx, a, a]
            accept = active & market.bid_ok[idx, a] & np.isfinite(self_score) & (np.nan_to_num(self_score, nan=-1) >= self.threshold)
            agent[accept] = a
            decided |= accept
        return Decisions(idx, agent, cost, tok, sec)

    def choose(self, market: Market, idx: np.ndarray) -> np.ndarray:
        """The executing agent per task."""
        return self.decide(market, idx).agent


class AuctionRouter(Router):
    """SALE's auction replayed: its selection rule on the logged bids and votes (no memory), as one of its variants.

    Args:
        weights: the weights (for an ablation: the ones refitted for it).
        variant: a name of :data:`sale_graph.bench.routers.variants.VARIANTS` (``full`` is SALE).
        name: the router's name (default ``sale`` or ``sale:<variant>``).
        price_ref: price-blind: the one price every bid is costed at (default: the pool's mean price).
        const_tokens: length-blind: the one length every bid is costed at (default: the median bid length).
    """

    plain = False

    def __init__(self, weights: Weights, variant: str = "full", name: str | None = None, *,
                 price_ref: float | None = None, const_tokens: float | None = None) -> None:
        self.variant = get_variant(variant)
        self.weights = weights
        self.name = name or ("sale" if variant == "full" else f"sale:{variant}")
        self.price_ref, self.const_tokens = price_ref, const_tokens

    def _effective(self, market: Market) -> tuple[Weights, np.ndarray, float | None]:
        """The weights with the variant's terms at zero, the prices bids are costed at, and a constant length (or None).

        A ``w_c`` left unset is scaled to the log's pool, as a live run scales it to its pool.
        """
        w, v = self.weights.for_prices(dict(zip(market.agents, market.price_out.tolist(), strict=True))), self.variant
        if "cost" in v.zero:
            w = replace(w, w_c=0.0)
        if "entropy" in v.zero:
            w = replace(w, w_h=0.0)
        prices = market.price_out.astype(float)
        const_len = None
        if v.cost_mode == "price-blind":
            prices = np.full_like(prices, self.price_ref if self.price_ref is not None else float(prices.mean()))
        elif v.cost_mode == "length-blind":
            toks = market.bid_tokens[market.bid_ok]
            const_len = self.const_tokens if self.const_tokens is not None else (float(np.median(toks)) if toks.size else 0.0)
        return w, prices, const_len

    def choose(self, market: Market, idx: np.ndarray) -> np.ndarray:
        """Per task: ``argmin (C - V)`` over the successful bids with the project's scoring functions (-1: no bid)."""
        w, prices, const_len = self._effective(market)
        judges = market.agents
        w_jury = [0.0] * len(judges) if "jury" in self.variant.zero else w.jury_weights(judges)
        mask = self.variant.mask(len(judges))
        out = np.full(len(idx), -1)
        for k, t in enumerate(np.asarray(idx, dtype=int)):
            valid = np.flatnonzero(market.bid_ok[t])
            if valid.size == 0:
                continue
            costs, values = [], []
            for i in valid:
                tokens = const_len if const_len is not None else market.bid_tokens[t, i]
                costs.append(strategy_cost(w.cost_weight, float(prices[i]), int(round(tokens))))
                g = market.gamma[t, i]
                gammas = [float(g[j]) if mask[i, j] and np.isfinite(g[j]) else None for j in range(len(judges))]
                values.append(strategy_value(float(market.entropy[t, i]), gammas, w.w_h, w_jury))
            sel = select_winner(costs, values, [float(market.price_out[i]) for i in valid], [market.agents[i] for i in valid])
            out[k] = valid[sel.index]
        return out

    def decide(self, market: Market, idx: np.ndarray) -> Decisions:
        """The choice plus the auction's overhead: every bid, and every vote this variant uses (parallel latency)."""
        idx = np.asarray(idx, dtype=int)
        mask = self.variant.mask(market.n_agents)[None, :, :]
        cost = market.bid_cost[idx].sum(axis=1) + (market.vote_cost[idx] * mask).sum(axis=(1, 2))
        tok = market.bid_tok_total[idx].sum(axis=1) + (market.vote_tokens[idx] * mask).sum(axis=(1, 2))
        vote_sec = (market.vote_seconds[idx] * mask).reshape(len(idx), -1)
        sec = market.bid_seconds[idx].max(axis=1) + (vote_sec.max(axis=1) if vote_sec.shape[1] else 0.0)
        return Decisions(idx, self.choose(market, idx), cost, tok, sec)


@dataclass
class SaleWeights:
    """SALE's weights and the refitted weights of its ablations (``{variant name: (weights, fit meta)}``)."""

    full: Weights = field(default_factory=Weights)
    ablations: dict[str, tuple[Weights, dict[str, Any]]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def router(self, name: str) -> AuctionRouter:
        """The replay router of variant ``name`` with its own refitted weights and constants."""
        if name == "full":
            return AuctionRouter(self.full, "full", price_ref=self.meta.get("price_ref"), const_tokens=self.meta.get("const_tokens"))
        w, meta = self.ablations[name]
        variant = "full" if name == "mean-objective" else name
        return AuctionRouter(w, variant, name=f"sale:{name}", price_ref=meta.get("price_ref"), const_tokens=meta.get("const_tokens"))
