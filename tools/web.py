"""LangChain tools for the deep-search executor: ``web_search`` and ``fetch_page``.

``web_search(query, max_results)`` searches through a pluggable
:class:`~sale_graph.tools.search.SearchBackend` (the offline local corpus by default).
Its tool result is a **JSON string** of ``[{"title", "url", "content"}, ...]``:
a chat model reads text, OpenAI-compatible servers accept only strings (or
typed content blocks) as tool-message content, and JSON keeps the fields
unambiguous for small models. The same list of dicts is attached as the
tool message's ``artifact`` (``response_format="content_and_artifact"``) for
code that wants it unparsed.

``fetch_page(url)`` returns a page as readable text (title, URL, body). A URL
of a local-corpus document (``corpus://...``, a corpus file's ``file://`` URI,
or the ``https://en.wikipedia.org/...`` URL of an offline Wikipedia summary) is
served from the corpus, so the tool works offline; other ``http(s)`` URLs are
fetched with httpx (timeout, download cap) and HTML is turned into text with the
standard library's ``html.parser``. Local files that are not corpus documents
are refused: the agent must not read the host's disk.

Run-time failures (no such page, HTTP error, unreachable host) are raised as
``ToolException`` and shown to the agent as the tool's result with status
``error`` (``handle_tool_error=True``), so it can retry or change course; the
failure stays visible in the trace. Configuration errors raise immediately.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import httpx
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from sale_graph.tools.corpus.wiki import wiki_url
from sale_graph.tools.search import SearchBackend, SearchBackendError, SearchResult, make_search_backend

__all__ = [
    "WEB_SEARCH_MAX_RESULTS",
    "DEFAULT_FETCH_MAX_CHARS",
    "DEFAULT_FETCH_MAX_BYTES",
    "DEFAULT_FETCH_TIMEOUT_S",
    "html_to_text",
    "fetch_url_text",
    "format_search_results",
    "make_search_tools",
]

WEB_SEARCH_MAX_RESULTS = 10
DEFAULT_FETCH_MAX_CHARS = 8000
DEFAULT_FETCH_MAX_BYTES = 2_000_000
DEFAULT_FETCH_TIMEOUT_S = 15.0
USER_AGENT = "sale-graph/0.1 (+fetch_page tool)"


# --------------------------------------------------------------------------- HTML to text

_SKIP_TAGS = frozenset(
    {"script", "style", "noscript", "template", "svg", "nav", "footer", "aside", "form", "button", "iframe", "select", "head"}
)
_BLOCK_TAGS = frozenset(
    {
        "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section", "article",
        "main", "header", "blockquote", "pre", "hr", "dd", "dt", "dl", "figcaption", "figure", "caption",
    }
)
_VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})


class _TextExtractor(HTMLParser):
    """Collects the visible text of an HTML page, with line breaks at block elements, and its ``<title>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self._skip: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
            return
        if tag in _VOID_TAGS:
            if tag in ("br", "hr") and not self._skip:
                self.parts.append("\n")
            return
        if tag in _SKIP_TAGS or any(name == "hidden" for name, _ in attrs):
            self._skip.append(tag)
            return
        if self._skip:
            if tag == self._skip[-1]:
                self._skip.append(tag)  # nested same tag: track depth to find the right end tag
            return
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            return
        if self._skip:
            if tag == self._skip[-1]:
                self._skip.pop()
            return
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
        elif not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> tuple[str, str]:
    """Return ``(title, readable text)`` of an HTML page: scripts, styles, navigation and forms dropped.

    Block elements become line breaks and runs of spaces collapse, so an LLM
    reads prose rather than markup.
    """
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    title = " ".join("".join(parser.title_parts).split())
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return title, text


# --------------------------------------------------------------------------- fetching


def fetch_url_text(
    url: str,
    *,
    timeout: float = DEFAULT_FETCH_TIMEOUT_S,
    max_bytes: int = DEFAULT_FETCH_MAX_BYTES,
    client: Any | None = None,
) -> tuple[str, str]:
    """GET an http(s) URL and return ``(title, text)``; HTML is converted, plain text and JSON pass through.

    At most ``max_bytes`` are downloaded (the rest is cut), redirects are
    followed, and failures raise ``ToolException`` naming the URL and cause.
    ``client`` (an ``httpx.Client``) is for tests with a mock transport.
    """
    own = client is None
    http = client or httpx.Client(timeout=timeout, follow_redirects=True, headers={"User-Agent": USER_AGENT})
    try:
        with http.stream("GET", url) as response:
            if response.status_code >= 400:
                raise ToolException(f"fetch_page: HTTP {response.status_code} for {url}")
            ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype and not (ctype.startswith("text/") or ctype in ("application/xhtml+xml", "application/json", "application/xml")):
                raise ToolException(f"fetch_page: {url} is {ctype}, not a text page; only HTML, text and JSON pages can be read")
            chunks, size = [], 0
            for block in response.iter_bytes():
                chunks.append(block)
                size += len(block)
                if size >= max_bytes:
                    break
            raw = b"".join(chunks)[:max_bytes]
            encoding = response.encoding or "utf-8"
    except httpx.TimeoutException as exc:
        raise ToolException(f"fetch_page: timed out after {timeout:g} s fetching {url}") from exc
    except httpx.HTTPError as exc:
        raise ToolException(f"fetch_page: cannot fetch {url}: {type(exc).__name__}: {exc}") from exc
    finally:
        if own:
            http.close()
    body = raw.decode(encoding, errors="replace")
    if ctype in ("text/html", "application/xhtml+xml") or (not ctype and "<html" in body[:2000].lower()):
        title, text = html_to_text(body)
    else:
        title, text = "", body.strip()
    return title, text


def _format_page(title: str, url: str, text: str, max_chars: int) -> str:
    """Page text for the agent: title and URL header, body cut to ``max_chars`` with a visible note."""
    body = text
    if len(body) > max_chars:
        body = body[:max_chars].rstrip() + f"\n\n[truncated: the page has {len(text)} characters; showing the first {max_chars}]"
    header = f"Title: {title}\nURL: {url}\n\n" if title else f"URL: {url}\n\n"
    return header + (body or "[the page has no readable text]")


def format_search_results(results: list[SearchResult]) -> str:
    """The ``web_search`` tool result: a JSON list of ``{"title", "url", "content"}`` objects (UTF-8, not escaped)."""
    return json.dumps([r.to_dict() for r in results], ensure_ascii=False)


# --------------------------------------------------------------------------- tools


_WIKI_HOSTS = ("en.wikipedia.org", "en.m.wikipedia.org")


def _lookup_document(get_document: Callable[[str], Any], url: str) -> Any:
    """The corpus document for a URL, tolerating how models rewrite Wikipedia URLs (escaping, http, mobile host, #anchor)."""
    doc = get_document(url)
    if doc is not None:
        return doc
    parts = urllib.parse.urlsplit(url)
    if parts.hostname in _WIKI_HOSTS and parts.path.startswith("/wiki/"):
        title = urllib.parse.unquote(parts.path[len("/wiki/"):]).replace("_", " ")
        return get_document(wiki_url(title))
    return None


class WebSearchInput(BaseModel):
    """Arguments of ``web_search``."""

    query: str = Field(description="What to search for: keywords or a short question.")
    max_results: int = Field(
        default=5, ge=1, le=WEB_SEARCH_MAX_RESULTS, description=f"How many results to return (1-{WEB_SEARCH_MAX_RESULTS})."
    )


class FetchPageInput(BaseModel):
    """Arguments of ``fetch_page``."""

    url: str = Field(description="The URL of a page, usually one returned by web_search.")


def _validation_message(error: Any) -> str:
    """Short, model-readable message for arguments that fail the tool's schema."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())) or 'arguments'}: {e.get('msg', '')}" for e in getattr(error, "errors", lambda: [])()
    ) or str(error)
    return (
        f"Invalid tool arguments ({problems}). web_search takes query (text) and max_results "
        f"(1-{WEB_SEARCH_MAX_RESULTS}); fetch_page takes url."
    )


def make_search_tools(
    backend: SearchBackend | None = None,
    *,
    fetch_max_chars: int = DEFAULT_FETCH_MAX_CHARS,
    fetch_timeout: float = DEFAULT_FETCH_TIMEOUT_S,
    fetch_max_bytes: int = DEFAULT_FETCH_MAX_BYTES,
    http_client: Any | None = None,
) -> list[BaseTool]:
    """Return the executor's ``[web_search, fetch_page]`` tools bound to a search backend.

    ``backend`` defaults to :func:`sale_graph.tools.search.make_search_backend` ``(None)``,
    the offline local corpus. ``fetch_page`` serves the backend's corpus
    documents offline when it has a ``get_document`` method and fetches other
    http(s) URLs (``http_client``: an ``httpx.Client`` to use instead, e.g. in tests).
    """
    if backend is None:
        backend = make_search_backend(None)
    if not isinstance(backend, SearchBackend):
        raise TypeError(f"backend must have a 'name' and a search(query, max_results) method, got {type(backend).__name__}")
    if fetch_max_chars < 100:
        raise ValueError(f"fetch_max_chars must be at least 100, got {fetch_max_chars}")
    if fetch_timeout <= 0 or fetch_max_bytes <= 0:
        raise ValueError(f"fetch_timeout and fetch_max_bytes must be positive, got {fetch_timeout} and {fetch_max_bytes}")
    get_document: Callable[[str], Any] | None = getattr(backend, "get_document", None)

    def web_search(query: str, max_results: int = 5) -> tuple[str, list[dict[str, str]]]:
        if not query.strip():
            raise ToolException("web_search: the query is empty; give keywords or a question")
        try:
            results = backend.search(query, max_results)
        except SearchBackendError as exc:
            raise ToolException(str(exc)) from exc
        dicts = [r.to_dict() for r in results]
        return format_search_results(results), dicts

    def fetch_page(url: str) -> str:
        url = url.strip().strip("<>\"'")
        if not url:
            raise ToolException("fetch_page: the url is empty; pass a URL from the web_search results")
        doc = _lookup_document(get_document, url) if get_document is not None else None
        if doc is not None:
            return _format_page(doc.title, doc.url, doc.text, fetch_max_chars)
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme in ("corpus", "file"):
            raise ToolException(
                f"fetch_page: {url} is not a document of the local corpus; only pages listed by web_search can be read offline"
            )
        if scheme not in ("http", "https"):
            raise ToolException(f"fetch_page: unsupported URL {url!r}; give an http(s) URL from the web_search results")
        title, text = fetch_url_text(url, timeout=fetch_timeout, max_bytes=fetch_max_bytes, client=http_client)
        return _format_page(title, url, text, fetch_max_chars)

    search_tool = StructuredTool.from_function(
        func=web_search,
        name="web_search",
        description=(
            "Search for pages about a topic. Returns a JSON list of results, each with title, url and content "
            "(a text snippet). Use fetch_page on a result's url to read the whole page."
        ),
        args_schema=WebSearchInput,
        response_format="content_and_artifact",
        handle_tool_error=True,
        handle_validation_error=_validation_message,
    )
    fetch_tool = StructuredTool.from_function(
        func=fetch_page,
        name="fetch_page",
        description=(
            f"Read a page as plain text (title, URL and up to {fetch_max_chars} characters of text). "
            "Pass a url returned by web_search."
        ),
        args_schema=FetchPageInput,
        handle_tool_error=True,
        handle_validation_error=_validation_message,
    )
    return [search_tool, fetch_tool]
