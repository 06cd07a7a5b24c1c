"""``refine``: a cheaper agent rewrites its bid from contrastive pairs in the auction memory."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from sale_graph.context import SaleContext
from sale_graph.nodes._common import Node, ctx_of, emit
from sale_graph.nodes.bid import bid_notes, make_bid
from sale_graph.prompts import RefineExample, refine_messages
from sale_graph.services import SaleServices


class RefineTask(TypedDict):
    """The payload of one ``Send('refine', ...)``."""

    agent: str
    auction_id: str
    task: str
    own_strategy: str
    domain: str | None


def make_refine_node(services: SaleServices) -> Node:
    """Build the ``refine`` node bound to ``services`` (memory and model factory).

    Args:
        services: the graph's services (the auction memory and the model factory).

    Returns:
        The node.
    """

    def refine(state: RefineTask, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Retrieve contrastive pairs for this agent and, if there are any, write a refined bid.

        Only past tasks of the task's domain are searched (a task with no domain
        searches the past tasks recorded with none). The pairs mark which side
        was this agent's own bid, and the refined bid's notes (failure,
        truncation, retries) go to the run's ``notes``.

        Raises:
            RuntimeError: the memory is off (``select`` only sends ``refine`` when it is on).
        """
        ctx = ctx_of(runtime)
        agent = ctx.resolved_pool().get(state["agent"])
        memory = services.memory_for(ctx)
        if memory is None:
            raise RuntimeError(
                f"refine ran for {agent.name!r} with the auction memory off (context.use_memory=False); "
                "select routes to refine only when the memory is on"
            )
        retrieval = memory.contrastive_pairs(
            state["task"], agent.name, k=ctx.refine_k, min_similarity=ctx.refine_min_similarity,
            max_pairs=ctx.refine_max_pairs, domain=state.get("domain") or "", exclude_auction_ids=[state["auction_id"]],
        )
        if not retrieval.pairs:
            emit(runtime, "refine", agent=agent.name, status="skipped", reason=retrieval.reason)
            return {"refinement": {"agents": {agent.name: {"status": "skipped", "reason": retrieval.reason, "pairs": 0}}}}
        examples = [
            RefineExample(p.past_task, p.winner_strategy, p.loser_strategy, p.own_winner, p.own_loser) for p in retrieval.pairs
        ]
        messages = refine_messages(state["task"], state["own_strategy"], examples)
        new_bid, ledger = make_bid(agent, messages, "refined", "refine", ctx, services)
        entry = {"status": new_bid["status"], "pairs": len(examples), "reason": retrieval.reason}
        if new_bid["status"] != "ok":
            entry["error"] = new_bid.get("error", "")
        emit(runtime, "refine", agent=agent.name, status=new_bid["status"], pairs=len(examples), tokens=new_bid["tokens"])
        return {"bids": [new_bid], "ledger": ledger, "refinement": {"agents": {agent.name: entry}}, "notes": bid_notes(new_bid)}

    return refine
