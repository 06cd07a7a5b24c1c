"""The corpus index: :class:`LocalCorpus`, documents indexed for dense, keyword and hybrid search.

Chunks are indexed twice:

* **dense**: e5-small embeddings (the project's offline embedder) in a Chroma
  ``PersistentClient`` collection under ``data_path("corpus", <name>)``;
* **keyword**: Okapi BM25 (:mod:`sale_graph.tools.corpus.bm25`) over the same chunks.

Hybrid search fuses both rankings by reciprocal rank fusion (RRF). Results are
per document (its best chunk), like a web search engine returns pages.

Embedding is the slow part (about 60 ms per chunk on 2 cores), so the index is
built once and reused: a manifest records a fingerprint of the source (size,
mtime and SHA-256) and the chunking/embedder settings; the index is rebuilt only
when they change, and a rebuild re-embeds only chunks whose text changed. A file
lock keeps two processes from building the same index at once.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sale_graph.storage.paths import data_path
from sale_graph.storage.text_embedder import default_embeddings
from sale_graph.tools.corpus.bm25 import BM25Index, reciprocal_rank_fusion, tokenize
from sale_graph.tools.corpus.documents import (
    JSONL_SUFFIXES,
    BuildReport,
    Chunk,
    CorpusDocument,
    CorpusHit,
    chunk_documents,
    chunk_text,
    load_documents,
)
from sale_graph.tools.corpus.errors import CorpusError
from sale_graph.tools.corpus.fingerprint import source_fingerprint
from sale_graph.tools.corpus.progress import ProgressFn, StderrProgress
from sale_graph.tools.corpus.store import (
    INDEX_FORMAT,
    chroma_client,
    delete_chunks,
    existing_digests,
    file_lock,
    open_collection,
    open_compatible_collection,
    read_manifest,
    write_manifest,
)

__all__ = ["SEARCH_MODES", "LocalCorpus"]

SEARCH_MODES = ("hybrid", "dense", "keyword")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def _default_name(path: Path) -> str:
    """Index name for a source: its stem plus a short hash of its absolute path (two sources never collide)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem).strip("-.") or "corpus"
    digest = hashlib.sha1(str(path.resolve()).encode("utf-8")).hexdigest()[:8]
    return f"{stem[:40]}-{digest}"


@dataclass
class _Loaded:
    """The documents and chunks of a corpus in memory, with the BM25 index and lookup tables."""

    docs: list[CorpusDocument]
    chunks: list[Chunk]
    bm25: BM25Index
    by_id: dict[str, CorpusDocument] = field(default_factory=dict)
    by_url: dict[str, CorpusDocument] = field(default_factory=dict)
    by_chunk: dict[str, Chunk] = field(default_factory=dict)


class LocalCorpus:
    """A document collection searchable by dense, keyword (BM25) and hybrid (RRF) retrieval.

    Construction is cheap and validates the source; :meth:`ensure_index` (run
    on the first search) builds or reuses the index. The index lives under
    ``data_path("corpus", name)``: a Chroma database and a ``manifest.json``.

    Args:
        source: A folder of ``.txt``/``.md`` files or a ``.jsonl`` file.
        name: Index name under the data dir (default: the source's stem and a
            short hash of its path).
        embeddings: LangChain embeddings for chunks and queries (default: the
            offline e5-small embedder).
        chunk_chars: Largest chunk size in characters.
        overlap_chars: Overlap between consecutive chunks in characters.
        batch_size: Chunks embedded per call.
        progress: ``True`` prints indexing progress to stderr, ``False``/``None``
            is silent, a callable gets ``(done, total)``.

    Raises:
        CorpusError: The source, name or settings are invalid.
    """

    def __init__(
        self,
        source: str | os.PathLike[str],
        name: str | None = None,
        *,
        embeddings: Any | None = None,
        chunk_chars: int = 1000,
        overlap_chars: int = 150,
        batch_size: int = 64,
        progress: ProgressFn | bool | None = True,
    ) -> None:
        self.source = Path(source).expanduser().resolve()
        if not self.source.exists():
            raise CorpusError(f"corpus source {self.source} does not exist; give a folder of .txt/.md files or a .jsonl file")
        if not (self.source.is_dir() or self.source.suffix.lower() in JSONL_SUFFIXES):
            raise CorpusError(f"corpus source {self.source} has an unsupported type {self.source.suffix!r}; give a folder or a .jsonl file")
        self.name = name or _default_name(self.source)
        if not _NAME_RE.match(self.name):
            raise CorpusError(f"corpus name {self.name!r} must be 1-100 letters, digits, '_', '-' or '.', starting with a letter or digit")
        if batch_size < 1:
            raise CorpusError(f"batch_size must be >= 1, got {batch_size}")
        chunk_text("x" * 60, chunk_chars, overlap_chars)  # validates the chunk settings early
        self.chunk_chars = chunk_chars
        self.overlap_chars = overlap_chars
        self.batch_size = batch_size
        self._progress = progress
        self._embeddings = embeddings
        self._loaded: _Loaded | None = None
        self._collection: Any = None  # the Chroma collection, once opened
        self.last_build: BuildReport | None = None
        # Tool calls may run in parallel threads (LangGraph's ToolNode): one thread builds or loads,
        # and calls into the embedding engine are serialised.
        self._build_lock = threading.RLock()
        self._embed_lock = threading.Lock()

    # -- locations and settings

    @property
    def index_dir(self) -> Path:
        """Folder holding this corpus's Chroma database and manifest."""
        path = data_path("corpus", self.name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def embeddings(self) -> Any:
        """The LangChain embeddings used for chunks and queries (default: offline e5-small)."""
        if self._embeddings is None:
            self._embeddings = default_embeddings()
        return self._embeddings

    def _embedder_id(self) -> str:
        """Module, class and model of the embedder: vectors from different embedders never mix."""
        emb = self.embeddings
        return f"{type(emb).__module__}.{type(emb).__qualname__}:{getattr(emb, 'model_name', '')}"

    def _settings(self) -> dict[str, Any]:
        """The settings an index was built with; any change rebuilds it."""
        return {
            "format": INDEX_FORMAT,
            "source": str(self.source),
            "embedder": self._embedder_id(),
            "chunk_chars": self.chunk_chars,
            "overlap_chars": self.overlap_chars,
        }

    def _manifest_path(self) -> Path:
        """Path of the build manifest."""
        return self.index_dir / "manifest.json"

    def _read_manifest(self) -> dict[str, Any] | None:
        """The last build manifest (see :func:`~sale_graph.tools.corpus.store.read_manifest`)."""
        return read_manifest(self._manifest_path())

    def _client(self) -> Any:
        """A Chroma client on this corpus's database."""
        return chroma_client(self.index_dir)

    def _open_collection(self, client: Any) -> Any:
        """The chunk collection for this corpus's embedder."""
        return open_collection(client, self.embeddings, self._embedder_id())

    # -- building

    def _load(self) -> _Loaded:
        """Load and chunk the documents and build the BM25 index (no embedding)."""
        docs = load_documents(self.source, self.name)
        chunks = chunk_documents(docs, self.chunk_chars, self.overlap_chars)
        bm25 = BM25Index([tokenize(f"{c.title}\n{c.text}") for c in chunks])
        return _Loaded(
            docs=docs,
            chunks=chunks,
            bm25=bm25,
            by_id={d.id: d for d in docs},
            by_url={d.url: d for d in docs},
            by_chunk={c.id: c for c in chunks},
        )

    def _progress_fn(self) -> ProgressFn | None:
        """The progress callback for a build, from the ``progress`` setting."""
        progress = self._progress
        if progress is True:
            return StderrProgress(f"indexing corpus {self.name!r}")
        if progress in (False, None) or isinstance(progress, bool):
            return None
        return progress

    def ensure_index(self, force: bool = False) -> BuildReport:
        """Build the index if the source or the settings changed since the last build, else reuse it.

        A rebuild embeds only chunks whose text is new or changed and deletes
        chunks that disappeared.

        Args:
            force: Re-embed everything.

        Returns:
            A :class:`BuildReport` (also kept in ``last_build``) saying whether
            it rebuilt and why.
        """
        with self._build_lock, file_lock(self.index_dir / "index.lock"):
            report = self._ensure_index_locked(force)
        self.last_build = report
        return report

    def _ensure_index_locked(self, force: bool) -> BuildReport:
        """:meth:`ensure_index` under the locks: reuse the index when it is up to date, else build."""
        start = time.perf_counter()
        settings = self._settings()
        manifest = self._read_manifest()
        client = self._client()
        reason = self._rebuild_reason(manifest, settings, force)
        if not reason:
            collection = self._open_collection(client)
            expected = (manifest or {}).get("n_chunks")
            if collection.count() != expected:
                reason = f"index holds {collection.count()} chunks, manifest says {expected}"
            else:
                return self._reuse(collection, start)
        return self._build(client, settings, reason, start, full=force)

    def _rebuild_reason(self, manifest: dict[str, Any] | None, settings: dict[str, Any], force: bool) -> str:
        """Why the index must be rebuilt, or ``""`` if manifest, settings and source agree.

        A source that was touched but has identical content is not a reason:
        its new fingerprint is written to the manifest instead.
        """
        if force:
            return "forced"
        if manifest is None:
            return "no index yet"
        if manifest.get("corrupt"):
            return "manifest unreadable"
        if manifest.get("settings") != settings:
            changed = sorted(k for k in settings if (manifest.get("settings") or {}).get(k) != settings[k])
            return f"settings changed: {', '.join(changed)}"
        quick = source_fingerprint(self.source, with_hash=False)
        stored = dict(manifest.get("fingerprint", {}))
        stored_sha = stored.pop("sha256", None)
        if stored != quick:
            fp = source_fingerprint(self.source)
            if fp.get("sha256") != stored_sha:
                return "source content changed"
            manifest["fingerprint"] = fp  # touched but identical: remember the new mtime
            write_manifest(self._manifest_path(), manifest)
        return ""

    def _reuse(self, collection: Any, start: float) -> BuildReport:
        """Adopt an up-to-date index (loading the documents if needed) and report that nothing was embedded."""
        self._collection = collection
        if self._loaded is None:
            self._loaded = self._load()
        return BuildReport(
            rebuilt=False,
            reason="up to date",
            n_documents=len(self._loaded.docs),
            n_chunks=len(self._loaded.chunks),
            reused=len(self._loaded.chunks),
            seconds=time.perf_counter() - start,
        )

    def _build(self, client: Any, settings: dict[str, Any], reason: str, start: float, full: bool) -> BuildReport:
        """Embed new or changed chunks, delete vanished ones, write the manifest and report."""
        fingerprint = source_fingerprint(self.source)
        loaded = self._load()
        collection, recreated = open_compatible_collection(client, self.embeddings, self._embedder_id(), force=full)
        if recreated and reason in ("no index yet", "manifest unreadable"):
            reason += " (an index from another embedder was dropped)"
        existing = existing_digests(collection)
        wanted = {c.id: c for c in loaded.chunks}
        stale = [cid for cid in existing if cid not in wanted]
        todo = [c for c in loaded.chunks if existing.get(c.id) != c.digest]
        delete_chunks(collection, stale)
        self._embed_chunks(collection, todo)
        seconds = time.perf_counter() - start
        write_manifest(
            self._manifest_path(),
            {
                "settings": settings,
                "fingerprint": fingerprint,
                "n_documents": len(loaded.docs),
                "n_chunks": len(loaded.chunks),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "build_seconds": round(seconds, 2),
                "embedded": len(todo),
            },
        )
        self._collection = collection
        self._loaded = loaded
        return BuildReport(
            rebuilt=True,
            reason=reason,
            n_documents=len(loaded.docs),
            n_chunks=len(loaded.chunks),
            embedded=len(todo),
            reused=len(loaded.chunks) - len(todo),
            removed=len(stale),
            seconds=seconds,
        )

    def _embed_chunks(self, collection: Any, todo: list[Chunk]) -> None:
        """Embed ``todo`` in batches and upsert them with their metadata, reporting progress."""
        progress = self._progress_fn() if todo else None
        for i in range(0, len(todo), self.batch_size):
            batch = todo[i : i + self.batch_size]
            with self._embed_lock:
                vectors = self.embeddings.embed_documents([f"{c.title}\n{c.text}" for c in batch])
            collection.upsert(
                ids=[c.id for c in batch],
                embeddings=[np.asarray(v, dtype=np.float32) for v in vectors],
                documents=[c.text for c in batch],
                metadatas=[{"doc_id": c.doc_id, "index": c.index, "title": c.title, "url": c.url, "digest": c.digest} for c in batch],
            )
            if progress is not None:
                progress(min(i + len(batch), len(todo)), len(todo))

    def _ready(self) -> _Loaded:
        """The loaded corpus, building or reusing the index first if needed."""
        with self._build_lock:
            if self._loaded is None or self._collection is None:
                self.ensure_index()
        assert self._loaded is not None
        return self._loaded

    # -- search

    def dense_ranking(self, query: str, depth: int) -> list[str]:
        """Chunk ids nearest to the query embedding (cosine), best first.

        Args:
            query: The query text.
            depth: How many chunk ids at most.

        Returns:
            Chunk ids, best first.
        """
        loaded = self._ready()
        n = min(depth, len(loaded.chunks))
        if n <= 0:
            return []
        with self._embed_lock:
            qvec = np.asarray(self.embeddings.embed_query(query), dtype=np.float32)
        res = self._collection.query(query_embeddings=[qvec], n_results=n, include=["distances"])
        return list(res["ids"][0])

    def keyword_ranking(self, query: str, depth: int) -> list[str]:
        """Chunk ids with the best BM25 scores for the query, best first.

        Args:
            query: The query text.
            depth: How many chunk ids at most.

        Returns:
            Chunk ids with a positive score, best first.
        """
        loaded = self._ready()
        return [loaded.chunks[i].id for i, _ in loaded.bm25.top_k(tokenize(query), depth)]

    def search(self, query: str, k: int = 5, mode: str = "hybrid") -> list[CorpusHit]:
        """The ``k`` best documents for ``query`` (one hit per document, its best chunk), best first.

        Args:
            query: The query text.
            k: How many documents at most.
            mode: ``"hybrid"`` (RRF of dense and BM25, the default), ``"dense"``
                or ``"keyword"``.

        Returns:
            Hits, best first. Scores are RRF scores for hybrid, ``1/(60+rank)``
            otherwise, so they only order results.

        Raises:
            CorpusError: The query is empty, the mode unknown or ``k < 1``.
        """
        if not isinstance(query, str) or not query.strip():
            raise CorpusError(f"search query must be a non-empty string, got {query!r}")
        if mode not in SEARCH_MODES:
            raise CorpusError(f"search mode {mode!r} is unknown; use one of {', '.join(SEARCH_MODES)}")
        if k < 1:
            raise CorpusError(f"number of results k must be >= 1, got {k}")
        loaded = self._ready()
        # Several chunks of one document may rank high: look deep enough to fill k distinct documents.
        depth = max(20, 4 * k)
        rankings = []
        if mode in ("hybrid", "dense"):
            rankings.append(self.dense_ranking(query, depth))
        if mode in ("hybrid", "keyword"):
            rankings.append(self.keyword_ranking(query, depth))
        hits: list[CorpusHit] = []
        seen_docs: set[str] = set()
        for chunk_id, score in reciprocal_rank_fusion(rankings):
            chunk = loaded.by_chunk.get(str(chunk_id))
            if chunk is None or chunk.doc_id in seen_docs:
                continue
            seen_docs.add(chunk.doc_id)
            hits.append(
                CorpusHit(doc_id=chunk.doc_id, title=chunk.title, url=chunk.url, text=chunk.text, chunk_index=chunk.index, score=score)
            )
            if len(hits) == k:
                break
        return hits

    def get_document(self, key: str) -> CorpusDocument | None:
        """The document with this URL or id, or None: lets ``fetch_page`` serve corpus pages offline.

        Args:
            key: A document URL or id.

        Returns:
            The document, or None.
        """
        with self._build_lock:
            if self._loaded is None:
                self._loaded = self._load()
            loaded = self._loaded
        return loaded.by_url.get(key) or loaded.by_id.get(key)

    @property
    def documents(self) -> list[CorpusDocument]:
        """All documents of the corpus (loads the source, does not build the index)."""
        with self._build_lock:
            if self._loaded is None:
                self._loaded = self._load()
            return list(self._loaded.docs)

    def info(self) -> dict[str, Any]:
        """Name, source, location and the last build manifest, for logs and reports."""
        return {"name": self.name, "source": str(self.source), "index_dir": str(self.index_dir), "manifest": self._read_manifest()}
