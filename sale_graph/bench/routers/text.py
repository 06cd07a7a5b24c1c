"""Text routers: task-text embeddings (cached next to the log), kNN and a small MLP.

Both learn, on the dev tasks, which agent solves which kind of task from the text alone,
and pick the cheapest agent within a tolerance ``tol`` of the best predicted success;
``tol`` trades quality for cost (the report draws the curve over ``tol``). They do not
bid, so they execute without a plan (:mod:`sale_graph.bench.routers.base`) and learn from
the executions they will be evaluated on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sale_graph.bench.market.market import Market
from sale_graph.bench.routers.base import Router
from sale_graph.storage.text_embedder import default_embeddings


class EmbeddingStore:
    """Task-text embeddings by task id, computed once with the project's offline embedder and cached on disk.

    The cache is an ``.npz`` file (ids, text hashes, vectors); a task whose text
    changed is re-embedded. ``embed`` defaults to
    :func:`sale_graph.storage.text_embedder.default_embeddings` (symmetric e5-small).
    """

    def __init__(self, cache_path: str | Path | None = None, embed: Callable[[list[str]], np.ndarray] | None = None) -> None:
        self.cache_path = Path(cache_path) if cache_path else None
        self._embed = embed
        self._vectors: dict[str, tuple[str, np.ndarray]] = {}
        if self.cache_path is not None and self.cache_path.is_file():
            with np.load(self.cache_path, allow_pickle=False) as data:
                for tid, th, vec in zip(data["ids"], data["hashes"], data["vectors"], strict=True):
                    self._vectors[str(tid)] = (str(th), vec)

    @staticmethod
    def text_hash(text: str) -> str:
        """Short hash of a task text (detects a changed text under the same id)."""
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def put(self, ids: list[str], texts: list[str], vectors: np.ndarray) -> None:
        """Store precomputed vectors (e.g. from the recorder)."""
        for tid, text, vec in zip(ids, texts, np.asarray(vectors, dtype=np.float32), strict=True):
            self._vectors[tid] = (self.text_hash(text), vec)

    def get(self, ids: list[str], texts: list[str]) -> np.ndarray:
        """Unit-norm vectors for these tasks, embedding (and caching) the ones not known yet."""
        missing = [k for k, (tid, text) in enumerate(zip(ids, texts, strict=True))
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
    return np.asarray(default_embeddings(symmetric=True).embed_documents(texts), dtype=np.float32)


def default_cache_path(log_path: str | Path) -> Path:
    """Where the embeddings of a log's tasks are cached: next to the log."""
    p = Path(log_path)
    return p.with_name(p.name + ".embeddings.npz")


def cheapest_within(scores: np.ndarray, market: Market, tol: float) -> np.ndarray:
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

    def fit(self, market: Market, idx: np.ndarray) -> KNNRouter:
        """Remember the dev tasks' embeddings and which agents solved them (the executions it will be judged on)."""
        idx = np.asarray(idx, dtype=int)
        if len(idx) == 0:
            raise ValueError("knn router: no dev tasks to train on")
        self._x = self.store.get([market.task_ids[t] for t in idx], [market.texts[t] for t in idx])
        self._y = market.outcomes(market.has_plain)[0][idx].astype(float)
        return self

    def predict(self, market: Market, idx: np.ndarray) -> np.ndarray:
        """Per task and agent, the share of the ``k`` nearest dev tasks the agent solved."""
        if self._x is None or self._y is None:
            raise RuntimeError("knn router: call fit(market, dev_idx) first")
        x = self.store.get([market.task_ids[t] for t in idx], [market.texts[t] for t in idx])
        sims = x @ self._x.T
        k = min(self.k, self._x.shape[0])
        nn = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        return np.asarray(self._y[nn].mean(axis=1))

    def choose(self, market: Market, idx: np.ndarray) -> np.ndarray:
        """The cheapest agent within ``tol`` of the best neighbour success rate."""
        return cheapest_within(self.predict(market, idx), market, self.tol)


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

    def fit(self, market: Market, idx: np.ndarray) -> MLPRouter:
        """Full-batch Adam on binary cross-entropy (one output per agent)."""
        idx = np.asarray(idx, dtype=int)
        if len(idx) == 0:
            raise ValueError("mlp router: no dev tasks to train on")
        x = self.store.get([market.task_ids[t] for t in idx], [market.texts[t] for t in idx]).astype(np.float64)
        y = market.outcomes(market.has_plain)[0][idx].astype(np.float64)
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
            for k, (param, grad) in enumerate(zip(params, grads, strict=True)):
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
        """The cheapest agent within ``tol`` of the best predicted chance."""
        return cheapest_within(self.predict(market, idx), market, self.tol)
