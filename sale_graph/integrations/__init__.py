"""SALE inside LangChain and LangGraph apps: the three ways to use it, and strict API contexts.

1. **Subgraph** (:mod:`~sale_graph.integrations.subgraph`): the whole auction, and the
   winner executes, as one step of an app's graph: :func:`sale_subgraph` shares state
   keys with the app, :func:`sale_as_node` maps the app's own keys.
2. **Middleware** (:mod:`~sale_graph.integrations.middleware`):
   ``create_agent(..., middleware=[SaleMiddleware(pool="pool.toml")])``: an auction on each
   run's task picks the model of every model call of the run.
3. **Router node** (:mod:`~sale_graph.integrations.router`): :func:`sale_router`, a node
   that sends each run to the node of the auction's winner (``Command(goto=...)``), for
   apps with one agent node per model; :class:`SaleRouterState` adds its two state keys,
   :func:`check_routes` checks a built graph.

4. **Gateway** (:mod:`~sale_graph.integrations.gateway`, the ``gateway`` extra, imported
   from its own package): ``create_gateway_app()`` and ``sale gateway``, an
   OpenAI-compatible endpoint whose model ``sale`` auctions each request's turn and
   forwards the request to the winner, for apps that change a base URL, not their code.

Ways 2, 3 and 4 run a route-only auction (``_route_only``, with settings from
``_route_settings``): the app's own model or node executes. :func:`strict_context`
(:mod:`~sale_graph.integrations.server_context`) makes a compiled graph for
``langgraph.json`` whose runs refuse unknown context keys, naming the allowed ones (the
API server would drop them silently).
"""

from __future__ import annotations

from sale_graph.errors import ContextError, RouteError, ToolCallingError
from sale_graph.integrations.middleware import STRATEGY_PROMPT, Grader, SaleAgentState, SaleMiddleware
from sale_graph.integrations.router import SaleRouterNode, SaleRouterState, check_routes, sale_router
from sale_graph.integrations.server_context import ContextCheckedGraph, check_context, strict_context
from sale_graph.integrations.subgraph import (
    SHARED_INPUT_KEYS,
    SHARED_OUTPUT_KEYS,
    sale_as_node,
    sale_subgraph,
    shared_key_problems,
)

__all__ = [
    "SHARED_INPUT_KEYS",
    "SHARED_OUTPUT_KEYS",
    "STRATEGY_PROMPT",
    "ContextCheckedGraph",
    "ContextError",
    "Grader",
    "RouteError",
    "SaleAgentState",
    "SaleMiddleware",
    "SaleRouterNode",
    "SaleRouterState",
    "ToolCallingError",
    "check_context",
    "check_routes",
    "sale_as_node",
    "sale_router",
    "sale_subgraph",
    "shared_key_problems",
    "strict_context",
]
