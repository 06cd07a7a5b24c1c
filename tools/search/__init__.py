"""Search backends for the executor's ``web_search`` tool.

Every backend answers ``search(query, max_results) -> list[SearchResult]``
(:mod:`~sale_graph.tools.search.base`). Backends, one module each:

* ``local`` (default, offline): :class:`LocalCorpusBackend`, hybrid search over
  a local corpus (:mod:`sale_graph.tools.corpus`); by default the offline
  Wikipedia lead summaries (optional extra ``wiki``).
* ``duckduckgo``: :class:`DuckDuckGoBackend`, through the ``ddgs`` package
  (or its predecessor ``duckduckgo_search``); optional extra ``duckduckgo``.
* ``tavily``: :class:`TavilyBackend`, the Tavily REST API over httpx; needs
  ``TAVILY_API_KEY``.
* ``searxng``: :class:`SearxNGBackend`, a SearxNG instance's JSON API over
  httpx; needs its base URL (``base_url`` or ``SEARXNG_URL``).

:func:`make_search_backend` (:mod:`~sale_graph.tools.search.registry`) builds
one from a config dict such as ``{"backend": "tavily", "search_depth":
"advanced"}`` (the ``search`` section of a pool/run config); each backend
class lists the config keys it accepts in ``OPTIONS``. Online backends are
never called by the tests; their response parsing is a pure function
(``parse_*``) tested on canned JSON.
"""

from __future__ import annotations

# MissingExtraError is re-exported: one error type for every missing optional extra.
from sale_graph.tools.corpus import MissingExtraError
from sale_graph.tools.search.base import BackendClass, SearchBackend, SearchBackendError, SearchConfigError, SearchResult
from sale_graph.tools.search.duckduckgo import DuckDuckGoBackend, parse_ddgs_results
from sale_graph.tools.search.local import LocalCorpusBackend
from sale_graph.tools.search.registry import BACKENDS, make_search_backend
from sale_graph.tools.search.searxng import SearxNGBackend, parse_searxng_response
from sale_graph.tools.search.tavily import TavilyBackend, parse_tavily_response

__all__ = [
    "SearchResult",
    "SearchBackend",
    "BackendClass",
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
