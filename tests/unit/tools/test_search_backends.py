"""Search backends: the factory, config errors and response parsing (canned JSON, no network)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from sale_graph.tools.corpus import CorpusError, MissingExtraError
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
    with pytest.raises(SearchConfigError, match="api_key must be a string, got int") as err:
        make_search_backend({"backend": "tavily", "api_key": 12345})
    assert "12345" not in str(err.value)


def test_searxng_needs_a_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEARXNG_URL", raising=False)
    with pytest.raises(SearchConfigError, match="base_url.*SEARXNG_URL"):
        make_search_backend({"backend": "searxng"})
    with pytest.raises(SearchConfigError, match="http"):
        make_search_backend({"backend": "searxng", "base_url": "localhost:8888"})
    with pytest.raises(SearchConfigError, match="base_url must be an http"):
        make_search_backend({"backend": "searxng", "base_url": 8888})
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
    with pytest.raises(SearchConfigError, match="region must be a string"):
        make_search_backend({"backend": "duckduckgo", "region": ["us-en"]})
    with pytest.raises(ValueError, match="max_results must be an integer from 1 to 20"):
        backend.search("q", 0)


# --------------------------------------------------------------------------- response parsing (canned JSON)


def test_parse_tavily_response() -> None:
    data = {
        "query": "who invented the telephone",
        "answer": None,
        "results": [
            {
                "title": "Telephone - Wikipedia", "url": "https://en.wikipedia.org/wiki/Telephone", "content": "Bell was awarded...",
                "score": 0.98, "raw_content": None,
            },
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
            {
                "url": "https://en.wikipedia.org/wiki/Nile", "title": "Nile", "content": "The Nile is a river",
                "engine": "wikipedia", "score": 3.0,
            },
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
