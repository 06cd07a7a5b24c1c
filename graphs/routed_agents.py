"""An example app for ``langgraph dev``: SALE routes each question to one of two agent nodes.

::

    START -> route (sale_router: a route-only auction) -> quick_agent | thorough_agent -> END

The pool is the one named by ``$SALE_POOL`` when ``langgraph dev`` starts, else the
embedded local pool (``sale serve``). Its cheapest agent is routed to ``quick_agent``,
the others to ``thorough_agent``; each node is a ``create_agent`` agent on the winner's
model that follows the winning strategy (``sale_strategy``). The auction's other
settings come from the run's ``context`` (the fields of
:class:`~sale_graph.context.SaleContext`, e.g. ``{"use_memory": false, "bid_max_tokens": 48}``);
an unknown key fails the run naming the allowed ones, and so does a ``pool`` (the routes
are made for the pool loaded at start). Chat-shaped: send ``{"messages": [...]}``
(Agent Chat UI works); the answer is appended to ``messages``.

``graph`` is compiled without a checkpointer (the server brings its own);
:func:`build_routed_agents` returns the uncompiled graph for tests and apps.
"""

from __future__ import annotations

import os
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import SystemMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from sale_graph.context import SaleContext
from sale_graph.integrations import ContextError, SaleRouterState, check_routes, sale_router, strict_context
from sale_graph.integrations.settings import as_context
from sale_graph.pool import AgentPool

POOL_ENV = "SALE_POOL"


class RoutedState(MessagesState, SaleRouterState):
    """The conversation, plus the router's ``sale_strategy`` and ``sale_auction``."""


def routes_for(pool: AgentPool) -> dict[str, str]:
    """The cheapest agent goes to ``quick_agent``, the others to ``thorough_agent``."""
    cheapest, *others = [a.name for a in pool.by_price()]
    return {cheapest: "quick_agent", **dict.fromkeys(others, "thorough_agent")}


def agent_node(pool: AgentPool) -> Any:
    """An agent node: a ``create_agent`` agent on the winner's model, told to follow the winning strategy."""
    agents: dict[str, Any] = {}

    def run(state: RoutedState) -> dict[str, Any]:
        name = state["sale_auction"]["selection"]["winner"]
        if name not in agents:
            agents[name] = create_agent(model=pool.get(name).chat_model(phase="execute", max_tokens=256))
        plan = SystemMessage(f"Follow this plan, chosen by a strategy auction:\n{state['sale_strategy']}")
        out = agents[name].invoke({"messages": [plan, *state["messages"]]})
        return {"messages": out["messages"][len(state["messages"]) + 1:]}

    return run


def run_settings(run_context: Any) -> SaleContext:
    """The auction's settings from the run's context; a ``pool`` there is refused (the routes are per pool)."""
    ctx = as_context(run_context, "routed_agents context")
    if ctx.pool is not None:
        raise ContextError(f"routed_agents routes the pool it was started with; remove 'pool' from the context "
                           f"and set {POOL_ENV}=<pool.toml> before `langgraph dev` to route another pool")
    return ctx


def build_routed_agents(pool: AgentPool | None = None, **router_kwargs: Any) -> StateGraph[Any, Any, Any, Any]:
    """The app, uncompiled.

    Args:
        pool: the agents; default ``$SALE_POOL``, else the embedded pool.
        **router_kwargs: passed to :func:`~sale_graph.integrations.sale_router` (``model_factory``, ``memory``...).
    """
    pool = pool or SaleContext(pool=os.environ.get(POOL_ENV) or None).resolved_pool()
    g = StateGraph(RoutedState, context_schema=SaleContext)
    g.add_node("route", sale_router(routes_for(pool), pool=pool, context=run_settings, **router_kwargs))
    g.add_node("quick_agent", agent_node(pool))
    g.add_node("thorough_agent", agent_node(pool))
    g.add_edge(START, "route")
    g.add_edge("quick_agent", END)
    g.add_edge("thorough_agent", END)
    check_routes(g)
    return g


graph = strict_context(build_routed_agents().compile(name="routed_agents"))

__all__ = ["RoutedState", "build_routed_agents", "graph", "routes_for", "run_settings"]
