"""Routers replayed on a market log: who would have executed each task, and what it would have cost.

Every router has the same interface:

* ``route(record) -> agent name`` for one log record (what a router is);
* ``fit(market, idx)`` trains on the dev tasks ``idx`` (no-op for untrained routers);
* ``decide(market, idx) -> Decisions``: for many tasks at once, the executing agent and
  every cost the router pays besides that execution (bids, jury votes, escalations).

Because the log holds every agent's own graded execution of every task, every
router is evaluated on the same tasks with the same outcomes (:func:`evaluate`).

Routers:

* ``agent:<name>``: always that agent (executing its own bid's plan, as logged).
* ``random``: a uniform agent per task (seeded hash of the task id).
* ``oracle``: the cheapest agent (realised execution cost) that solved the task.
* ``knn``: the ``k`` most similar dev tasks by task-text embedding (cosine); per agent the
  share of those it solved; the cheapest agent within ``tol`` of the best share.
* ``mlp``: a one-hidden-layer network (numpy) on task-text embeddings predicting, per agent,
  the chance it solves the task; the cheapest agent within ``tol`` of the best prediction.
* ``cascade``: agents from cheapest to dearest; each writes its bid and judges it itself
  (the self-check: its own jury score of its own bid, gamma in [0, 1]); the first whose
  self-score reaches the threshold executes, else the dearest executes. The threshold is
  picked on dev (best pass@1, ties to the lower cost). Paid: the bids and self-votes of
  every agent tried.
* ``sale`` and ablations: the live selection rule (:func:`sale_graph.scoring.strategy_cost`,
  :func:`~sale_graph.scoring.strategy_value`, :func:`~sale_graph.scoring.select_winner`) on the
  logged bids and votes with given weights, no memory. Paid: every bid and every vote the
  variant uses. Variants: ``no-price`` (w_c = 0), ``no-length`` (every bid costed at the log's
  median bid length, so only the price counts), ``no-entropy`` (w_h = 0), ``no-jury`` (no votes,
  none paid), ``self-jury`` (only the bidder's own vote), ``peer-jury`` (only the other judges').
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from sale_graph.bench.market import Market
from sale_graph.scoring import select_winner, strategy_cost, strategy_value
from sale_graph.weights import Weights

SALE_VARIANTS = ("full", "no-price", "no-length", "no-entropy", "no-jury", "self-jury", "peer-jury")


@dataclass
class Decisions:
    """A router's decisions on tasks ``idx``: executing agent (-1: none), and what it paid besides that execution."""

    idx: np.ndarray
    agent: np.ndarray
    overhead_cost: np.ndarray
    overhead_tokens: np.ndarray
    overhead_seconds: np.ndarray


@dataclass
class Outcome:
    """Per task: passed, dollars, tokens and seconds in all, and the router's own (auction) share of them."""

    idx: np.ndarray
    agent: np.ndarray
    passed: np.ndarray
    cost: np.ndarray
    tokens: np.ndarray
    seconds: np.ndarray
    overhead_cost: np.ndarray
    overhead_tokens: np.ndarray
    overhead_seconds: np.ndarray


class Router:
    """Base class: subclasses implement :meth:`choose` (and :meth:`decide` when they pay overhead)."""

    name = "router"

    def fit(self, market: Market, idx: np.ndarray) -> "Router":
        """Train on tasks ``idx`` of ``market`` (dev); untrained routers ignore it."""
        return self

    def choose(self, market: Market, idx: np.ndarray) -> np.ndarray:
        """The executing agent's index for each task in ``idx`` (-1 when none can execute)."""
        raise NotImplementedError

    def decide(self, market: Market, idx: np.ndarray) -> Decisions:
        """Decisions with no overhead (routers that pay for bids or votes override this)."""
        idx = np.asarray(idx, dtype=int)
        z = np.zeros(len(idx))
        return Decisions(idx, self.choose(market, idx), z, z.copy(), z.copy())

    def route(self, record: dict[str, Any]) -> str:
        """The agent this router sends one logged task to."""
        market = Market.from_records([record])
        pick = int(self.choose(market, np.array([0]))[0])
        if pick < 0:
            raise ValueError(f"router {self.name}: no agent can execute task {record['task']['id']!r} (no bid succeeded)")
        return market.agents[pick]


def evaluate(router: Router, market: Market, idx: np.ndarray) -> Outcome:
    """Replay ``router`` on tasks ``idx``: the outcome is the chosen agent's logged execution plus the overhead."""
    d = router.decide(market, np.asarray(idx, dtype=int))
    ok = d.agent >= 0
    a = np.where(ok, d.agent, 0)
    passed = ok & market.passed[d.idx, a]
    ex_cost = np.where(ok, market.exec_cost[d.idx, a], 0.0)
    ex_tok = np.where(ok, market.exec_tokens[d.idx, a], 0.0)
    ex_sec = np.where(ok, market.exec_seconds[d.idx, a], 0.0)
    return Outcome(
        idx=d.idx, agent=d.agent, passed=passed, cost=ex_cost + d.overhead_cost, tokens=ex_tok + d.overhead_tokens,
        seconds=ex_sec + d.overhead_seconds, overhead_cost=d.overhead_cost, overhead_tokens=d.overhead_tokens,
        overhead_seconds=d.overhead_seconds,
    )


class SingleAgentRouter(Router):
    """Always the same agent."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.name = f"agent:{agent}"

    def choose(self, market: Market, idx: np.ndarray) -> np.ndarray:
        if self.agent not in market.agents:
            raise ValueError(f"router {self.name}: agent {self.agent!r} not in the log's pool {market.agents}")
        return np.full(len(idx), market.agents.index(self.agent))


class RandomRouter(Router):
    """A uniformly random agent per task, decided by a seeded hash of the task id (reproducible)."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def choose(self, market: Market, idx: np.ndarray) -> np.ndarray:
        h = [int.from_bytes(hashlib.sha256(f"{self.seed}:{market.task_ids[t]}".encode()).digest()[:8], "big") for t in idx]
        return np.array([x % market.n_agents for x in h], dtype=int)


class OracleRouter(Router):
    """The cheapest agent that solved the task (an upper bound no real router reaches)."""

    name = "oracle"

    def choose(self, market: Market, idx: np.ndarray) -> np.ndarray:
        return market.oracle()[np.asarray(idx, dtype=int)]


class EmbeddingStore:
    """Task-text embeddings by task id, computed once with the project's offline embedder and cached on disk.

    The cache is an ``.npz`` file (ids, text hashes, vectors); a task whose text
    changed is re-embedded. ``embed`` defaults to
    :func:`sale_graph.embeddings.default_embeddings` (symmetric e5-small).
    """

    def __init__(self, cache_path: str | Path | None = None, embed: Callable[[list[str]], np.ndarray] | None = None) -> None:
        self.cache_path = Path(cache_path) if cache_path else None
        self._embed = embed
        self._vectors: dict[str, tuple[str, np.ndarray]] = {}
        if self.cache_path is not None and self.cache_path.is_file():
            with np.load(self.cache_path, allow_pickle=False) as data:
                for tid, th, vec in zip(data["ids"], data["hashes"], data["vectors"]):
                    self._vectors[str(tid)] = (str(th), vec)

    @staticmethod
    def text_hash(text: str) -> str:
        """Short hash of a task text (detects a changed text under the same id)."""
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def put(self, ids: list[str], texts: list[str], vectors: np.ndarray) -> None:
        """Store precomputed vectors (e.g. from the recorder)."""
        for tid, text, vec in zip(ids, texts, np.asarray(vectors, dtype=np.float32)):
            self._vectors[tid] = (self.text_hash(text), vec)

    def get(self, ids: list[str], texts: list[str]) -> np.ndarray:
        """Unit-norm vectors for these tasks, embedding (and caching) the ones not known yet."""
        missing = [k for k, (tid, text) in enumerate(zip(ids, texts))
                   if tid not in self._vectors or self._vectors[tid][0] != self.text_hash(text)]
        if missing:
            embed = self._embed or _default_embed
            vecs = np.asarray(embed([texts[k] for k in missing]), dtype=np.float32)
            self.put([ids[k] for k in missing], [texts[k] for k in missing], vecs)
            self.save()
        out = np.stack([self._vectors[tid][1] for tid in ids]).astype(np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)

    def save(self) -> None:
        """Write the cache file (when a path was given)."""
        if self.cache_path is None or not self._vectors:
            return
        ids = list(self._vectors)
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_path.with_name(self.cache_path.name + ".tmp.npz")
        np.savez(tmp, ids=np.array(ids), hashes=np.array([self._vectors[i][0] for i in ids]),
                 vectors=np.stack([self._vectors[i][1] for i in ids]))
        tmp.replace(self.cache_path)


def _default_embed(texts: list[str]) -> np.ndarray:
    from sale_graph.embeddings import default_embeddings

    return np.asarray(default_embeddings(symmetric=True).embed_documents(texts), dtype=np.float32)


def default_cache_path(log_path: str | Path) -> Path:
    """Where the embeddings of a log's tasks are cached: next to the log."""
    p = Path(log_path)
    return p.with_name(p.name + ".embeddings.npz")


def _cheapest_within(scores: np.ndarray, market: Market, tol: float) -> np.ndarray:
    """Per row, the cheapest agent whose score is within ``tol`` of the row's best."""
    order = market.price_order()
    best = scores.max(axis=1, keepdims=True)
    ok = scores >= best - tol - 1e-12
    ranked = ok[:, order]
    return np.array(order)[np.argmax(ranked, axis=1)]


class KNNRouter(Router):
    """k nearest dev tasks by embedding; the cheapest agent within ``tol`` of the best neighbour success rate."""

    name = "knn"

    def __init__(self, store: EmbeddingStore, k: int = 10, tol: float = 0.0) -> None:
        self.store, self.k, self.tol = store, k, tol
        self._x: np.ndarray | None = None
        self._y: np.ndarray | None = None

    def fit(self, market: Market, idx: np.ndarray) -> "KNNRouter":
        idx = np.asarray(idx, dtype=int)
        if len(idx) == 0:
            raise ValueError("knn router: no dev tasks to train on")
        self._x = self.store.get([market.task_ids[t] for t in idx], [market.texts[t] for t in idx])
        self._y = market.passed[idx].astype(float)
        return self

    def choose(self, market: Market, idx: np.ndarray) -> np.ndarray:
        if self._x is None or self._y is None:
            raise RuntimeError("knn router: call fit(market, dev_idx) first")
        x = self.store.get([market.task_ids[t] for t in idx], [market.texts[t] for t in idx])
        sims = x @ self._x.T
        k = min(self.k, self._x.shape[0])
        nn = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        rates = self._y[nn].mean(axis=1)
        return _cheapest_within(rates, market, self.tol)


class MLPRouter(Router):
    """A small numpy MLP on embeddings predicting each agent's success; cheapest agent within ``tol`` of the best."""

    name = "mlp"

    def __init__(self, store: EmbeddingStore, hidden: int = 64, epochs: int = 300, lr: float = 0.01,
                 weight_decay: float = 1e-4, tol: float = 0.05, seed: int = 0) -> None:
        self.store, self.hidden, self.epochs, self.lr = store, hidden, epochs, lr
        self.weight_decay, self.tol, self.seed = weight_decay, tol, seed
        self.params: list[np.ndarray] | None = None

    @staticmethod
    def _forward(params: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w1, b1, w2, b2 = params
        h = np.maximum(0.0, x @ w1 + b1)
        return h, 1.0 / (1.0 + np.exp(-(h @ w2 + b2)))

    def fit(self, market: Market, idx: np.ndarray) -> "MLPRouter":
        """Full-batch Adam on binary cross-entropy (one output per agent)."""
        idx = np.asarray(idx, dtype=int)
        if len(idx) == 0:
            raise ValueError("mlp router: no dev tasks to train on")
        x = self.store.get([market.task_ids[t] for t in idx], [market.texts[t] for t in idx]).astype(np.float64)
        y = market.passed[idx].astype(np.float64)
        rng = np.random.default_rng(self.seed)
        d, n = x.shape[1], y.shape[1]
        params = [rng.normal(0, np.sqrt(2 / d), (d, self.hidden)), np.zeros(self.hidden),
                  rng.normal(0, np.sqrt(1 / self.hidden), (self.hidden, n)), np.zeros(n)]
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        b1, b2 = 0.9, 0.999
        for step in range(1, self.epochs + 1):
            h, p = self._forward(params, x)
            g_out = (p - y) / len(x)
            grads = [None, None, h.T @ g_out, g_out.sum(axis=0)]
            g_h = (g_out @ params[2].T) * (h > 0)
            grads[0], grads[1] = x.T @ g_h, g_h.sum(axis=0)
            for k, (param, grad) in enumerate(zip(params, grads)):
                grad = grad + self.weight_decay * param
                m[k] = b1 * m[k] + (1 - b1) * grad
                v[k] = b2 * v[k] + (1 - b2) * grad * grad
                param -= self.lr * (m[k] / (1 - b1**step)) / (np.sqrt(v[k] / (1 - b2**step)) + 1e-8)
        self.params = params
        return self

    def predict(self, market: Market, idx: np.ndarray) -> np.ndarray:
        """Predicted chance of success, per task and agent."""
        if self.params is None:
            raise RuntimeError("mlp router: call fit(market, dev_idx) first")
        x = self.store.get([market.task_ids[t] for t in idx], [market.texts[t] for t in idx]).astype(np.float64)
        return self._forward(self.params, x)[1]

    def choose(self, market: Market, idx: np.ndarray) -> np.ndarray:
        return _cheapest_within(self.predict(market, idx), market, self.tol)


class CascadeRouter(Router):
    """Cheapest first; escalate while the agent's own jury score of its own bid is below the threshold."""

    name = "cascade"

    def __init__(self, threshold: float | None = None) -> None:
        self.threshold = threshold
        self.auto = threshold is None

    def fit(self, market: Market, idx: np.ndarray) -> "CascadeRouter":
        """Pick the threshold on dev among 0, 0.2, ..., 1.0 and 1.01 = never accept (best pass@1, then lower cost).

        A threshold given to the constructor is kept.
        """
        if not self.auto:
            return self
        best: tuple[float, float, float] | None = None
        for th in [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.01]:
            out = evaluate(CascadeRouter(th), market, idx)
            key = (-float(out.passed.mean()), float(out.cost.sum()), th)
            if best is None or key < best:
                best = key
        assert best is not None
        self.threshold = best[2]
        return self

    def decide(self, market: Market, idx: np.ndarray) -> Decisions:
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
        return self.decide(market, idx).agent


class SaleRouter(Router):
    """The SALE selection rule replayed on the logged bids and votes (no memory), with an ablation ``variant``."""

    def __init__(self, weights: Weights, variant: str = "full", name: str | None = None) -> None:
        if variant not in SALE_VARIANTS:
            raise ValueError(f"unknown SALE variant {variant!r}; known: {', '.join(SALE_VARIANTS)}")
        self.weights, self.variant = weights, variant
        self.name = name or ("sale" if variant == "full" else f"sale:{variant}")

    def _effective(self, market: Market) -> tuple[Weights, float | None]:
        w = self.weights
        const_len = None
        if self.variant == "no-price":
            w = replace(w, w_c=0.0)
        elif self.variant == "no-entropy":
            w = replace(w, w_h=0.0)
        elif self.variant == "no-length":
            toks = market.bid_tokens[market.bid_ok]
            const_len = float(np.median(toks)) if toks.size else 0.0
        return w, const_len

    def _judge_mask(self, n: int) -> np.ndarray:
        """``mask[i, j]``: whether judge ``j``'s vote on bidder ``i`` is used (and paid)."""
        eye = np.eye(n, dtype=bool)
        if self.variant == "no-jury":
            return np.zeros((n, n), dtype=bool)
        if self.variant == "self-jury":
            return eye
        if self.variant == "peer-jury":
            return ~eye
        return np.ones((n, n), dtype=bool)

    def choose(self, market: Market, idx: np.ndarray) -> np.ndarray:
        """Per task: ``argmin (C - V)`` over the successful bids with the project's scoring functions (-1: no bid)."""
        w, const_len = self._effective(market)
        judges = market.agents
        w_jury = [0.0] * len(judges) if self.variant == "no-jury" else w.jury_weights(judges)
        mask = self._judge_mask(len(judges))
        out = np.full(len(idx), -1)
        for k, t in enumerate(np.asarray(idx, dtype=int)):
            valid = np.flatnonzero(market.bid_ok[t])
            if valid.size == 0:
                continue
            costs, values = [], []
            for i in valid:
                tokens = const_len if const_len is not None else market.bid_tokens[t, i]
                costs.append(strategy_cost(w.w_c, float(market.price_out[i]), int(round(tokens))))
                g = market.gamma[t, i]
                gammas = [float(g[j]) if mask[i, j] and np.isfinite(g[j]) else None for j in range(len(judges))]
                values.append(strategy_value(float(market.entropy[t, i]), gammas, w.w_h, w_jury))
            sel = select_winner(costs, values, [float(market.price_out[i]) for i in valid], [market.agents[i] for i in valid])
            out[k] = valid[sel.index]
        return out

    def decide(self, market: Market, idx: np.ndarray) -> Decisions:
        """The choice plus the auction's overhead: every bid, and every vote this variant uses (parallel latency)."""
        idx = np.asarray(idx, dtype=int)
        mask = self._judge_mask(market.n_agents)[None, :, :]
        cost = market.bid_cost[idx].sum(axis=1) + (market.vote_cost[idx] * mask).sum(axis=(1, 2))
        tok = market.bid_tok_total[idx].sum(axis=1) + (market.vote_tokens[idx] * mask).sum(axis=(1, 2))
        vote_sec = (market.vote_seconds[idx] * mask).reshape(len(idx), -1)
        sec = market.bid_seconds[idx].max(axis=1) + (vote_sec.max(axis=1) if vote_sec.shape[1] else 0.0)
        return Decisions(idx, self.choose(market, idx), cost, tok, sec)


def standard_routers(
    market: Market,
    dev_idx: np.ndarray,
    *,
    weights: Weights | None = None,
    weights_mean: Weights | None = None,
    store: EmbeddingStore | None = None,
    text_routers: bool = True,
) -> list[Router]:
    """Every router of the report, trained on ``dev_idx``: agents, random, oracle, knn, mlp, cascade, SALE and ablations.

    ``weights`` is SALE's weights (default: the documented defaults);
    ``weights_mean`` adds ``sale:mean-objective`` (weights fitted with the mean objective).
    Text routers are skipped (with ``text_routers=False``) when no embeddings are wanted.
    """
    w = weights or Weights()
    routers: list[Router] = [SingleAgentRouter(a) for a in market.agents]
    routers += [RandomRouter(0), OracleRouter()]
    if text_routers and len(dev_idx):
        st = store or EmbeddingStore()
        routers += [KNNRouter(st).fit(market, dev_idx), MLPRouter(st).fit(market, dev_idx)]
    routers.append(CascadeRouter().fit(market, dev_idx) if len(dev_idx) else CascadeRouter(0.6))
    routers += [SaleRouter(w, v) for v in SALE_VARIANTS]
    if weights_mean is not None:
        routers.append(SaleRouter(weights_mean, "full", name="sale:mean-objective"))
    return routers
