"""Shared pieces of the memory's unit tests: a toy embedder and record builders.

No model and no sockets: an in-process ``chromadb.EphemeralClient`` (see
``conftest.py``) and a tiny deterministic bag-of-words embedder stand in for
the real ones.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
from langchain_core.embeddings import Embeddings

from sale_graph.memory import SimilarTask, StrategyRecord


class BagOfWordsEmbeddings(Embeddings):
    """Deterministic toy embedder: hashed word counts, L2-normalised (texts sharing words are close)."""

    model_name = "test-bag-of-words-64"

    def _vec(self, text: str) -> list[float]:
        v = np.zeros(64)
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            v[int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
        n = np.linalg.norm(v)
        return (v / n if n else v).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)


def bid(agent: str, won: bool = False, round_: str = "original", value: float = 0.5, cost: float = 0.1, **kw) -> StrategyRecord:
    return StrategyRecord(
        agent=agent,
        strategy=f"{agent} plan ({round_})",
        cost=cost,
        entropy=0.4,
        value=value,
        round=round_,  # type: ignore[arg-type]
        jury_scores={"small": 3, "large": 4.5},
        won=won,
        **kw,
    )


def sim(aid: str, s: float) -> SimilarTask:
    return SimilarTask(aid, f"task {aid}", "", "search", s, "unknown", 0.0)
