"""Errors of the LangChain / LangGraph integrations, each naming what to fix."""

from __future__ import annotations

from sale_graph.errors import ContextError, SaleError


class RouteError(SaleError, ValueError):
    """A ``sale_router`` route is missing, names an agent the pool lacks, or a node the graph lacks."""


class ToolCallingError(SaleError, ValueError):
    """The auction's winner cannot call the agent's tools natively and text tool calling is not configured."""


__all__ = ["ContextError", "RouteError", "ToolCallingError"]
