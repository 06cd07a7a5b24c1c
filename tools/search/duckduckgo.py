"""The ``duckduckgo`` search backend: DuckDuckGo web search, no key, through the ``ddgs`` package.

Optional extra: ``pip install "sale-graph[duckduckgo]"`` (installs ``ddgs``;
its predecessor ``duckduckgo_search`` works too).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from sale_graph.tools.corpus import MissingExtraError
from sale_graph.tools.search.base import SearchBackendError, SearchConfigError, SearchResult, check_query, text_field

__all__ = ["DuckDuckGoBackend", "parse_ddgs_results"]


def parse_ddgs_results(items: Iterable[Mapping[str, Any]]) -> list[SearchResult]:
    """Convert ``DDGS().text`` results (``title``/``href``/``body``) to :class:`SearchResult`; drops URL-less items.

    Args:
        items: The result dicts.

    Returns:
        The results, in order.

    Raises:
        SearchBackendError: An item is not a mapping.
    """
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            raise SearchBackendError(f"duckduckgo search: expected result objects, got {type(item).__name__}: {item!r}")
        url = text_field(item.get("href") or item.get("url") or item.get("link"))
        if not url:
            continue
        content = text_field(item.get("body") or item.get("content") or item.get("snippet"))
        out.append(SearchResult(title=text_field(item.get("title")), url=url, content=content))
    return out


class DuckDuckGoBackend:
    """Web search through DuckDuckGo (no key) with the ``ddgs`` package (or ``duckduckgo_search``).

    Args:
        region: DuckDuckGo region, e.g. ``wt-wt`` (no region) or ``us-en``.
        safesearch: ``on``, ``moderate`` or ``off``.
        timelimit: ``None`` (any time), ``d``, ``w``, ``m`` or ``y``.

    Raises:
        SearchConfigError: An option is out of range.
        MissingExtraError: Neither ``ddgs`` nor ``duckduckgo_search`` is installed.
    """

    name = "duckduckgo"
    MODULES = ("ddgs", "duckduckgo_search")
    OPTIONS: ClassVar[dict[str, str]] = {"region": "e.g. wt-wt, us-en", "safesearch": "on | moderate | off", "timelimit": "d | w | m | y"}

    def __init__(self, region: str = "wt-wt", safesearch: str = "moderate", timelimit: str | None = None) -> None:
        if not isinstance(region, str):
            raise SearchConfigError(f"duckduckgo: region must be a string such as 'wt-wt' or 'us-en', got {region!r}")
        if safesearch not in ("on", "moderate", "off"):
            raise SearchConfigError(f"duckduckgo: safesearch {safesearch!r} must be 'on', 'moderate' or 'off'")
        if timelimit not in (None, "d", "w", "m", "y"):
            raise SearchConfigError(f"duckduckgo: timelimit {timelimit!r} must be null, 'd', 'w', 'm' or 'y'")
        self.region = region
        self.safesearch = safesearch
        self.timelimit = timelimit
        self._ddgs_cls = self._import_ddgs()

    @classmethod
    def from_config(cls, options: Mapping[str, Any]) -> DuckDuckGoBackend:
        """Build the backend from the options of a ``{"backend": "duckduckgo", ...}`` config (keys from :attr:`OPTIONS`)."""
        return cls(**options)

    @classmethod
    def _import_ddgs(cls) -> Any:
        """The ``DDGS`` class of the first installed package of :attr:`MODULES`."""
        for module in cls.MODULES:
            try:
                # optional extra: ddgs (or duckduckgo_search), imported by name when the backend is built
                return importlib.import_module(module).DDGS
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise  # the package is there but one of its own dependencies is broken: show that
        raise MissingExtraError(
            'The duckduckgo search backend needs the "ddgs" package: pip install "sale-graph[duckduckgo]" (or: pip install ddgs)'
        )

    def search(self, query: str, max_results: int = 5) -> list[SearchResult]:
        """Search DuckDuckGo; network or rate-limit errors are raised as :class:`SearchBackendError`.

        Args:
            query: The query.
            max_results: How many results at most (1 to 20).

        Returns:
            The results, best first.
        """
        check_query(self.name, query, max_results)
        try:
            items = self._ddgs_cls().text(
                query, region=self.region, safesearch=self.safesearch, timelimit=self.timelimit, max_results=max_results
            )
        except Exception as exc:  # ddgs raises its own exception types (rate limit, timeout): name the backend
            raise SearchBackendError(f"duckduckgo search failed for {query!r}: {type(exc).__name__}: {exc}") from exc
        return parse_ddgs_results(items or [])[:max_results]
