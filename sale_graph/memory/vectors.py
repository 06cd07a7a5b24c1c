"""Task-text vectors for the auction memory, through a small cache.

An auction is recorded several times (as soon as bids exist, then after each
phase) and its task text is searched with right before: the cache keeps the
last 512 texts' vectors so each is embedded once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from sale_graph.memory.errors import MemoryStoreError

CACHE_SIZE = 512


class TaskVectors:
    """Embeds task texts with a Chroma embedding function, keeping the latest vectors.

    Args:
        embedding_function: the Chroma embedding function (called with a list of texts).
        embedder: its name, for messages.
    """

    def __init__(self, embedding_function: Any, embedder: str) -> None:
        self._ef = embedding_function
        self._embedder = embedder
        self._cache: OrderedDict[str, list[float]] = OrderedDict()

    def documents(self, texts: Sequence[str]) -> list[list[float]]:
        """The vectors of ``texts``, embedding only those not cached.

        Args:
            texts: the texts (repeats are embedded once).

        Returns:
            One float32-rounded vector per text, in order.

        Raises:
            MemoryStoreError: the embedding function returned the wrong number of vectors.
        """
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vectors = self._ef(list(missing))
            if len(vectors) != len(missing):
                raise MemoryStoreError(f"embedder {self._embedder!r} returned {len(vectors)} vectors for {len(missing)} texts")
            for text, vec in zip(missing, vectors, strict=True):
                self._cache[text] = np.asarray(vec, dtype=np.float32).tolist()
                self._cache.move_to_end(text)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return [self._cache[t] for t in texts]

    def query(self, text: str) -> list[float]:
        """The vector to search the stored tasks with for ``text``."""
        # Task texts are compared with task texts: the query goes through the
        # same (document) side as the stored tasks, so an asymmetric embedder
        # does not shift it; the default e5 embedder is symmetric anyway.
        return self.documents([text])[0]

    def many(self, texts: Sequence[str], batch: int = 64) -> list[list[float]]:
        """The vectors of many texts, embedded ``batch`` at a time."""
        out: list[list[float]] = []
        for start in range(0, len(texts), batch):
            out.extend(self.documents(texts[start : start + batch]))
        return out

    def clear(self) -> None:
        """Forget every cached vector."""
        self._cache.clear()
