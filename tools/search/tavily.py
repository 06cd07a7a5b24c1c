"""The ``tavily`` search backend: the Tavily REST API over httpx; needs ``TAVILY_API_KEY``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx

from sale_graph.tools.search.base import (
    DEFAULT_TIMEOUT_S,
    SearchBackendError,
    SearchConfigError,
    SearchResult,
    check_query,
    check_str_list,
    check_timeout,
    http_error,
    json_body,
    text_field,
)

__all__ = ["TavilyBackend", "parse_tavily_response"]


def parse_tavily_response(data: Any) -> list[SearchResult]:
    """Convert a Tavily ``/search`` JSON body (``{"results": [{title, url, content, ...}]}``) to results.

    Args:
        data: The decoded JSON body.

    Returns:
        The results with a URL, in order.

    Raises:
        SearchBackendError: The body has no ``results`` list or a result is not an object.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("results"), list):
        raise SearchBackendError(f"tavily search: response has no 'results' list: {str(data)[:200]}")
    out = []
    for item in data["results"]:
        if not isinstance(item, Mapping):
            raise SearchBackendError(f"tavily search: a result is a {type(item).__name__}, expected an object: {item!r}")
        url = text_field(item.get("url"))
        if url:
            out.append(SearchResult(title=text_field(item.get("title")), url=url, content=text_field(item.get("content"))))
    return out


class TavilyBackend:
    """Web search through the Tavily REST API (``POST {base_url}/search``), key from ``TAVILY_API_KEY``.

    Args:
        api_key: The API key (default: the ``TAVILY_API_KEY`` environment variable).
        search_depth: ``basic`` or ``advanced``.
        topic: ``general``, ``news`` or ``finance``.
        include_domains: Only search these domains.
        exclude_domains: Never return these domains.
        base_url: The API base URL.
        timeout: Seconds per request.

    Raises:
        SearchConfigError: No key, or an option is out of range.
    """

    name = "tavily"
    API_URL = "https://api.tavily.com"
    ENV_KEY = "TAVILY_API_KEY"
    OPTIONS: ClassVar[dict[str, str]] = {
        "api_key": f"API key (default: ${ENV_KEY}; prefer the environment)",
        "search_depth": "basic | advanced",
        "topic": "general | news | finance",
        "include_domains": "list of domains",
        "exclude_domains": "list of domains",
        "base_url": "API base URL",
        "timeout": "seconds",
    }

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
        if api_key is not None and not isinstance(api_key, str):
            raise SearchConfigError(f"tavily: api_key must be a string, got {type(api_key).__name__}")  # never show the key
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
        self.include_domains = check_str_list("tavily", "include_domains", include_domains)
        self.exclude_domains = check_str_list("tavily", "exclude_domains", exclude_domains)
        self.base_url = base_url.rstrip("/")
        self.timeout = check_timeout("tavily", timeout)

    @classmethod
    def from_config(cls, options: Mapping[str, Any]) -> TavilyBackend:
        """Build the backend from the options of a ``{"backend": "tavily", ...}`` config (keys from :attr:`OPTIONS`)."""
        return cls(**options)

    def request_body(self, query: str, max_results: int) -> dict[str, Any]:
        """The JSON body sent to ``/search`` (the key goes in the Authorization header, not here).

        Args:
            query: The query.
            max_results: How many results to ask for.

        Returns:
            The request body.
        """
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
        """Call Tavily; HTTP and network failures raise :class:`SearchBackendError` naming the cause.

        Args:
            query: The query.
            max_results: How many results at most (1 to 20).

        Returns:
            The results, best first.
        """
        check_query(self.name, query, max_results)
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
            raise http_error(self.name, exc, hint) from exc
        return parse_tavily_response(json_body(self.name, response))[:max_results]

    def __repr__(self) -> str:  # never show the key
        return f"TavilyBackend(base_url={self.base_url!r}, search_depth={self.search_depth!r}, topic={self.topic!r})"
