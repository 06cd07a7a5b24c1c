"""The search backend factory: a pool/run config's ``search`` section to a backend.

Each backend class declares the config keys it accepts (``OPTIONS``) and builds
itself from them (``from_config``); :func:`make_search_backend` picks the
class, refuses unknown keys naming the accepted ones, and delegates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sale_graph.tools.search.base import BackendClass, SearchBackend, SearchConfigError
from sale_graph.tools.search.duckduckgo import DuckDuckGoBackend
from sale_graph.tools.search.local import LocalCorpusBackend
from sale_graph.tools.search.searxng import SearxNGBackend
from sale_graph.tools.search.tavily import TavilyBackend

__all__ = ["BACKENDS", "make_search_backend"]

#: Backend name (the config's ``backend``) -> backend class.
BACKENDS: dict[str, BackendClass] = {
    "local": LocalCorpusBackend,
    "duckduckgo": DuckDuckGoBackend,
    "tavily": TavilyBackend,
    "searxng": SearxNGBackend,
}


def make_search_backend(config: Mapping[str, Any] | None = None) -> SearchBackend:
    """Build the search backend a pool/run config asks for: ``{"backend": name, **options}``.

    Args:
        config: The ``search`` config. ``None`` or ``{}`` gives the offline
            default, ``local`` over the Wikipedia corpus.

    Returns:
        The backend (nothing is indexed or called yet).

    Raises:
        SearchConfigError: Unknown backends or fields, and wrong value types,
            with what is accepted.
        MissingExtraError: An optional package the backend needs is missing;
            the message says what to install.
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
    cls = BACKENDS[backend]
    unknown = sorted(set(options) - set(cls.OPTIONS))
    if unknown:
        listing = "; ".join(f"{k} ({v})" for k, v in cls.OPTIONS.items())
        raise SearchConfigError(
            f"search config: unknown field(s) {', '.join(map(repr, unknown))} for backend {backend!r}; accepted: {listing}"
        )
    return cls.from_config(options)
