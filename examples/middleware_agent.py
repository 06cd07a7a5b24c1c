"""Way 2: ``SaleMiddleware`` on a ``create_agent`` agent: the auction's winner answers every model call.

    python examples/middleware_agent.py [POOL.toml]  # or SALE_POOL=POOL.toml; default: the embedded pool

Before the agent's first model call the pool bids on the user's message and the jury
picks the winner; the agent then runs with the winner's model, its own tools (``add``)
and the winning strategy in its system prompt. The whole auction is in the result's
``sale_auction``, with the run's model calls in its ledger (phase ``execute``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool

from sale_graph import SaleMiddleware

TASK = "What is 2 + 3? Use the add tool."


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def main(pool_path: str | None = None) -> dict[str, Any]:
    """Run one task with the agent; returns the agent's final state.

    Args:
        pool_path: a pool TOML; default ``$SALE_POOL``, else the embedded pool (``sale serve``).
    """
    # use_memory=True (the default) lets cheaper agents refine their bids from past auctions;
    # pass grader=... to record whether each run passed.
    sale = SaleMiddleware(pool=pool_path or os.environ.get("SALE_POOL"), use_memory=False, tools=[add])
    default_model = sale.pool.agents[0].chat_model(phase="execute")  # create_agent needs one; SALE replaces it
    agent = create_agent(model=default_model, tools=[add], middleware=[sale])
    out: dict[str, Any] = agent.invoke({"messages": [HumanMessage(TASK)]})
    auction = out["sale_auction"]
    executed = [e for e in auction["ledger"] if e["phase"] == "execute"]
    print(f"winner: {auction['selection']['winner']} ({auction['selection']['reason']})")
    print(f"answer: {out['messages'][-1].content}")
    print(f"auction calls: {len(auction['ledger']) - len(executed)}, agent model calls: {len(executed)}")
    return out


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
