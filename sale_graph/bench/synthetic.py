"""Synthetic market logs in the exact record format of `sale bench record`, for tests and speed benchmarks.

A latent difficulty per task (rising with its bin, shifted by a topic) and a
skill per agent (rising with its price) give each agent a chance to solve each
task; bids, jury scores and entropy carry a noisy signal of that chance, so
routers have something to learn. Task texts share words within a topic and the
synthetic embeddings (written to the log's embedding cache) cluster by topic,
so text routers can learn the topic effect. Nothing here is a measurement.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sale_graph.bench.routers import EmbeddingStore, default_cache_path
from sale_graph.bench.tasks import BIN_LABELS, split_of

QWEN_POOL = (("qwen3-4b", 0.05), ("qwen3-8b", 0.09), ("qwen3-14b", 0.16), ("qwen3-32b", 0.36))


def synthetic_records(n_tasks: int = 753, agents: tuple[tuple[str, float], ...] = QWEN_POOL, seed: int = 0,
                      missing_vote_rate: float = 0.05) -> tuple[list[dict[str, Any]], np.ndarray]:
    """``n_tasks`` records over ``agents`` (name, price) and their task embeddings (unit vectors, 32 dims)."""
    rng = np.random.default_rng(seed)
    n = len(agents)
    skill = np.linspace(0.25, 0.85, n)
    n_topics = 12
    topic_vec = rng.normal(size=(n_topics, 32))
    topic_shift = rng.normal(0, 0.15, n_topics)
    records, vectors = [], []
    for t in range(n_tasks):
        domain = "search" if t % 3 else "coding"
        b = int(rng.integers(0, 5)) if domain == "search" else int(rng.integers(1, 5))
        topic = int(rng.integers(0, n_topics))
        diff = b / 4.0 * 0.9 + topic_shift[topic] + rng.normal(0, 0.1)
        p = 1 / (1 + np.exp(-6 * (skill - diff)))
        passed = rng.random(n) < p
        quality = np.clip(p + rng.normal(0, 0.15, n), 0, 1)
        tid = f"syn-{t:04d}"
        bids, jury, execs = [], [], []
        for i, (name, price) in enumerate(agents):
            tokens = int(np.clip(60 + 80 * diff + 15 * i + rng.normal(0, 15), 10, 400))
            inp = 120
            ok = rng.random() > 0.01
            bids.append({"agent": name, "round": "original", "strategy": f"plan {t}/{i}" if ok else "",
                         "tokens": tokens if ok else 0, "entropy": float(np.clip(0.4 + 0.4 * quality[i] + rng.normal(0, 0.05), 0, 1)),
                         "entropy_source": "logprobs", "status": "ok" if ok else "error", "seconds": 0.2 + tokens / 200,
                         "input_tokens": inp, "output_tokens": tokens if ok else 0,
                         "cost_usd": (inp + (tokens if ok else 0)) * price / 1e6, **({} if ok else {"error": "synthetic failure"})})
            ex_tokens = int(6000 + 30000 * max(diff, 0.05) * (1.5 if not passed[i] else 1.0) + rng.normal(0, 500))
            ex_tokens = max(50, ex_tokens)
            execs.append({"agent": name, "answer": "x", "status": "completed", "detail": "", "steps": 2, "tool_calls": 1,
                          "seconds": ex_tokens / 100, "input_tokens": ex_tokens // 2, "output_tokens": ex_tokens - ex_tokens // 2,
                          "cost_usd": ex_tokens * price / 1e6, "passed": bool(passed[i]), "grade": {"detail": "synthetic"}})
        for i, (bidder, _) in enumerate(agents):
            if bids[i]["status"] != "ok":
                continue
            for j, (judge, jprice) in enumerate(agents):
                noise = rng.normal(0, 0.25 - 0.04 * j)
                missing = rng.random() < missing_vote_rate
                likert = float(np.clip(np.round(5 * (quality[i] + noise)), 0, 5))
                jury.append({"judge": judge, "bidder": bidder, "round": "original",
                             "likert": None if missing else likert, "gamma": None if missing else likert / 5,
                             "status": "missing" if missing else "ok", "reason": "no SCORE line" if missing else "ok",
                             "raw": "", "input_tokens": 200, "output_tokens": 4, "cost_usd": 204 * jprice / 1e6, "seconds": 0.1})
        records.append({
            "schema": 1,
            "task": {"id": tid, "domain": domain, "text": f"{domain} task about topic{topic} words{topic} item {t}",
                     "bin": b, "bin_source": "proxy:synthetic", "source": "synthetic", "split": split_of(tid),
                     **({"gold": ["x"]} if domain == "search" else {"tests": "assert True", "entry_point": "f"})},
            "agents": [{"name": a, "model": a, "price_input": pr, "price_output": pr} for a, pr in agents],
            "bids": bids, "jury": jury, "executions": execs, "settings": {}, "recorded_at": "synthetic",
            "wall_seconds": 0.0,
        })
        vec = topic_vec[topic] + rng.normal(0, 0.3, 32)
        vectors.append(vec / np.linalg.norm(vec))
    return records, np.array(vectors, dtype=np.float32)


def write_synthetic_log(path: str | Path, n_tasks: int = 753, seed: int = 0, **kwargs: Any) -> Path:
    """Write a synthetic log and its embedding cache (next to it, as the report expects)."""
    records, vectors = synthetic_records(n_tasks, seed=seed, **kwargs)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
    store = EmbeddingStore(default_cache_path(p))
    store.put([r["task"]["id"] for r in records], [r["task"]["text"] for r in records], vectors)
    store.save()
    return p


__all__ = ["BIN_LABELS", "QWEN_POOL", "synthetic_records", "write_synthetic_log"]
