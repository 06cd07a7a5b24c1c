"""The graph's nodes, one module each. Nodes are thin: the arithmetic is in :mod:`sale_graph.scoring`.

Each ``make_*_node(services)`` returns a :data:`Node`: a function of the node's
input (the graph state, or a ``Send`` payload for the fan-out nodes) and the
LangGraph runtime, returning the state update.
"""

from sale_graph.nodes._common import Node

__all__ = ["Node"]
