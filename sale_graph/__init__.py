"""sale-graph: SALE (Strategy Auctions for Workload Efficiency) as a LangGraph graph.

>>> from sale_graph import SaleContext, build_sale_graph
>>> graph = build_sale_graph().compile()
>>> out = graph.invoke({"task": "What is the capital of Australia?"}, context=SaleContext(pool="pool.toml"))

Every name the README and the docs use imports from here, on first use (PEP 562):
the graph pulls in LangGraph, the OpenAI client and the tools, so ``import sale_graph``
alone stays cheap. Importing the package has
no side effects (no server, no model, no network).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sale_graph.calibrate import Calibration, CalibrationError, calibrate_weights
    from sale_graph.context import SaleContext
    from sale_graph.conversation import ConversationTask, conversation_task
    from sale_graph.embedded import EmbeddedServer, embedded_pool
    from sale_graph.errors import (
        ApprovalError,
        AuctionError,
        ContextError,
        EndpointError,
        ExecutionError,
        PoolError,
        ResumeError,
        RouteError,
        SaleError,
        ServerError,
        TaskError,
        ToolCallingError,
        WeightsError,
    )
    from sale_graph.graph import build_sale_graph
    from sale_graph.integrations import (
        SaleMiddleware,
        SaleRouterState,
        check_routes,
        sale_as_node,
        sale_router,
        sale_subgraph,
        shared_key_problems,
        strict_context,
    )
    from sale_graph.integrations.gateway import create_gateway_app
    from sale_graph.llm import ModelFactory
    from sale_graph.memory import AuctionMemory, MemoryStoreError
    from sale_graph.nodes import Node
    from sale_graph.pool import AgentPool, AgentSpec, check_pool, load_pool
    from sale_graph.runner import AuctionRun, run_auction
    from sale_graph.state import SaleInput, SaleOutput, SaleState
    from sale_graph.weights import Weights, load_weights

# Public name -> module that defines it, imported on first access.
_LAZY: dict[str, str] = {
    "build_sale_graph": "sale_graph.graph",
    "SaleContext": "sale_graph.context",
    "SaleInput": "sale_graph.state",
    "SaleOutput": "sale_graph.state",
    "SaleState": "sale_graph.state",
    "Node": "sale_graph.nodes",
    "ModelFactory": "sale_graph.llm",
    "AgentPool": "sale_graph.pool",
    "AgentSpec": "sale_graph.pool",
    "check_pool": "sale_graph.pool",
    "load_pool": "sale_graph.pool",
    "Weights": "sale_graph.weights",
    "load_weights": "sale_graph.weights",
    "SaleError": "sale_graph.errors",
    "ApprovalError": "sale_graph.errors",
    "AuctionError": "sale_graph.errors",
    "ContextError": "sale_graph.errors",
    "EndpointError": "sale_graph.errors",
    "ExecutionError": "sale_graph.errors",
    "PoolError": "sale_graph.errors",
    "ResumeError": "sale_graph.errors",
    "ServerError": "sale_graph.errors",
    "TaskError": "sale_graph.errors",
    "WeightsError": "sale_graph.errors",
    "AuctionMemory": "sale_graph.memory",
    "MemoryStoreError": "sale_graph.memory",
    "EmbeddedServer": "sale_graph.embedded",
    "embedded_pool": "sale_graph.embedded",
    "AuctionRun": "sale_graph.runner",
    "run_auction": "sale_graph.runner",
    "sale_as_node": "sale_graph.integrations",
    "sale_subgraph": "sale_graph.integrations",
    "shared_key_problems": "sale_graph.integrations",
    "RouteError": "sale_graph.errors",
    "SaleMiddleware": "sale_graph.integrations",
    "SaleRouterState": "sale_graph.integrations",
    "ToolCallingError": "sale_graph.errors",
    "check_routes": "sale_graph.integrations",
    "sale_router": "sale_graph.integrations",
    "strict_context": "sale_graph.integrations",
    "ConversationTask": "sale_graph.conversation",
    "conversation_task": "sale_graph.conversation",
    "Calibration": "sale_graph.calibrate",
    "CalibrationError": "sale_graph.calibrate",
    "calibrate_weights": "sale_graph.calibrate",
    "create_gateway_app": "sale_graph.integrations.gateway",
}

__all__ = [
    "AgentPool",
    "AgentSpec",
    "ApprovalError",
    "AuctionError",
    "AuctionMemory",
    "AuctionRun",
    "Calibration",
    "CalibrationError",
    "ContextError",
    "ConversationTask",
    "EmbeddedServer",
    "EndpointError",
    "ExecutionError",
    "MemoryStoreError",
    "ModelFactory",
    "Node",
    "PoolError",
    "ResumeError",
    "RouteError",
    "SaleContext",
    "SaleError",
    "SaleInput",
    "SaleMiddleware",
    "SaleOutput",
    "SaleRouterState",
    "SaleState",
    "ServerError",
    "TaskError",
    "ToolCallingError",
    "Weights",
    "WeightsError",
    "build_sale_graph",
    "calibrate_weights",
    "check_pool",
    "check_routes",
    "conversation_task",
    "create_gateway_app",
    "embedded_pool",
    "load_pool",
    "load_weights",
    "run_auction",
    "sale_as_node",
    "sale_router",
    "sale_subgraph",
    "shared_key_problems",
    "strict_context",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Import a heavy public name on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sale_graph' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Public names, including the lazily imported ones."""
    return sorted(set(globals()) | set(_LAZY))
