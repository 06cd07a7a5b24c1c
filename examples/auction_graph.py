"""The SALE auction for ``langgraph dev`` / LangGraph Studio (``langgraph.json``: ``sale``).

Compiled with no checkpointer and no store: the LangGraph API server adds its own.
Runtime settings come as the run's ``context`` (the fields of
:class:`sale_graph.context.SaleContext`), e.g.
``{"pool": "pool.toml", "bid_max_tokens": 64, "use_memory": false}``; with no
``pool`` the embedded local pool is used (start it with ``sale serve``). A context key
that is not a ``SaleContext`` field (``use_memmory``) fails the run with an error naming
the allowed keys (the server would otherwise drop it silently; see
:mod:`sale_graph.integrations.server_context`).
"""

from __future__ import annotations

from sale_graph import build_sale_graph, strict_context

graph = strict_context(build_sale_graph().compile(name="sale"))

__all__ = ["graph"]
