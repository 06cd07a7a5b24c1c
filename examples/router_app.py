"""Way 3, a router node: ``sale_router`` sends each question to one of the app's agent nodes.

    python examples/router_app.py [POOL.toml]        # or SALE_POOL=POOL.toml; default: the embedded pool

::

    START -> route (sale_router: a route-only auction) -> quick_agent | thorough_agent -> END

The app's agent nodes are its own ``create_agent`` agents with an ``add`` tool (the pool's
cheapest agent is routed to ``quick_agent``, the others to ``thorough_agent``); the router
only chooses, with ``Command(goto=...)``, and hands over the winning strategy
(``sale_strategy``) and the auction record (``sale_auction``). The auction's settings
are the run's ``context`` (the fields of :class:`~sale_graph.context.SaleContext`, e.g.
``{"use_memory": false, "bid_max_tokens": 48}``), except the pool: the routes are made
for the pool the app was built with, so a ``pool`` in the context fails the run.
Chat-shaped: send ``{"messages": [...]}`` (Agent Chat UI works); the answer is appended
to ``messages``.

:func:`main` runs the app under a checkpointer (a second question on the thread is a new
auction). ``graph`` is the same app for ``langgraph dev`` (``routed_agents`` in
``langgraph.json``): built for ``$SALE_POOL`` when the server starts, else the embedded
pool, compiled without a checkpointer (the server brings its own), and refusing unknown
context keys by name (:func:`~sale_graph.strict_context`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

from sale_graph import AgentPool, ContextError, SaleContext, SaleRouterState, check_routes, sale_router, strict_context
from sale_graph.context import context_from
from sale_graph.llm import TextToolCallingModel

TASK = "What is 2 + 3? Use the add tool."
POOL_ENV = "SALE_POOL"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class State(MessagesState, SaleRouterState):
    """The chat messages, plus the router's ``sale_strategy`` and ``sale_auction``."""


def agent_node(pool: AgentPool) -> Any:
    """An agent node of the app: a ``create_agent`` agent on the winner's model that follows the winning plan."""
    agents: dict[str, Any] = {}

    def run(state: State) -> dict[str, Any]:
        spec = pool.get(state["sale_auction"]["selection"]["winner"])
        if spec.name not in agents:
            model: Any = spec.chat_model(phase="execute")
            if spec.tool_calling == "text":  # a model with no native tool calls (the embedded pool)
                model = TextToolCallingModel(inner=model)
            agents[spec.name] = create_agent(model=model, tools=[add])
        plan = SystemMessage(f"Follow this plan, chosen by a strategy auction:\n{state['sale_strategy']}")
        out = agents[spec.name].invoke({"messages": [plan, *state["messages"]]})
        return {"messages": out["messages"][len(state["messages"]) + 1:]}

    return run


def routes_for(pool: AgentPool) -> dict[str, str]:
    """The pool's cheapest agent goes to ``quick_agent``, the others to ``thorough_agent``."""
    cheapest, *others = [a.name for a in pool.by_price()]
    return {cheapest: "quick_agent", **dict.fromkeys(others, "thorough_agent")}


def run_settings(run_context: Any) -> SaleContext:
    """The auction's settings from the run's context; a ``pool`` there is refused (the routes are per pool)."""
    ctx = context_from(run_context)
    if ctx.pool is not None:
        raise ContextError(f"routed_agents routes the pool it was started with; remove 'pool' from the context "
                           f"and set {POOL_ENV}=<pool.toml> before `langgraph dev` to route another pool")
    return ctx


def pool_from(pool_path: str | None = None) -> AgentPool:
    """The pool at ``pool_path``; default ``$SALE_POOL``, else the embedded pool (``sale serve``)."""
    return SaleContext(pool=pool_path or os.environ.get(POOL_ENV) or None).resolved_pool()


def build_app(pool: AgentPool, **router_kwargs: Any) -> StateGraph[Any, Any, Any, Any]:
    """The routed app for ``pool``, uncompiled.

    Args:
        pool: the agents the router chooses among.
        **router_kwargs: passed to :func:`~sale_graph.sale_router` (``model_factory``, ``memory``...).
    """
    g = StateGraph(State, context_schema=SaleContext)
    g.add_node("route", sale_router(routes_for(pool), pool=pool, context=run_settings, tools=[add], **router_kwargs))
    g.add_node("quick_agent", agent_node(pool))
    g.add_node("thorough_agent", agent_node(pool))
    g.add_edge(START, "route")
    g.add_edge("quick_agent", END)
    g.add_edge("thorough_agent", END)
    check_routes(g)  # every route leads to a node of this graph, and the state has the router's keys
    return g


def main(pool_path: str | None = None) -> dict[str, Any]:
    """Ask one question; returns the app's final state.

    Args:
        pool_path: a pool TOML; default ``$SALE_POOL``, else the embedded pool (``sale serve``).
    """
    pool = pool_from(pool_path)
    app = build_app(pool).compile(checkpointer=InMemorySaver())
    out: dict[str, Any] = app.invoke({"messages": [HumanMessage(TASK)]}, {"configurable": {"thread_id": "router-app"}},
                                     context=SaleContext(use_memory=False))
    selection = out["sale_auction"]["selection"]
    print(f"winner: {selection['winner']} -> node {routes_for(pool)[selection['winner']]} ({selection['reason']})")
    print(f"answer: {out['messages'][-1].content}")
    return out


graph = strict_context(build_app(pool_from()).compile(name="routed_agents"))

__all__ = ["State", "build_app", "graph", "main", "routes_for", "run_settings"]


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
