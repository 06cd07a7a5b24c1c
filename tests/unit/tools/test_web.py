"""The web tools (``web_search``, ``fetch_page``) over a fake backend, and HTML to text: no network."""

from __future__ import annotations

import json
import types

import httpx
import pytest

from sale_graph.tools.search import SearchBackendError, SearchResult
from sale_graph.tools.web import fetch_url_text, html_to_text, make_search_tools

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
