"""``remember``: close the auction record and write every bid to the shared memory."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from sale_graph.context import SaleContext
from sale_graph.nodes._common import Node, ctx_of, emit
from sale_graph.services import SaleServices
from sale_graph.state import SaleState


def make_remember_node(services: SaleServices) -> Node:
    """Build the ``remember`` node bound to ``services`` (the memory)."""

    def remember(state: SaleState, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Store the auction (all bids, winners and losers, with the outcome) and mark it complete."""
        ctx = ctx_of(runtime)
        memory = services.memory_for(ctx)
        notes: list[str] = []
        if memory is None:
            notes.append("auction not stored: memory is off")
        else:
            from sale_graph.memory.bridge import store_auction

            n = store_auction(memory, state)
            notes.append(f"stored {n} strategies in the auction memory")
        emit(runtime, "remember", auction_id=state.get("auction_id"), notes=notes)
        return {"notes": notes}

    return remember
