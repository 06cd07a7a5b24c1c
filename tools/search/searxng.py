"""The ``searxng`` search backend: a SearxNG instance's JSON API over httpx.

Needs the instance's base URL (``base_url`` or ``SEARXNG_URL``), and the
instance must allow the JSON format.
"""

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

__all__ = ["SearxNGBackend", "parse_searxng_response"]


def parse_searxng_response(data: Any) -> list[SearchResult]:
    """Convert a SearxNG ``/search?format=json`` body to results (``url``/``title``/``content``), dropping duplicates.

    Args:
        data: The decoded JSON body.

    Returns:
        The results with a URL, first occurrence of each URL, in order.

    Raises:
        SearchBackendError: The body has no ``results`` list or a result is not an object.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("results"), list):
        raise SearchBackendError(f"searxng search: response has no 'results' list: {str(data)[:200]}")
    out, seen = [], set()
    for item in data["results"]:
        if not isinstance(item, Mapping):
            raise SearchBackendError(f"searxng search: a result is a {type(item).__name__}, expected an object: {item!r}")
        url = text_field(item.get("url"))
        if not url or url in seen:
            continue
        seen.add(url)
        out.append(SearchResult(title=text_field(item.get("title")), url=url, content=text_field(item.get("content"))))
    return out


class SearxNGBackend:
    """Web search through a SearxNG instance's JSON API (``GET {base_url}/search?format=json``).

    The instance must allow the JSON format (``search.formats`` in its
    ``settings.yml`` lists ``json``); public instances often do not.

    Args:
        base_url: The instance URL (default: the ``SEARXNG_URL`` environment variable).
        categories: SearxNG categories, e.g. ``["general"]``.
        engines: Engine names.
        language: A language code such as ``en``.
        safesearch: 0, 1 or 2.
        timeout: Seconds per request.

    Raises:
        SearchConfigError: No URL, or an option is out of range.
    """

    name = "searxng"
    ENV_URL = "SEARXNG_URL"
    OPTIONS: ClassVar[dict[str, str]] = {
        "base_url": f"instance URL (default: ${ENV_URL})",
        "categories": "list, e.g. [general]",
        "engines": "list of engine names",
        "language": "e.g. en",
        "safesearch": "0 | 1 | 2",
        "timeout": "seconds",
    }

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
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise SearchConfigError(f"searxng: base_url must be an http(s) URL, got {url!r}")
        if safesearch not in (0, 1, 2) or isinstance(safesearch, bool):
            raise SearchConfigError(f"searxng: safesearch must be 0, 1 or 2, got {safesearch!r}")
        if language is not None and not isinstance(language, str):
            raise SearchConfigError(f"searxng: language must be a string such as 'en', got {language!r}")
        self.base_url = url.rstrip("/")
        self.categories = check_str_list("searxng", "categories", categories)
        self.engines = check_str_list("searxng", "engines", engines)
        self.language = language
        self.safesearch = safesearch
        self.timeout = check_timeout("searxng", timeout)

    @classmethod
    def from_config(cls, options: Mapping[str, Any]) -> SearxNGBackend:
        """Build the backend from the options of a ``{"backend": "searxng", ...}`` config (keys from :attr:`OPTIONS`)."""
        return cls(**options)

    def request_params(self, query: str) -> dict[str, str]:
        """The query string of the ``/search`` request.

        Args:
            query: The query.

        Returns:
            The query parameters.
        """
        params = {"q": query, "format": "json", "safesearch": str(self.safesearch)}
        if self.categories:
            params["categories"] = ",".join(self.categories)
        if self.engines:
            params["engines"] = ",".join(self.engines)
        if self.language:
            params["language"] = self.language
        return params

    def search(self, query: str, max_results: int = 5) -> list[SearchResult]:
        """Query the instance; SearxNG returns ~20 results per page, cut here to ``max_results``.

        Args:
            query: The query.
            max_results: How many results at most (1 to 20).

        Returns:
            The results, best first.
        """
        check_query(self.name, query, max_results)
        try:
            response = httpx.get(f"{self.base_url}/search", params=self.request_params(query), timeout=self.timeout)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            hint = (
                "the instance refuses format=json: add 'json' to search.formats in its settings.yml"
                if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code == 403
                else ""
            )
            raise http_error(self.name, exc, hint) from exc
        return parse_searxng_response(json_body(self.name, response))[:max_results]
