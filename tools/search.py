"""Search backends for the executor's ``web_search`` tool.

Every backend answers ``search(query, max_results) -> list[SearchResult]``, a
result being ``title``/``url``/``content``: the shape the Tavily and DuckDuckGo
LangChain tools return, so prompts and parsing work the same whatever the
backend. Backends:

* ``local`` (default, offline): :class:`LocalCorpusBackend`, hybrid search over
  a local corpus (:mod:`sale_graph.tools.corpus`); by default the offline Wikipedia lead
  summaries (optional extra ``wiki``).
* ``duckduckgo``: :class:`DuckDuckGoBackend`, through the ``ddgs`` package
  (or its predecessor ``duckduckgo_search``); optional extra ``duckduckgo``.
* ``tavily``: :class:`TavilyBackend`, the Tavily REST API over httpx; needs
  ``TAVILY_API_KEY``.
* ``searxng``: :class:`SearxNGBackend`, a SearxNG instance's JSON API over
  httpx; needs its base URL (``base_url`` or ``SEARXNG_URL``).

:func:`make_search_backend` builds one from a config dict such as
``{"backend": "tavily", "search_depth": "advanced"}`` (the ``search`` section
of a pool/run config). Online backends import their dependencies lazily and
are never called by the tests; their response parsing is a pure function
(``parse_*``) tested on canned JSON.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

# MissingExtraError is re-exported: one error type for every missing optional extra.
from sale_graph.tools.corpus import SEARCH_MODES, WIKI_CORPUS_NAME, LocalCorpus, MissingExtraError, wiki_corpus_path

__all__ = [
    "SearchResult",
    "SearchBackend",
    "SearchConfigError",
    "SearchBackendError",
    "MissingExtraError",
    "LocalCorpusBackend",
    "DuckDuckGoBackend",
    "TavilyBackend",
    "SearxNGBackend",
    "BACKENDS",
    "make_search_backend",
    "parse_ddgs_results",
    "parse_tavily_response",
    "parse_searxng_response",
]

DEFAULT_TIMEOUT_S = 20.0
MAX_RESULTS_LIMIT = 20


class SearchConfigError(ValueError):
    """A search backend config is invalid; the message names the field at fault and the accepted values."""


class SearchBackendError(RuntimeError):
    """A search backend failed at run time (HTTP error, bad response); the message names the backend and the fix."""


@dataclass(frozen=True)
class SearchResult:
    """One search hit: the page title, its URL and a text snippet (``content``)."""

    title: str
    url: str
    content: str

    def to_dict(self) -> dict[str, str]:
        """The ``{"title", "url", "content"}`` dict that LangChain search tools return."""
        return asdict(self)


@runtime_checkable
class SearchBackend(Protocol):
    """What the ``web_search`` tool needs from a backend: a name and ``search``."""

    name: str

    def search(self, query: str, max_results: int = 5) -> list[SearchResult]:
        """Return at most ``max_results`` results for ``query``, best first."""
        ...


def _check_query(backend: str, query: str, max_results: int) -> None:
    """Reject an empty query or an out-of-range result count before any work is done."""
    if not isinstance(query, str) or not query.strip():
        raise ValueError(f"{backend} search: query must be a non-empty string, got {query!r}")
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise ValueError(f"{backend} search: max_results must be an integer from 1 to {MAX_RESULTS_LIMIT}, got {max_results!r}")


def _text(value: Any) -> str:
    """A response field as a stripped string ('' for missing/null)."""
    return "" if value is None else str(value).strip()


# --------------------------------------------------------------------------- local


class LocalCorpusBackend:
    """Offline search over a local corpus (hybrid dense + BM25 by default).

    ``source`` is a folder of .txt/.md files or a JSONL file; without one the
    offline Wikipedia summaries are used (optional extra ``wiki``). The index
    is built on the first search (or by :meth:`prepare`) and reused afterwards.
    """

    name = "local"

    def __init__(
        self,
        source: str | os.PathLike[str] | None = None,
        *,
        name: str | None = None,
        mode: str = "hybrid",
        embeddings: Any | None = None,
        chunk_chars: int = 1000,
        overlap_chars: int = 150,
        progress: Any = True,
    ) -> None:
        if mode not in SEARCH_MODES:
            raise SearchConfigError(f"local search: mode {mode!r} is unknown; use one of {', '.join(SEARCH_MODES)}")
        if source is None:
            source = wiki_corpus_path()
            name = name or WIKI_CORPUS_NAME
        self.mode = mode
        self.corpus = LocalCorpus(
            source, name=name, embeddings=embeddings, chunk_chars=chunk_chars, overlap_chars=overlap_chars, progress=progress
        )

    def prepare(self) -> Any:
        """Build or reuse the index now (otherwise the first search does); returns the build report."""
        return self.corpus.ensure_index()

    def search(self, query: str, max_results: int = 5) -> list[SearchResult]:
        """Search the corpus; each result is a document with its best-matching chunk as ``content``."""
        _check_query(self.name, query, max_results)
        return [SearchResult(title=h.title, url=h.url, content=h.text) for h in self.corpus.search(query, max_results, self.mode)]

    def get_document(self, url_or_id: str) -> Any:
        """The corpus document with this URL or id (a :class:`sale_graph.tools.corpus.CorpusDocument`), or None."""
        return self.corpus.get_document(url_or_id)

    def __repr__(self) -> str:
        return f"LocalCorpusBackend(source={str(self.corpus.source)!r}, name={self.corpus.name!r}, mode={self.mode!r})"


# --------------------------------------------------------------------------- DuckDuckGo


def parse_ddgs_results(items: Iterable[Mapping[str, Any]]) -> list[SearchResult]:
    """Convert ``DDGS().text`` results (``title``/``href``/``body``) to :class:`SearchResult`; drops URL-less items."""
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            raise SearchBackendError(f"duckduckgo search: expected result objects, got {type(item).__name__}: {item!r}")
        url = _text(item.get("href") or item.get("url") or item.get("link"))
        if not url:
            continue
        out.append(SearchResult(title=_text(item.get("title")), url=url, content=_text(item.get("body") or item.get("content") or item.get("snippet"))))
    return out


class DuckDuckGoBackend:
    """Web search through DuckDuckGo (no key) with the ``ddgs`` package (or ``duckduckgo_search``).

    Optional extra: ``pip install "sale-graph[duckduckgo]"`` (installs ``ddgs``).
    """

    name = "duckduckgo"
    MODULES = ("ddgs", "duckduckgo_search")

    def __init__(self, region: str = "wt-wt", safesearch: str = "moderate", timelimit: str | None = None) -> None:
        if safesearch not in ("on", "moderate", "off"):
            raise SearchConfigError(f"duckduckgo: safesearch {safesearch!r} must be 'on', 'moderate' or 'off'")
        if timelimit not in (None, "d", "w", "m", "y"):
            raise SearchConfigError(f"duckduckgo: timelimit {timelimit!r} must be null, 'd', 'w', 'm' or 'y'")
        self.region = region
        self.safesearch = safesearch
        self.timelimit = timelimit
        self._ddgs_cls = self._import_ddgs()

    @classmethod
    def _import_ddgs(cls) -> Any:
        for module in cls.MODULES:
            try:
                return importlib.import_module(module).DDGS
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise  # the package is there but one of its own dependencies is broken: show that
        raise MissingExtraError(
            'The duckduckgo search backend needs the "ddgs" package: pip install "sale-graph[duckduckgo]" (or: pip install ddgs)'
        )

    def search(self, query: str, max_results: int = 5) -> list[SearchResult]:
        """Search DuckDuckGo; network or rate-limit errors are raised as :class:`SearchBackendError`."""
        _check_query(self.name, query, max_results)
        try:
            items = self._ddgs_cls().text(
                query, region=self.region, safesearch=self.safesearch, timelimit=self.timelimit, max_results=max_results
            )
        except Exception as exc:  # ddgs raises its own exception types (rate limit, timeout): name the backend
            raise SearchBackendError(f"duckduckgo search failed for {query!r}: {type(exc).__name__}: {exc}") from exc
        return parse_ddgs_results(items or [])[:max_results]


# --------------------------------------------------------------------------- HTTP helpers


def _http_error(backend: str, exc: Exception, hint: str = "") -> SearchBackendError:
    """A :class:`SearchBackendError` naming the backend, what failed and what to check."""
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        body = exc.response.text[:300].replace("\n", " ")
        msg = f"{backend} search: HTTP {exc.response.status_code} from {exc.request.url}: {body}"
    elif isinstance(exc, httpx.TimeoutException):
        msg = f"{backend} search: timed out calling {exc.request.url}; raise 'timeout' or check the service"
    elif isinstance(exc, httpx.RequestError):
        msg = f"{backend} search: cannot reach {exc.request.url} ({type(exc).__name__}: {exc}); check the network/base_url"
    else:
        msg = f"{backend} search: {type(exc).__name__}: {exc}"
    return SearchBackendError(msg + (f". {hint}" if hint else ""))


def _json_body(backend: str, response: Any) -> Any:
    """Decode a JSON response body, with an error that says what came back instead."""
    try:
        return response.json()
    except ValueError as exc:
        ctype = response.headers.get("content-type", "?")
        raise SearchBackendError(
            f"{backend} search: expected JSON from {response.request.url}, got {ctype}: {response.text[:200]!r}"
        ) from exc


def _check_timeout(backend: str, timeout: Any) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise SearchConfigError(f"{backend}: timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def _check_str_list(backend: str, field: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise SearchConfigError(f"{backend}: {field} must be a list of strings, got {value!r}")
    return list(value)


# --------------------------------------------------------------------------- Tavily


def parse_tavily_response(data: Any) -> list[SearchResult]:
    """Convert a Tavily ``/search`` JSON body (``{"results": [{title, url, content, ...}]}``) to results."""
    if not isinstance(data, Mapping) or not isinstance(data.get("results"), list):
        raise SearchBackendError(f"tavily search: response has no 'results' list: {str(data)[:200]}")
    out = []
    for item in data["results"]:
        if not isinstance(item, Mapping):
            raise SearchBackendError(f"tavily search: a result is a {type(item).__name__}, expected an object: {item!r}")
        url = _text(item.get("url"))
        if url:
            out.append(SearchResult(title=_text(item.get("title")), url=url, content=_text(item.get("content"))))
    return out


class TavilyBackend:
    """Web search through the Tavily REST API (``POST {base_url}/search``), key from ``TAVILY_API_KEY``."""

    name = "tavily"
    API_URL = "https://api.tavily.com"
    ENV_KEY = "TAVILY_API_KEY"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        search_depth: str = "basic",
        topic: str = "general",
        include_domains: Sequence[str] | None = None,
        exclude_domains: Sequence[str] | None = None,
        base_url: str = API_URL,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        key = api_key or os.environ.get(self.ENV_KEY)
        if not key:
            raise SearchConfigError(
                f"tavily: no API key; set the environment variable {self.ENV_KEY} (or pass api_key) "
                "or choose another backend, e.g. {'backend': 'local'}"
            )
        if search_depth not in ("basic", "advanced"):
            raise SearchConfigError(f"tavily: search_depth {search_depth!r} must be 'basic' or 'advanced'")
        if topic not in ("general", "news", "finance"):
            raise SearchConfigError(f"tavily: topic {topic!r} must be 'general', 'news' or 'finance'")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise SearchConfigError(f"tavily: base_url must be an http(s) URL, got {base_url!r}")
        self._api_key = key
        self.search_depth = search_depth
        self.topic = topic
        self.include_domains = _check_str_list("tavily", "include_domains", include_domains)
        self.exclude_domains = _check_str_list("tavily", "exclude_domains", exclude_domains)
        self.base_url = base_url.rstrip("/")
        self.timeout = _check_timeout("tavily", timeout)

    def request_body(self, query: str, max_results: int) -> dict[str, Any]:
        """The JSON body sent to ``/search`` (the key goes in the Authorization header, not here)."""
        body: dict[str, Any] = {
            "query": query,
            "max_results": max_results,
            "search_depth": self.search_depth,
            "topic": self.topic,
            "include_answer": False,
            "include_raw_content": False,
        }
        if self.include_domains:
            body["include_domains"] = self.include_domains
        if self.exclude_domains:
            body["exclude_domains"] = self.exclude_domains
        return body

    def search(self, query: str, max_results: int = 5) -> list[SearchResult]:
        """Call Tavily; HTTP and network failures raise :class:`SearchBackendError` naming the cause."""
        import httpx

        _check_query(self.name, query, max_results)
        try:
            response = httpx.post(
                f"{self.base_url}/search",
                json=self.request_body(query, max_results),
                headers={"Authorization": f"Bearer {self._api_key}"},
                timeout=self.timeout,
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            hint = f"check {self.ENV_KEY}" if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in (401, 403) else ""
            raise _http_error(self.name, exc, hint) from exc
        return parse_tavily_response(_json_body(self.name, response))[:max_results]

    def __repr__(self) -> str:  # never show the key
        return f"TavilyBackend(base_url={self.base_url!r}, search_depth={self.search_depth!r}, topic={self.topic!r})"


# --------------------------------------------------------------------------- SearxNG


def parse_searxng_response(data: Any) -> list[SearchResult]:
    """Convert a SearxNG ``/search?format=json`` body to results (``url``/``title``/``content``), dropping duplicates."""
    if not isinstance(data, Mapping) or not isinstance(data.get("results"), list):
        raise SearchBackendError(f"searxng search: response has no 'results' list: {str(data)[:200]}")
    out, seen = [], set()
    for item in data["results"]:
        if not isinstance(item, Mapping):
            raise SearchBackendError(f"searxng search: a result is a {type(item).__name__}, expected an object: {item!r}")
        url = _text(item.get("url"))
        if not url or url in seen:
            continue
        seen.add(url)
        out.append(SearchResult(title=_text(item.get("title")), url=url, content=_text(item.get("content"))))
    return out


class SearxNGBackend:
    """Web search through a SearxNG instance's JSON API (``GET {base_url}/search?format=json``).

    The instance must allow the JSON format (``search.formats`` in its
    ``settings.yml`` lists ``json``); public instances often do not.
    """

    name = "searxng"
    ENV_URL = "SEARXNG_URL"

    def __init__(
        self,
        base_url: str | None = None,
        *,
        categories: Sequence[str] | None = None,
        engines: Sequence[str] | None = None,
        language: str | None = None,
        safesearch: int = 1,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        url = base_url or os.environ.get(self.ENV_URL)
        if not url:
            raise SearchConfigError(
                f"searxng: no instance URL; set 'base_url' in the search config or the environment variable {self.ENV_URL}"
            )
        if not url.startswith(("http://", "https://")):
            raise SearchConfigError(f"searxng: base_url must be an http(s) URL, got {url!r}")
        if safesearch not in (0, 1, 2) or isinstance(safesearch, bool):
            raise SearchConfigError(f"searxng: safesearch must be 0, 1 or 2, got {safesearch!r}")
        if language is not None and not isinstance(language, str):
            raise SearchConfigError(f"searxng: language must be a string such as 'en', got {language!r}")
        self.base_url = url.rstrip("/")
        self.categories = _check_str_list("searxng", "categories", categories)
        self.engines = _check_str_list("searxng", "engines", engines)
        self.language = language
        self.safesearch = safesearch
        self.timeout = _check_timeout("searxng", timeout)

    def request_params(self, query: str) -> dict[str, str]:
        """The query string of the ``/search`` request."""
        params = {"q": query, "format": "json", "safesearch": str(self.safesearch)}
        if self.categories:
            params["categories"] = ",".join(self.categories)
        if self.engines:
            params["engines"] = ",".join(self.engines)
        if self.language:
            params["language"] = self.language
        return params

    def search(self, query: str, max_results: int = 5) -> list[SearchResult]:
        """Query the instance; SearxNG returns ~20 results per page, cut here to ``max_results``."""
        import httpx

        _check_query(self.name, query, max_results)
        try:
            response = httpx.get(f"{self.base_url}/search", params=self.request_params(query), timeout=self.timeout)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            hint = (
                "the instance refuses format=json: add 'json' to search.formats in its settings.yml"
                if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code == 403
                else ""
            )
            raise _http_error(self.name, exc, hint) from exc
        return parse_searxng_response(_json_body(self.name, response))[:max_results]


# --------------------------------------------------------------------------- factory

BACKENDS: dict[str, type] = {
    "local": LocalCorpusBackend,
    "duckduckgo": DuckDuckGoBackend,
    "tavily": TavilyBackend,
    "searxng": SearxNGBackend,
}

# Config fields accepted by each backend (everything but "backend" is passed as a keyword argument).
_FIELDS: dict[str, dict[str, str]] = {
    "local": {
        "path": "folder of .txt/.md files or a .jsonl file (default: the offline Wikipedia corpus)",
        "name": "index name under the data dir",
        "mode": "hybrid | dense | keyword",
        "chunk_chars": "maximum chunk size in characters",
        "overlap_chars": "overlap between chunks in characters",
        "progress": "show indexing progress on stderr (true/false)",
    },
    "duckduckgo": {"region": "e.g. wt-wt, us-en", "safesearch": "on | moderate | off", "timelimit": "d | w | m | y"},
    "tavily": {
        "api_key": f"API key (default: ${TavilyBackend.ENV_KEY}; prefer the environment)",
        "search_depth": "basic | advanced",
        "topic": "general | news | finance",
        "include_domains": "list of domains",
        "exclude_domains": "list of domains",
        "base_url": "API base URL",
        "timeout": "seconds",
    },
    "searxng": {
        "base_url": f"instance URL (default: ${SearxNGBackend.ENV_URL})",
        "categories": "list, e.g. [general]",
        "engines": "list of engine names",
        "language": "e.g. en",
        "safesearch": "0 | 1 | 2",
        "timeout": "seconds",
    },
}


def make_search_backend(config: Mapping[str, Any] | None = None) -> SearchBackend:
    """Build the search backend a pool/run config asks for: ``{"backend": name, **options}``.

    ``None`` or ``{}`` gives the offline default, ``local`` over the Wikipedia
    corpus. Unknown backends or fields, and wrong value types, raise
    :class:`SearchConfigError` listing what is accepted; an online backend
    whose package or key is missing raises an error saying what to install or set.
    """
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise SearchConfigError(f"search config must be a mapping like {{'backend': 'local'}}, got {type(config).__name__}: {config!r}")
    options = dict(config)
    backend = options.pop("backend", "local")
    if not isinstance(backend, str) or backend.lower() not in BACKENDS:
        raise SearchConfigError(f"search config: unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    backend = backend.lower()
    allowed = _FIELDS[backend]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        listing = "; ".join(f"{k} ({v})" for k, v in allowed.items())
        raise SearchConfigError(f"search config: unknown field(s) {', '.join(map(repr, unknown))} for backend {backend!r}; accepted: {listing}")
    if backend == "local":
        path = options.pop("path", None)
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise SearchConfigError(f"search config: 'path' must be a file or folder path, got {path!r}")
        for field in ("chunk_chars", "overlap_chars"):
            if field in options and (isinstance(options[field], bool) or not isinstance(options[field], int)):
                raise SearchConfigError(f"search config: {field!r} must be an integer, got {options[field]!r}")
        for field in ("name", "mode"):
            if field in options and not isinstance(options[field], str):
                raise SearchConfigError(f"search config: {field!r} must be a string, got {options[field]!r}")
        if "progress" in options and not isinstance(options["progress"], bool):
            raise SearchConfigError(f"search config: 'progress' must be true or false, got {options['progress']!r}")
        return LocalCorpusBackend(Path(path).expanduser() if path is not None else None, **options)
    return BACKENDS[backend](**options)
