"""Corpus documents: the records, loading a folder or a JSONL file, and cutting texts into chunks.

A corpus comes from a folder of ``.txt`` / ``.md`` files or from a JSONL file
(one document per line); long documents are cut into overlapping chunks on
sentence boundaries, small enough to embed.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sale_graph.storage.jsonl import iter_jsonl
from sale_graph.tools.corpus.errors import CorpusError

__all__ = [
    "TEXT_SUFFIXES",
    "JSONL_SUFFIXES",
    "TEXT_FIELDS",
    "CorpusDocument",
    "Chunk",
    "CorpusHit",
    "BuildReport",
    "iter_text_files",
    "load_documents",
    "chunk_text",
    "chunk_documents",
]

TEXT_SUFFIXES = (".txt", ".md")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
TEXT_FIELDS = ("text", "content", "extract")


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
        return hashlib.sha1(f"{self.title}\n{self.text}".encode()).hexdigest()


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


def iter_text_files(folder: Path) -> list[Path]:
    """The ``.txt``/``.md`` files under ``folder`` (recursive, hidden files skipped), in a stable order.

    Args:
        folder: The corpus folder.

    Returns:
        The files, sorted by their path relative to ``folder``.
    """
    files = [
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def _load_folder(folder: Path, corpus_name: str) -> list[CorpusDocument]:
    """Documents from a folder of text files: id = relative path, URL = the file's ``file://`` URI."""
    docs = []
    for path in iter_text_files(folder):
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
                raise CorpusError(f"{path}:{lineno} has no non-empty text: give one of the fields {', '.join(TEXT_FIELDS)}")
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
    ``url`` and ``id`` are optional.

    Args:
        source: A folder of ``.txt``/``.md`` files or a ``.jsonl``/``.ndjson`` file.
        corpus_name: Name used in the ``corpus://<corpus_name>/<id>`` URL given to
            documents without a URL, so that ``fetch_page`` can serve them.

    Returns:
        The documents, in file or line order.

    Raises:
        CorpusError: The source is missing, of an unsupported type, empty, or has
            an invalid line (the message names the file and line).
    """
    path = Path(source).expanduser()
    if not path.exists():
        raise CorpusError(f"corpus source {path} does not exist; give a folder of .txt/.md files or a .jsonl file")
    if path.is_dir():
        return _load_folder(path, corpus_name)
    if path.suffix.lower() in JSONL_SUFFIXES:
        return _load_jsonl(path, corpus_name)
    raise CorpusError(f"corpus source {path} has an unsupported type {path.suffix!r}; give a folder of .txt/.md files or a .jsonl file")


# --------------------------------------------------------------------------- chunking

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)|\n\s*\n")


def _sentence_pieces(text: str, max_chars: int) -> list[str]:
    """The sentences of ``text``, whitespace collapsed; a sentence longer than ``max_chars`` is cut at word boundaries."""
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
    return pieces


def chunk_text(text: str, max_chars: int = 1000, overlap_chars: int = 150) -> list[str]:
    """Cut text into chunks of at most ``max_chars``, on sentence boundaries, overlapping by about ``overlap_chars``.

    Chunks keep embeddings focused (e5-small reads at most 512 tokens) and let a
    long page match a query on any of its parts. The overlap repeats the last
    sentence(s) of a chunk at the start of the next so that a fact spanning a
    boundary is not lost. Sentences longer than ``max_chars`` are cut at word
    boundaries.

    Args:
        text: The text to cut.
        max_chars: Largest chunk size in characters (at least 50).
        overlap_chars: Characters of trailing sentences repeated at the start of
            the next chunk, in ``[0, max_chars / 2)``.

    Returns:
        The chunks in text order (none for a blank text).

    Raises:
        CorpusError: The settings are out of range.
    """
    if max_chars < 50:
        raise CorpusError(f"chunk max_chars must be at least 50, got {max_chars}")
    if not 0 <= overlap_chars < max_chars // 2:
        raise CorpusError(f"chunk overlap_chars must be in [0, max_chars/2), got {overlap_chars} for max_chars={max_chars}")
    text = text.strip()
    if len(text) <= max_chars:
        return [text] if text else []
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for piece in _sentence_pieces(text, max_chars):
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


def chunk_documents(docs: Sequence[CorpusDocument], max_chars: int, overlap_chars: int) -> list[Chunk]:
    """Chunk every document with :func:`chunk_text`.

    Args:
        docs: The documents.
        max_chars: Largest chunk size in characters.
        overlap_chars: Overlap between consecutive chunks of a document.

    Returns:
        The chunks of all documents, in order; chunk ids are ``<doc id>::<n>``.
    """
    chunks = []
    for doc in docs:
        for i, piece in enumerate(chunk_text(doc.text, max_chars, overlap_chars)):
            chunks.append(Chunk(id=f"{doc.id}::{i}", doc_id=doc.id, index=i, title=doc.title, url=doc.url, text=piece))
    return chunks
