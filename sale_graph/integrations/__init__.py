"""SALE inside LangChain and LangGraph apps: agent middleware, a router node, strict API contexts.

* :class:`SaleMiddleware`: ``create_agent(..., middleware=[SaleMiddleware(pool="pool.toml")])``:
  an auction on each run's task picks the model of every model call of the run.
* :func:`sale_router`: a LangGraph node that sends each run to the node of the auction's
  winner (``Command(goto=...)``), for apps with one agent node per model;
  :class:`SaleRouterState` adds its two state keys, :func:`check_routes` checks a built graph.
* :func:`strict_context`: a compiled graph for ``langgraph.json`` whose runs refuse unknown
  context keys, naming the allowed ones (the API server would drop them silently).

The third way, the auction as a subgraph that also executes, is :mod:`sale_graph.compose`.
"""

from __future__ import annotations

from sale_graph.integrations.api import ContextCheckedGraph, check_context, strict_context
from sale_graph.integrations.errors import ContextError, RouteError, ToolCallingError
from sale_graph.integrations.middleware import STRATEGY_PROMPT, Grader, SaleAgentState, SaleMiddleware
from sale_graph.integrations.router import SaleRouterNode, SaleRouterState, check_routes, sale_router

__all__ = [
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
    "sale_router",
    "strict_context",
]
