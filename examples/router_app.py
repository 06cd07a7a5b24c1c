"""Way 3: ``sale_router``: an app with one agent node per model; SALE picks the node for each question.

    python examples/router_app.py [POOL.toml]        # or SALE_POOL=POOL.toml; default: the embedded pool

::

    START -> route (sale_router: a route-only auction) -> quick_agent | thorough_agent -> END

The app's agent nodes are its own ``create_agent`` agents (the pool's cheapest agent is
routed to ``quick_agent``, the others to ``thorough_agent``); the router only chooses, with
``Command(goto=...)``, and hands over the winning strategy (``sale_strategy``) and the
auction record (``sale_auction``). It runs under the app's checkpointer: a second
question on the thread is a new auction.
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

from sale_graph import AgentPool, SaleContext, SaleRouterState, check_routes, sale_router
from sale_graph.llm import TextToolCallingModel

TASK = "What is 2 + 3? Use the add tool."


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


def build_app(pool: AgentPool) -> Any:
    """The routed app for ``pool``, with a checkpointer."""
    g = StateGraph(State)
    g.add_node("route", sale_router(routes_for(pool), pool=pool, use_memory=False, tools=[add]))
    g.add_node("quick_agent", agent_node(pool))
    g.add_node("thorough_agent", agent_node(pool))
    g.add_edge(START, "route")
    g.add_edge("quick_agent", END)
    g.add_edge("thorough_agent", END)
    check_routes(g)  # every route leads to a node of this graph, and the state has the router's keys
    return g.compile(checkpointer=InMemorySaver())


def main(pool_path: str | None = None) -> dict[str, Any]:
    """Ask one question; returns the app's final state.

    Args:
        pool_path: a pool TOML; default ``$SALE_POOL``, else the embedded pool (``sale serve``).
    """
    pool = SaleContext(pool=pool_path or os.environ.get("SALE_POOL")).resolved_pool()
    app = build_app(pool)
    out: dict[str, Any] = app.invoke({"messages": [HumanMessage(TASK)]}, {"configurable": {"thread_id": "router-app"}})
    selection = out["sale_auction"]["selection"]
    print(f"winner: {selection['winner']} -> node {routes_for(pool)[selection['winner']]} ({selection['reason']})")
    print(f"answer: {out['messages'][-1].content}")
    return out


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
