"""Keyword search: tokenising, light stemming, Okapi BM25 and reciprocal rank fusion.

BM25 is implemented here with numpy over the corpus chunks. Hybrid search
fuses the dense and keyword rankings by reciprocal rank fusion (RRF), which
needs no score calibration between the two.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np

__all__ = ["tokenize", "BM25Index", "reciprocal_rank_fusion"]

# Function words that carry no topic; kept short so that entity names are never dropped.
_STOPWORDS = frozenset(
    """a an and are as at be been by did do does for from had has have he her his how i in is it its
    of on or she that the their them there they this to was were what when where which who whom whose
    why will with you your""".split()
)
_TOKEN = re.compile(r"\w+", re.UNICODE)


def _stem(token: str) -> str:
    """A deliberately light English stemmer: plural and possessive endings only, so names survive."""
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def tokenize(text: str) -> list[str]:
    """Keyword tokens of a text: case-folded, possessives and accents removed, stop words dropped, plurals stemmed.

    Args:
        text: Any text (a query or a chunk).

    Returns:
        The tokens, in text order.
    """
    folded = unicodedata.normalize("NFKD", re.sub(r"['\u2019]s\b", "", text.casefold()))
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return [_stem(t) for t in _TOKEN.findall(folded) if t not in _STOPWORDS]


class BM25Index:
    """Okapi BM25 over pre-tokenised texts, with an inverted index held in numpy arrays.

    Scores use the non-negative idf ``log(1 + (N - df + 0.5) / (df + 0.5))``
    (as in Lucene), ``k1`` controlling term-frequency saturation and ``b``
    length normalisation.

    Args:
        tokenized: The token lists of the indexed texts (see :func:`tokenize`).
        k1: Term-frequency saturation, ``>= 0``.
        b: Length normalisation, in ``[0, 1]``.

    Raises:
        ValueError: ``k1`` or ``b`` is out of range.
    """

    def __init__(self, tokenized: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75) -> None:
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1 = k1
        self.b = b
        self.n_docs = len(tokenized)
        self.doc_len = np.array([len(t) for t in tokenized], dtype=np.float32)
        self.avg_len = float(self.doc_len.mean()) if self.n_docs and self.doc_len.sum() > 0 else 1.0
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for i, tokens in enumerate(tokenized):
            for term, tf in Counter(tokens).items():
                docs, tfs = postings.setdefault(term, ([], []))
                docs.append(i)
                tfs.append(tf)
        self._postings = {term: (np.asarray(d, dtype=np.int64), np.asarray(t, dtype=np.float32)) for term, (d, t) in postings.items()}
        self._norm = self.k1 * (1 - self.b + self.b * self.doc_len / self.avg_len)

    def idf(self, term: str) -> float:
        """Inverse document frequency of a term (0 for a term no document contains).

        Args:
            term: A token.

        Returns:
            The idf.
        """
        entry = self._postings.get(term)
        if entry is None:
            return 0.0
        df = len(entry[0])
        return math.log(1.0 + (self.n_docs - df + 0.5) / (df + 0.5))

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every indexed text for the query tokens (repeated query terms count again).

        Args:
            query_tokens: The tokens of the query.

        Returns:
            One float32 score per indexed text.
        """
        out = np.zeros(self.n_docs, dtype=np.float32)
        for term, qtf in Counter(query_tokens).items():
            entry = self._postings.get(term)
            if entry is None:
                continue
            docs, tfs = entry
            out[docs] += qtf * self.idf(term) * tfs * (self.k1 + 1) / (tfs + self._norm[docs])
        return out

    def top_k(self, query_tokens: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Indices and scores of the ``k`` best texts with a positive score, best first (ties: lower index).

        Args:
            query_tokens: The tokens of the query.
            k: How many texts at most.

        Returns:
            ``(index, score)`` pairs, best first.
        """
        if k <= 0 or self.n_docs == 0:
            return []
        s = self.scores(query_tokens)
        positive = np.flatnonzero(s > 0)
        if positive.size == 0:
            return []
        order = positive[np.lexsort((positive, -s[positive]))][:k]
        return [(int(i), float(s[i])) for i in order]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Hashable]], k: int = 60, weights: Sequence[float] | None = None
) -> list[tuple[Hashable, float]]:
    """Fuse ranked lists by reciprocal rank: ``score(x) = sum_r w_r / (k + rank_r(x))`` (ranks from 1).

    RRF needs no calibration between the lists' raw scores (cosine distances
    and BM25 are on unrelated scales), and ``k`` (60 in Cormack et al., 2009)
    damps the influence of the very top ranks. Items missing from a list get
    nothing from it. Ties keep the order of first appearance.

    Args:
        rankings: Ranked lists of items, best first.
        k: The rank offset, ``>= 0``.
        weights: One weight per list (default: all 1).

    Returns:
        ``(item, fused score)`` pairs, best first.

    Raises:
        ValueError: ``k`` is negative or the weights do not match the lists.
    """
    if k < 0:
        raise ValueError(f"RRF k must be >= 0, got {k}")
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"RRF got {len(weights)} weights for {len(rankings)} rankings")
    scores: dict[Hashable, float] = {}
    first_seen: dict[Hashable, int] = {}
    for ranking, w in zip(rankings, weights, strict=True):
        seen_here: set[Hashable] = set()
        for rank, item in enumerate(ranking, 1):
            if item in seen_here:
                continue  # a duplicate further down a list does not count twice
            seen_here.add(item)
            scores[item] = scores.get(item, 0.0) + w / (k + rank)
            first_seen.setdefault(item, len(first_seen))
    return sorted(scores.items(), key=lambda kv: (-kv[1], first_seen[kv[0]]))
