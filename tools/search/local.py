"""The ``local`` search backend (the default): offline hybrid search over a local corpus."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from sale_graph.tools.corpus import (
    SEARCH_MODES,
    WIKI_CORPUS_NAME,
    WORLD_CORPUS_NAME,
    BuildReport,
    CorpusDocument,
    LocalCorpus,
    wiki_corpus_path,
    world_corpus_path,
)
from sale_graph.tools.search.base import SearchConfigError, SearchResult, check_query

__all__ = ["NAMED_CORPORA", "LocalCorpusBackend"]

#: Corpora known by name (the ``corpus`` option): what each holds.
NAMED_CORPORA: dict[str, str] = {
    "world": "countries of the world (capitals, populations, areas, neighbours), ships with the package (MIT data)",
    "wiki": "about 10k English Wikipedia lead summaries, optional extra 'wiki' (GPL-3.0 data)",
}


class LocalCorpusBackend:
    """Offline search over a local corpus (hybrid dense + BM25 by default).

    ``source`` is a folder of .txt/.md files or a JSONL file, or one of the
    named corpora of :data:`NAMED_CORPORA`: ``"world"`` (countries of the world,
    shipped with the package) or ``"wiki"`` (offline Wikipedia summaries,
    optional extra ``wiki``). Without one, ``"wiki"``. The index is built on
    the first search (or by :meth:`prepare`) and reused afterwards.

    Args:
        source: The corpus source: a path, ``"world"`` or ``"wiki"`` (default: ``"wiki"``).
        name: Index name under the data dir.
        mode: ``hybrid``, ``dense`` or ``keyword``.
        embeddings: LangChain embeddings (default: the offline e5-small embedder).
        chunk_chars: Largest chunk size in characters.
        overlap_chars: Overlap between chunks in characters.
        progress: Show indexing progress on stderr (or a ``(done, total)`` callback).

    Raises:
        SearchConfigError: The mode is unknown.
        MissingExtraError: No source is given and the ``wiki`` extra is not installed.
        CorpusError: The source or the chunk settings are invalid.
    """

    name = "local"
    OPTIONS: ClassVar[dict[str, str]] = {
        "path": "folder of .txt/.md files or a .jsonl file (default: the corpus named by 'corpus')",
        "corpus": "a named corpus when no path is given: 'world' (countries, ships with the package) or 'wiki' "
                  "(offline Wikipedia summaries, extra 'wiki'; the default)",
        "name": "index name under the data dir",
        "mode": "hybrid | dense | keyword",
        "chunk_chars": "maximum chunk size in characters",
        "overlap_chars": "overlap between chunks in characters",
        "progress": "show indexing progress on stderr (true/false)",
    }

    def __init__(
        self,
        source: str | os.PathLike[str] | None = None,
        *,
        name: str | None = None,
        mode: str = "hybrid",
        embeddings: Any | None = None,
        chunk_chars: int = 1000,
        overlap_chars: int = 150,
        progress: Any = True,
    ) -> None:
        if mode not in SEARCH_MODES:
            raise SearchConfigError(f"local search: mode {mode!r} is unknown; use one of {', '.join(SEARCH_MODES)}")
        if source is None or isinstance(source, str) and source in NAMED_CORPORA:
            corpus_name = source or "wiki"
            source = wiki_corpus_path() if corpus_name == "wiki" else world_corpus_path()
            name = name or (WIKI_CORPUS_NAME if corpus_name == "wiki" else WORLD_CORPUS_NAME)
        self.mode = mode
        self.corpus = LocalCorpus(
            source, name=name, embeddings=embeddings, chunk_chars=chunk_chars, overlap_chars=overlap_chars, progress=progress
        )

    @classmethod
    def from_config(cls, options: Mapping[str, Any]) -> LocalCorpusBackend:
        """Build the backend from the options of a ``{"backend": "local", ...}`` config.

        Args:
            options: Config keys from :attr:`OPTIONS` (``path`` becomes the source).

        Returns:
            The backend (the index is not built yet).

        Raises:
            SearchConfigError: An option has the wrong type.
        """
        options = dict(options)
        path = options.pop("path", None)
        corpus = options.pop("corpus", None)
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise SearchConfigError(f"search config: 'path' must be a file or folder path, got {path!r}")
        if corpus is not None and corpus not in NAMED_CORPORA:
            raise SearchConfigError(f"search config: 'corpus' must be one of {', '.join(map(repr, NAMED_CORPORA))}, got {corpus!r}")
        if corpus is not None and path is not None:
            raise SearchConfigError("search config: give 'path' (your own corpus) or 'corpus' (a named one), not both")
        for field in ("chunk_chars", "overlap_chars"):
            if field in options and (isinstance(options[field], bool) or not isinstance(options[field], int)):
                raise SearchConfigError(f"search config: {field!r} must be an integer, got {options[field]!r}")
        for field in ("name", "mode"):
            if field in options and not isinstance(options[field], str):
                raise SearchConfigError(f"search config: {field!r} must be a string, got {options[field]!r}")
        if "progress" in options and not isinstance(options["progress"], bool):
            raise SearchConfigError(f"search config: 'progress' must be true or false, got {options['progress']!r}")
        return cls(Path(path).expanduser() if path is not None else corpus, **options)

    def prepare(self) -> BuildReport:
        """Build or reuse the index now (otherwise the first search does); returns the build report."""
        return self.corpus.ensure_index()

    def search(self, query: str, max_results: int = 5) -> list[SearchResult]:
        """Search the corpus; each result is a document with its best-matching chunk as ``content``.

        Args:
            query: The query.
            max_results: How many documents at most (1 to 20).

        Returns:
            One result per document, best first.
        """
        check_query(self.name, query, max_results)
        return [SearchResult(title=h.title, url=h.url, content=h.text) for h in self.corpus.search(query, max_results, self.mode)]

    def get_document(self, url_or_id: str) -> CorpusDocument | None:
        """The corpus document with this URL or id, or None (lets ``fetch_page`` serve it offline)."""
        return self.corpus.get_document(url_or_id)

    def __repr__(self) -> str:
        return f"LocalCorpusBackend(source={str(self.corpus.source)!r}, name={self.corpus.name!r}, mode={self.mode!r})"
