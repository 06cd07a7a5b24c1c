"""Way 1: the SALE auction as a subgraph of your app, sharing state keys; the winner executes.

    python examples/subgraph_app.py [POOL.toml]      # or SALE_POOL=POOL.toml; default: the embedded pool

The app reads the auction's ``answer`` and ``selection`` back by key name and keeps a
history of its own. The auction bids, judges, picks the winner and runs it as a ReAct
agent with the app's tool (``add``), under the app's checkpointer.
"""

from __future__ import annotations

import operator
import os
import sys
from typing import Annotated, Any, NotRequired

from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from sale_graph import SaleContext, sale_subgraph, shared_key_problems

TASK = "What is 2 + 3? Use the add tool."


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class App(TypedDict):
    """The app's state: ``task`` goes to the auction, ``answer`` and ``selection`` come back."""

    task: str
    answer: NotRequired[str]
    selection: NotRequired[dict[str, Any]]
    history: NotRequired[Annotated[list[dict[str, Any]], operator.add]]


def record(state: App) -> dict[str, Any]:
    """The app's own step after the auction: remember who answered what."""
    return {"history": [{"task": state["task"], "answer": state.get("answer", ""), "winner": state["selection"]["winner"]}]}


def build_app() -> Any:
    """START -> sale (the auction, executing) -> record -> END, with a checkpointer."""
    assert shared_key_problems(App) == []
    g = StateGraph(App, context_schema=SaleContext)
    g.add_node("sale", sale_subgraph(tools=[add]))
    g.add_node("record", record)
    g.add_edge(START, "sale")
    g.add_edge("sale", "record")
    g.add_edge("record", END)
    return g.compile(checkpointer=InMemorySaver())


def main(pool_path: str | None = None) -> dict[str, Any]:
    """Run one task through the app; returns the app's final state.

    Args:
        pool_path: a pool TOML; default ``$SALE_POOL``, else the embedded pool (``sale serve``).
    """
    context = SaleContext(pool=pool_path or os.environ.get("SALE_POOL"), use_memory=False)
    out: dict[str, Any] = build_app().invoke({"task": TASK}, {"configurable": {"thread_id": "subgraph-app"}}, context=context)
    print(f"winner: {out['selection']['winner']} ({out['selection']['reason']})")
    print(f"answer: {out['answer']}")
    print(f"history: {out['history']}")
    return out


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
