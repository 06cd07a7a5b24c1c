"""From an auction's graph state to auction-memory records."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sale_graph.memory.records import StrategyRecord
from sale_graph.memory.store import AuctionMemory


def auction_records(state: Mapping[str, Any]) -> list[StrategyRecord]:
    """One record per scored bid (original and refined), labelled won/lost by the current selection.

    Args:
        state: the auction's graph state (``bids``, ``scores``, ``selection``, ``execution``).

    Returns:
        The records, in the order of ``state["scores"]``.
    """
    selection = state.get("selection") or {}
    winner = (selection.get("winner"), selection.get("round"))
    outcome = (state.get("execution") or {}).get("outcome", "unknown")
    strategies = {(b["agent"], b["round"]): b["strategy"] for b in state.get("bids", []) if b["status"] == "ok"}
    records = []
    for row in state.get("scores", []):
        key = (row["agent"], row["round"])
        records.append(StrategyRecord(
            agent=row["agent"], strategy=strategies.get(key, ""), cost=row["cost"], entropy=row["entropy"],
            value=row["value"], round=row["round"],
            jury_scores={j: g for j, g in row["jury"].items() if g is not None},
            won=key == winner, outcome=outcome,
        ))
    return records


def store_auction(memory: AuctionMemory, state: Mapping[str, Any]) -> int:
    """Upsert the auction and every bid into ``memory``; returns how many bids were written.

    Idempotent: ids are (auction id, agent, round), so calling it after each
    selection and again with the outcome never duplicates. The state's
    ``degraded`` record (set when the auction went on below its jury quorum,
    else ``None``) is stored as the auction's ``degraded`` flag and reason.

    Args:
        memory: the auction memory.
        state: the auction's graph state.

    Returns:
        The number of bids written (0 when no bid was scored yet).
    """
    records = auction_records(state)
    if not records:
        return 0
    outcome = (state.get("execution") or {}).get("outcome")
    degraded = state.get("degraded")
    ids = memory.record_auction(
        state["auction_id"], state["task"], state.get("domain") or "", records,
        task_id=state.get("task_id") or "", outcome=outcome,
        degraded=degraded is not None, degraded_reason=str(degraded.get("reason") or "") if degraded else "",
    )
    return len(ids)
