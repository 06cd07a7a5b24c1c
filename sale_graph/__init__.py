"""sale-graph: SALE (Strategy Auctions for Workload Efficiency) as a LangGraph graph.

>>> from sale_graph import build_sale_graph, load_pool, SaleContext
>>> graph = build_sale_graph().compile()
>>> out = graph.invoke({"task": "What is the capital of Australia?"}, context=SaleContext(pool="pool.toml"))

Importing the package has no side effects (no server, no model, no network).
"""

from sale_graph.context import SaleContext
from sale_graph.graph import build_sale_graph
from sale_graph.pool import AgentPool, AgentSpec, PoolError, check_pool, load_pool
from sale_graph.state import SaleInput, SaleOutput, SaleState
from sale_graph.weights import Weights, load_weights

__all__ = [
    "AgentPool",
    "AgentSpec",
    "PoolError",
    "SaleContext",
    "SaleInput",
    "SaleOutput",
    "SaleState",
    "Weights",
    "build_sale_graph",
    "check_pool",
    "load_pool",
    "load_weights",
]
__version__ = "0.1.0"
