"""``refine``: a cheaper agent rewrites its bid from contrastive pairs in the auction memory."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from sale_graph.context import SaleContext
from sale_graph.nodes._common import Node, ctx_of, emit
from sale_graph.nodes.bid import make_bid
from sale_graph.prompts import refine_messages
from sale_graph.services import SaleServices


class RefineTask(TypedDict):
    """The payload of one ``Send('refine', ...)``."""

    agent: str
    auction_id: str
    task: str
    own_strategy: str
    domain: str | None


def make_refine_node(services: SaleServices) -> Node:
    """Build the ``refine`` node bound to ``services`` (memory and model factory)."""

    def refine(state: RefineTask, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Retrieve contrastive pairs for this agent and, if there are any, write a refined bid."""
        ctx = ctx_of(runtime)
        agent = ctx.resolved_pool().get(state["agent"])
        memory = services.memory_for(ctx)
        retrieval = memory.contrastive_pairs(
            state["task"], agent.name, k=ctx.refine_k, min_similarity=ctx.refine_min_similarity,
            max_pairs=ctx.refine_max_pairs, exclude_auction_ids=[state["auction_id"]],
        )
        if not retrieval.pairs:
            emit(runtime, "refine", agent=agent.name, status="skipped", reason=retrieval.reason)
            return {"refinement": {"agents": {agent.name: {"status": "skipped", "reason": retrieval.reason, "pairs": 0}}}}
        triples = [(p.past_task, p.winner_strategy, p.loser_strategy) for p in retrieval.pairs]
        new_bid, ledger = make_bid(agent, refine_messages(state["task"], state["own_strategy"], triples), "refined", "refine", ctx, services)
        entry = {"status": new_bid["status"], "pairs": len(triples), "reason": retrieval.reason}
        if new_bid["status"] != "ok":
            entry["error"] = new_bid.get("error", "")
        emit(runtime, "refine", agent=agent.name, status=new_bid["status"], pairs=len(triples), tokens=new_bid["tokens"])
        return {"bids": [new_bid], "ledger": ledger, "refinement": {"agents": {agent.name: entry}}}

    return refine
