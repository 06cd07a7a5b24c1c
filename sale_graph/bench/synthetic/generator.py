"""SYNTHETIC market logs in the exact record format of `sale bench record`, with a signal knob.

Nothing here is a measurement of real agents. The generator exists to check that
the harness can tell a market where SALE's inputs carry information from one
where they carry none: ``signal`` ``Q`` in [0, 1] sets how much the bids'
entropy and the jury scores say about each agent's own outcome.

The model, per task ``t`` and agent ``i`` (agents ``small``, ``medium``, ``large``,
``xlarge`` at the paper's prices, $0.05 / 0.09 / 0.16 / 0.36 per 1M tokens):

* a bin ``b_t`` (0-4), a topic, and a latent difficulty ``d_t = 0.2 b_t + topic shift + noise``;
* a chance to solve ``p_ti = sigmoid(7 (skill_i - d_t))`` with skills rising with price;
  the plan-following execution and the plain one are independent draws of that chance
  (a plan neither helps nor hurts here);
* execution tokens ``(3,000 + 25,000 d_t) x verbosity_i x lognormal noise``, 1.4x on a failure,
  smaller agents more verbose (1.3, 1.15, 1.0, 0.9): length varies by agent and task;
* the signal: with ``o_ti = +1`` if the plan-following execution passed and ``-1`` if not,
  ``q_ti = Q o_ti + sqrt(1 - Q^2) e_ti`` (``e`` standard normal, one draw for the entropy and one
  for the jury), so ``corr(q, o) = Q``. Bid entropy ``H = clip(0.6 + 0.12 q^H)``; judge ``j``'s
  Likert score ``round(2.5 + q^J + noise_j)`` clipped to 0-5, the larger judges less noisy.
  At ``Q = 0`` neither says anything about any agent's outcome; at ``Q = 1`` they say it up to
  the judges' own noise;
* the task text carries a noisy hint of the difficulty (``trivial`` ... ``very hard``) and its
  topic, and the synthetic task embeddings (the log's embedding cache) encode both, so text
  routers (kNN, MLP) are not blind by construction.

Every record carries ``synthetic: {"signal", "seed", "generator"}``; the report then says
SYNTHETIC in its title, summary and ``meta.synthetic``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sale_graph.bench.routers.text import EmbeddingStore, default_cache_path
from sale_graph.bench.tasks.schema import split_of

GENERATOR = "sale_graph.bench.synthetic v2"
SYNTHETIC_POOL: tuple[tuple[str, float], ...] = (("small", 0.05), ("medium", 0.09), ("large", 0.16), ("xlarge", 0.36))
SKILLS = (0.30, 0.45, 0.60, 0.78)
VERBOSITY = (1.3, 1.15, 1.0, 0.9)
HINTS = ("trivial", "easy", "moderate", "hard", "very hard")
N_TOPICS = 12
DIM = 32


def _skills(n: int) -> np.ndarray:
    return np.array(SKILLS) if n == len(SKILLS) else np.linspace(SKILLS[0], SKILLS[-1], n)


def _verbosity(n: int) -> np.ndarray:
    return np.array(VERBOSITY) if n == len(VERBOSITY) else np.linspace(VERBOSITY[0], VERBOSITY[-1], n)


def _signal(outcome: np.ndarray, signal: float, rng: np.random.Generator) -> np.ndarray:
    """``Q o + sqrt(1 - Q^2) e``: correlation ``Q`` with the +-1 outcome ``o``."""
    return signal * (2.0 * outcome - 1.0) + np.sqrt(max(0.0, 1.0 - signal**2)) * rng.normal(size=outcome.shape)


def _execution(name: str, price: float, passed: bool, tokens: int, plain: bool) -> dict[str, Any]:
    return {"agent": name, "answer": "x", "status": "completed", "detail": "", "steps": 2, "tool_calls": 1,
            "seconds": round(tokens / 400, 3), "input_tokens": tokens // 2, "output_tokens": tokens - tokens // 2,
            "cost_usd": tokens * price / 1e6, "passed": bool(passed), "grade": {"detail": "synthetic"},
            "mode": "plain" if plain else "plan", "strategy_used": not plain}


def _bid(name: str, price: float, t: int, tokens: int, entropy: float, ok: bool) -> dict[str, Any]:
    inp = 120
    out = tokens if ok else 0
    return {"agent": name, "round": "original", "strategy": f"plan {t}/{name}" if ok else "", "tokens": out,
            "output_tokens": out, "entropy": entropy, "entropy_source": "logprobs", "entropy_text": entropy,
            "status": "ok" if ok else "error", "seconds": round(0.2 + tokens / 200, 3), "input_tokens": inp,
            "cost_usd": (inp + out) * price / 1e6, **({} if ok else {"error": "synthetic failure"})}


def _jury(agents: tuple[tuple[str, float], ...], bids: list[dict[str, Any]], q_jury: np.ndarray,
          rng: np.random.Generator, missing_vote_rate: float) -> list[dict[str, Any]]:
    n = len(agents)
    judge_noise = np.linspace(0.8, 0.35, n)
    votes = []
    for i, (bidder, _) in enumerate(agents):
        if bids[i]["status"] != "ok":
            continue
        for j, (judge, jprice) in enumerate(agents):
            missing = rng.random() < missing_vote_rate
            likert = float(np.clip(np.round(2.5 + q_jury[i] + rng.normal(0, judge_noise[j])), 0, 5))
            votes.append({"judge": judge, "bidder": bidder, "round": "original", "likert": None if missing else likert,
                          "gamma": None if missing else likert / 5, "status": "missing" if missing else "ok",
                          "reason": "no SCORE line" if missing else "ok", "raw": "", "input_tokens": 200,
                          "output_tokens": 4, "cost_usd": 204 * jprice / 1e6, "seconds": 0.1})
    return votes


def _task(t: int, b: int, topic: int, hint: int, split_dev: float) -> dict[str, Any]:
    domain = "coding" if t % 3 == 0 else "search"
    tid = f"syn-{t:04d}"
    text = f"SYNTHETIC {domain} task, {HINTS[hint]}, about topic{topic} (words{topic}), item {t}"
    return {"id": tid, "domain": domain, "text": text, "bin": b, "bin_source": "proxy:synthetic",
            "source": f"synthetic {domain}", "split": split_of(tid, split_dev),
            **({"gold": ["x"]} if domain == "search" else {"tests": "assert True", "entry_point": "f"})}


def synthetic_records(n_tasks: int = 753, agents: tuple[tuple[str, float], ...] = SYNTHETIC_POOL, seed: int = 0,
                      missing_vote_rate: float = 0.05, signal: float = 0.5, plain: bool = True,
                      dev_fraction: float = 0.3) -> tuple[list[dict[str, Any]], np.ndarray]:
    """``n_tasks`` SYNTHETIC records over ``agents`` (name, price) and their task embeddings (unit vectors).

    See the module docstring for the model; ``signal`` is ``Q`` in [0, 1]; ``plain`` adds
    each agent's execution without a plan (``plain_executions``), as `sale bench record` does.
    """
    if not 0.0 <= signal <= 1.0:
        raise ValueError(f"signal must be within [0, 1], got {signal!r}")
    rng = np.random.default_rng(seed)
    n = len(agents)
    skill, verbosity = _skills(n), _verbosity(n)
    topic_vec = rng.normal(size=(N_TOPICS, DIM))
    hint_vec = rng.normal(size=DIM)
    topic_shift = rng.normal(0, 0.12, N_TOPICS)
    meta = {"signal": float(signal), "seed": int(seed), "generator": GENERATOR}
    pool = [{"name": a, "model": a, "price_input": pr, "price_output": pr} for a, pr in agents]
    records, vectors = [], []
    for t in range(n_tasks):
        b, topic = int(rng.integers(0, 5)), int(rng.integers(0, N_TOPICS))
        diff = 0.2 * b + topic_shift[topic] + rng.normal(0, 0.08)
        hint = int(np.clip(np.round(4 * (diff + rng.normal(0, 0.15))), 0, 4))
        p = 1 / (1 + np.exp(-7 * (skill - diff)))
        passed, passed_plain = rng.random(n) < p, rng.random(n) < p
        q_h, q_j = _signal(passed, signal, rng), _signal(passed, signal, rng)
        bid_len = np.clip(60 + 60 * diff + rng.normal(0, 12, n), 10, 400).astype(int)
        bid_ok = rng.random(n) > 0.01
        bids = [_bid(a, pr, t, int(bid_len[i]), float(np.clip(0.6 + 0.12 * q_h[i], 0, 1)), bool(bid_ok[i]))
                for i, (a, pr) in enumerate(agents)]
        base = 3000 + 25000 * max(diff, 0.02)

        def tokens(ok: np.ndarray, base: float = base) -> np.ndarray:
            return np.maximum(50, base * verbosity * rng.lognormal(0, 0.3, n) * np.where(ok, 1.0, 1.4)).astype(int)

        ex_tok, plain_tok = tokens(passed), tokens(passed_plain)
        rec: dict[str, Any] = {
            "schema": 1, "kind": "market", "synthetic": meta, "task": _task(t, b, topic, hint, dev_fraction),
            "agents": pool, "bids": bids, "jury": _jury(agents, bids, q_j, rng, missing_vote_rate),
            "executions": [_execution(a, pr, passed[i], int(ex_tok[i]), False) for i, (a, pr) in enumerate(agents)],
            "settings": {}, "recorded_at": "synthetic", "wall_seconds": 0.0,
        }
        if plain:
            rec["plain_executions"] = [_execution(a, pr, passed_plain[i], int(plain_tok[i]), True)
                                       for i, (a, pr) in enumerate(agents)]
        records.append(rec)
        vec = topic_vec[topic] + 0.8 * (hint - 2) * hint_vec / np.sqrt(DIM) * 3 + rng.normal(0, 0.3, DIM)
        vectors.append(vec / np.linalg.norm(vec))
    return records, np.array(vectors, dtype=np.float32)


def write_synthetic_log(path: str | Path, n_tasks: int = 753, seed: int = 0, **kwargs: Any) -> Path:
    """Write a SYNTHETIC log and its embedding cache (next to it, as the report expects); see :func:`synthetic_records`."""
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


__all__ = ["GENERATOR", "SYNTHETIC_POOL", "synthetic_records", "write_synthetic_log"]
