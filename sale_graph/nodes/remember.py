"""``remember``: close the auction record and write every bid to the shared memory."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from sale_graph.context import SaleContext
from sale_graph.events import RememberEvent, emit
from sale_graph.llm import describe_error
from sale_graph.memory import AuctionMemory
from sale_graph.memory.bridge import store_auction
from sale_graph.nodes._common import TASK_INPUT_KEYS, Node, ctx_of
from sale_graph.services import SaleServices
from sale_graph.state import SaleState


def apply_retention(memory: AuctionMemory, ctx: SaleContext, auction_id: str | None) -> list[str]:
    """Prune the memory to the run's retention limits (never this auction); the note saying what went, if any.

    A prune that fails is a note too: the auction is stored, only the limit was not applied.
    """
    if ctx.memory_max_auctions is None and ctx.memory_max_age_days is None:
        return []
    try:
        result = memory.prune(ctx.memory_max_auctions, ctx.memory_max_age_days, keep=[auction_id] if auction_id else [])
    except Exception as exc:  # the auction is stored; a prune failure must not take the answer with it
        return [f"memory retention not applied ({describe_error(exc)}); prune with `sale memory prune`"]
    return [result.note()] if result.auctions else []


def make_remember_node(services: SaleServices) -> Node:
    """Build the ``remember`` node bound to ``services`` (the memory)."""

    def remember(state: SaleState, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Store the auction (all bids, winners and losers, with the outcome) and mark the run complete.

        The execution is already paid for, so a memory that fails now does not take the
        answer with it: the failure becomes a note (and ``memory_error``) and the run
        returns normally. With a retention limit (``memory_max_auctions``,
        ``memory_max_age_days``) the memory is then pruned, never this auction, and a
        note says how many auctions went. The per-task input keys are cleared for the
        next run on the thread.
        """
        ctx = ctx_of(runtime)
        notes: list[str] = []
        update: dict[str, Any] = {}
        try:
            memory = services.memory_for(ctx)
            if memory is None:
                notes.append("auction not stored: memory is off")
            else:
                n = store_auction(memory, state)
                notes.append(f"stored {n} strategies in the auction memory")
                notes += apply_retention(memory, ctx, state.get("auction_id"))
        except Exception as exc:  # any store failure: the answer must still be returned, with the failure shown
            error = describe_error(exc)
            notes.append(f"MEMORY WRITE FAILED, auction not stored: {error}; the answer is returned. "
                         "Check the memory (sale memory stats) and re-run the task to record it")
            update["memory_error"] = error
        emit(runtime, RememberEvent(event="remember", auction_id=state.get("auction_id"), notes=notes))
        context = {**(state.get("run_context") or {}), "completed": True}
        return {"notes": notes, "run_context": context, **dict.fromkeys(TASK_INPUT_KEYS), **update}

    return remember
