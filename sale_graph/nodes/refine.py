"""``refine``: a cheaper agent rewrites its bid from contrastive pairs in the auction memory."""

from __future__ import annotations

import asyncio
from typing import Any, NotRequired

from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from sale_graph.context import SaleContext
from sale_graph.events import RefineEvent, emit
from sale_graph.llm import describe_error
from sale_graph.memory import ContrastiveResult
from sale_graph.nodes._common import Node, ctx_of, dual_node
from sale_graph.nodes.bid import amake_bid, bid_notes, make_bid
from sale_graph.nodes.replay import mark_replayed, replay_guard, resumed_task
from sale_graph.pool import AgentSpec
from sale_graph.prompts import RefineExample, refine_messages
from sale_graph.services import SaleServices
from sale_graph.state import Bid, UsageEntry


class RefineTask(TypedDict):
    """The payload of one ``Send('refine', ...)``."""

    agent: str
    auction_id: str
    task: str
    own_strategy: str
    domain: str | None
    run_fingerprint: NotRequired[dict[str, Any]]  # the run's context as it started, checked when a resumed run refines again


def make_refine_node(services: SaleServices) -> Node:
    """Build the ``refine`` node bound to ``services`` (memory and model factory).

    Args:
        services: the graph's services (the auction memory and the model factory).

    Returns:
        The node.
    """

    def retrieve(state: RefineTask, runtime: Runtime[SaleContext]) -> tuple[SaleContext, AgentSpec, ContrastiveResult | str]:
        """The run's context, the agent, and its contrastive pairs (a ``str`` saying why when the memory failed)."""
        ctx = ctx_of(runtime)
        replay_guard(state.get("run_fingerprint"), ctx)  # a resumed run checks its context before reading and paying
        agent = ctx.resolved_pool().get(state["agent"])
        memory = services.memory_for(ctx)
        if memory is None:
            raise RuntimeError(
                f"refine ran for {agent.name!r} with the auction memory off (context.use_memory=False); "
                "select routes to refine only when the memory is on"
            )
        try:
            retrieval = memory.contrastive_pairs(
                state["task"], agent.name, k=ctx.refine_k, min_similarity=ctx.refine_min_similarity,
                max_pairs=ctx.refine_max_pairs, domain=state.get("domain") or "", exclude_auction_ids=[state["auction_id"]],
                graded=ctx.refine_graded,
            )
        except Exception as exc:  # refinement is optional: a memory that fails now must not stop a paid-for auction
            return ctx, agent, f"memory read failed ({describe_error(exc)}); no refined bid"
        return ctx, agent, retrieval

    def skipped(runtime: Runtime[SaleContext], agent: AgentSpec, reason: ContrastiveResult | str) -> dict[str, Any]:
        """The update of an agent that writes no refined bid; a failed memory read is also a note."""
        failed = isinstance(reason, str)
        why = reason if isinstance(reason, str) else reason.reason
        emit(runtime, RefineEvent(event="refine", agent=agent.name, status="skipped", reason=why))
        update: dict[str, Any] = {"refinement": {"agents": {agent.name: {"status": "skipped", "reason": why, "pairs": 0}}}}
        if failed:
            update["notes"] = [f"refinement of {agent.name} skipped: {why}"]
        return update

    def messages_for(state: RefineTask, retrieval: Any) -> list[Any]:
        examples = [
            RefineExample(p.past_task, p.winner_strategy, p.loser_strategy, p.own_winner, p.own_loser) for p in retrieval.pairs
        ]
        return refine_messages(state["task"], state["own_strategy"], examples)

    def finish(runtime: Runtime[SaleContext], agent: AgentSpec, retrieval: Any, new_bid: Bid, ledger: list[UsageEntry]) -> dict[str, Any]:
        replayed = resumed_task()
        entry = {"status": new_bid["status"], "pairs": len(retrieval.pairs), "reason": retrieval.reason}
        if new_bid["status"] != "ok":
            entry["error"] = new_bid.get("error", "")
        emit(runtime, RefineEvent(event="refine", agent=agent.name, status=new_bid["status"], pairs=len(retrieval.pairs),
                                  tokens=new_bid["tokens"]))
        update = {"bids": [new_bid], "ledger": ledger, "refinement": {"agents": {agent.name: entry}}, "notes": bid_notes(new_bid)}
        return mark_replayed(update, f"the refined bid of {agent.name}") if replayed else update

    def refine(state: RefineTask, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Retrieve contrastive pairs for this agent and, if there are any, write a refined bid.

        Only past tasks of the task's domain are searched (a task with no domain
        searches the past tasks recorded with none). The pairs mark which side
        was this agent's own bid, and the refined bid's notes (failure,
        truncation, retries) go to the run's ``notes``. A memory that fails to
        answer now skips this agent's refinement with a note: the auction is
        already paid for and has its provisional winner.

        Raises:
            RuntimeError: the memory is off (``select`` only sends ``refine`` when it is on).
        """
        ctx, agent, retrieval = retrieve(state, runtime)
        if isinstance(retrieval, str) or not retrieval.pairs:
            return skipped(runtime, agent, retrieval)
        run = ctx.run_limiter(state["auction_id"])
        return finish(runtime, agent, retrieval, *make_bid(agent, messages_for(state, retrieval), "refined", "refine", ctx, services, run))

    async def arefine(state: RefineTask, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Retrieve contrastive pairs (in a worker thread: Chroma blocks) and write a refined bid (asyncio)."""
        ctx, agent, retrieval = await asyncio.to_thread(retrieve, state, runtime)
        if isinstance(retrieval, str) or not retrieval.pairs:
            return skipped(runtime, agent, retrieval)
        run = ctx.run_limiter(state["auction_id"])
        refined = await amake_bid(agent, messages_for(state, retrieval), "refined", "refine", ctx, services, run)
        return finish(runtime, agent, retrieval, *refined)

    return dual_node(refine, arefine)
