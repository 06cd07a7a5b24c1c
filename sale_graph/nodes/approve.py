"""``approve``: an optional human check before ``execute`` (LangGraph ``interrupt``).

With ``context.approve_before_execute`` the run pauses here and shows the bid
table and the winner. Resume with ``Command(resume=...)``:

* ``True`` / ``"approve"`` / ``{}``: keep the winner;
* ``{"winner": "agent-name"}`` (or just ``"agent-name"``): execute that agent's best bid instead.

An answer that is neither (or names an agent with no scored bid) is asked again, with
the error in the new question; the thread stays usable.

Needs a checkpointer (the parent app's, or the LangGraph server's). Without the
setting, the node passes straight through.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from sale_graph.context import SaleContext
from sale_graph.errors import ApprovalError
from sale_graph.events import ApproveEvent, emit
from sale_graph.nodes._common import check_run_context, ctx_of
from sale_graph.state import SaleState, SelectionInfo


def _choice(state: SaleState, answer: Any) -> str | None:
    """The agent the human chose (``None``: approve the winner); raises :class:`ApprovalError` for a bad answer."""
    if answer in (None, True, "approve", "approved", "yes", {}):
        return None
    chosen = answer if isinstance(answer, str) else answer.get("winner") if isinstance(answer, dict) else None
    if not isinstance(chosen, str):
        raise ApprovalError(f"approval answer {answer!r} is neither an approval (True) nor {{'winner': 'agent-name'}}")
    bidders = sorted({r["agent"] for r in state.get("scores", [])})
    if chosen not in bidders and chosen != state["selection"]["winner"]:
        raise ApprovalError(f"override names {chosen!r}, which has no scored bid; choose one of {bidders}")
    return chosen


def _ask(state: SaleState) -> str | None:
    """Interrupt until the human gives a usable answer; a bad one is asked again with what was wrong.

    Each question is its own ``interrupt``, so a bad resume never bricks the thread: the
    next resume answers the new question (LangGraph replays the earlier answers in order).
    """
    selection = state["selection"]
    question: dict[str, Any] = {
        "question": "Execute with this winner? Resume with True, or {'winner': '<agent>'} to override.",
        "winner": selection["winner"],
        "reason": selection["reason"],
        "scores": state.get("scores", []),
    }
    while True:
        answer = interrupt(question)
        try:
            return _choice(state, answer)
        except ApprovalError as exc:
            question = {**question, "error": str(exc), "previous_answer": repr(answer)}


def approve(state: SaleState, runtime: Runtime[SaleContext]) -> dict[str, Any]:
    """Pause for approval when asked; apply a human override of the winner."""
    ctx = ctx_of(runtime)
    check_run_context(state, ctx)
    if not ctx.approve_before_execute:
        return {}
    selection = state["selection"]
    chosen = _ask(state)
    if chosen is None or chosen == selection["winner"]:
        emit(runtime, ApproveEvent(event="approve", winner=selection["winner"], overridden=False))
        return {"notes": [f"human approved winner {selection['winner']}"]}
    best = min((r for r in state.get("scores", []) if r["agent"] == chosen), key=lambda r: r["net"])
    strategy = next(b["strategy"] for b in state.get("bids", []) if b["agent"] == chosen and b["round"] == best["round"])
    new = SelectionInfo(
        winner=chosen, round=best["round"], strategy=strategy, net=best["net"], margin=0.0,
        runner_up=selection["winner"], provisional_winner=selection["provisional_winner"],
        reason=f"human override: {chosen} instead of {selection['winner']} (auction: {selection['reason']})",
    )
    emit(runtime, ApproveEvent(event="approve", winner=chosen, overridden=True))
    return {"selection": new, "notes": [f"human overrode the winner: {selection['winner']} -> {chosen}"]}
