"""The progress events of a run: what ``stream_mode="custom"`` carries, one declared type per event.

While the models work, the nodes send one dict per step on LangGraph's ``custom``
stream; its ``"event"`` key names it (:data:`EventName`) and says which of the
types below it is (:data:`SaleEvent`). Nodes send them with :func:`emit`; readers
(the CLI, :func:`~sale_graph.runner.run_auction`) narrow on ``event["event"]`` and
read the declared fields, so mypy catches a misspelt name or field on both sides.
:func:`describe` is the one line the ``sale run`` command prints for an event.
``docs/events.md`` lists the events, when each is sent, and their fields.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypeAlias, get_args

from typing_extensions import TypedDict

from sale_graph.state import Round

EventName: TypeAlias = Literal[
    "auction_start",
    "bid_start",
    "bid",
    "score",
    "jury",
    "select",
    "refine",
    "approve",
    "execute_start",
    "execute_step",
    "execute",
    "remember",
]
"""The name of each event, in the order a run first sends them."""


class AuctionStartEvent(TypedDict):
    """``prepare`` checked the task, the pool and the weights: the auction starts."""

    event: Literal["auction_start"]
    auction_id: str
    agents: list[str]  # the pool's agents, who all bid


class BidStartEvent(TypedDict):
    """An agent starts writing its bid (one per agent, in parallel)."""

    event: Literal["bid_start"]
    agent: str


class BidEvent(TypedDict):
    """An agent's original bid arrived (or failed).

    Every key is present; those a bid lacks are ``None`` (``error`` on a good bid,
    ``reasoning_tokens`` for a model that does not think...).
    """

    event: Literal["bid"]
    agent: str
    tokens: int  # |s|: tokens of the visible strategy
    reasoning_tokens: int | None  # generated tokens spent thinking
    entropy: float
    entropy_source: Literal["logprobs", "text"]
    status: Literal["ok", "error"]
    error: str | None
    truncated: bool | None  # the bid hit its token cap
    retries: list[str] | None  # one line per retried failure of the call


class ScoreEvent(TypedDict):
    """``score`` computed a bid's cost and entropy (one event per bid, before the jury)."""

    event: Literal["score"]
    agent: str
    round: Round
    cost: float
    entropy: float


class JuryEvent(TypedDict):
    """A judge scored a bid (or the score is missing: ``likert`` is ``None``, ``reason`` says why)."""

    event: Literal["jury"]
    judge: str
    bidder: str
    round: Round
    likert: float | None  # 1-5
    status: Literal["ok", "missing"]
    reason: str
    answer_format: str  # json_schema, json_object or text: how the score was asked for


class SelectEvent(TypedDict):
    """``select`` picked the winner, ``argmin (C - V)`` (again after a refinement round)."""

    event: Literal["select"]
    winner: str
    round: Round
    net: float  # the winner's C - V
    margin: float  # to the runner-up
    reason: str


class RefineEvent(TypedDict):
    """A cheaper agent's refinement finished (a refined bid, or ``skipped`` with the reason)."""

    event: Literal["refine"]
    agent: str
    status: Literal["ok", "error", "skipped"]
    reason: NotRequired[str]  # only when skipped: why (no memory, no past pairs...)
    pairs: NotRequired[int]  # contrastive pairs from past auctions shown to the agent
    tokens: NotRequired[int]  # |s| of the refined bid


class ApproveEvent(TypedDict):
    """A human answered the approval pause (``approve_before_execute``): the winner kept or overridden."""

    event: Literal["approve"]
    winner: str  # the agent that will execute
    overridden: bool


class ExecuteStartEvent(TypedDict):
    """The winner starts executing the task with its tools."""

    event: Literal["execute_start"]
    agent: str
    tools: list[str]


class ExecuteStepEvent(TypedDict):
    """One model call of the execution finished (step 0: the opening web search of a search task)."""

    event: Literal["execute_step"]
    agent: str
    step: int
    tool_calls: list[str]  # the tools it called
    output_tokens: int


class ExecuteEvent(TypedDict):
    """The execution ended."""

    event: Literal["execute"]
    agent: str  # who executed (the runner-up when the winner's endpoint failed)
    status: Literal["completed", "budget_exhausted", "error"]
    answer: str  # the first 200 characters
    detail: str  # why it stopped, when it did not complete
    outcome: Literal["passed", "failed", "unknown"]


class RememberEvent(TypedDict):
    """``remember`` stored the auction in the memory (or noted why not); the run ends."""

    event: Literal["remember"]
    auction_id: str | None
    notes: list[str]


SaleEvent: TypeAlias = (
    AuctionStartEvent
    | BidStartEvent
    | BidEvent
    | ScoreEvent
    | JuryEvent
    | SelectEvent
    | RefineEvent
    | ApproveEvent
    | ExecuteStartEvent
    | ExecuteStepEvent
    | ExecuteEvent
    | RememberEvent
)
"""Any progress event; ``event["event"]`` tells which."""

EVENT_TYPES: dict[EventName, type[Any]] = {
    "auction_start": AuctionStartEvent,
    "bid_start": BidStartEvent,
    "bid": BidEvent,
    "score": ScoreEvent,
    "jury": JuryEvent,
    "select": SelectEvent,
    "refine": RefineEvent,
    "approve": ApproveEvent,
    "execute_start": ExecuteStartEvent,
    "execute_step": ExecuteStepEvent,
    "execute": ExecuteEvent,
    "remember": RememberEvent,
}
"""Each event's declared type, by name."""

EVENT_NAMES: tuple[EventName, ...] = get_args(EventName)


def emit(runtime: Any, event: SaleEvent) -> None:
    """Send a progress event on the ``custom`` stream (no-op when nobody streams it).

    Args:
        runtime: the node's LangGraph runtime (its ``stream_writer``), or anything without one.
        event: the event, built with its declared type (``BidStartEvent(event="bid_start", agent=...)``).
    """
    writer = getattr(runtime, "stream_writer", None)
    if writer is not None:
        writer(event)


def describe(event: SaleEvent) -> str | None:
    """The line ``sale run`` prints for ``event``; ``None`` for the events it does not print.

    ``bid_start``, ``score``, ``approve`` and ``remember`` print nothing: the bid, the
    table and the notes that follow say the same.
    """
    if event["event"] == "auction_start":
        return f"auction {event['auction_id'][:8]}: {len(event['agents'])} agents bidding"
    if event["event"] == "bid":
        return _describe_bid(event)
    if event["event"] == "jury":
        score = f"{event['likert']:g}/5" if event.get("likert") is not None else f"missing ({event['reason']})"
        return f"jury: {event['judge']} scores {event['bidder']} ({event['round']}): {score}"
    if event["event"] == "select":
        return f"selected {event['winner']} ({event['round']}), C-V {event['net']:+.4f}, margin {event['margin']:.4f}"
    if event["event"] == "refine":
        return f"refine {event['agent']}: {event['status']}" + (f" ({event.get('reason')})" if event.get("reason") else "")
    if event["event"] == "execute_start":
        return f"{event['agent']} executes with tools: {', '.join(event['tools']) or 'none'}"
    if event["event"] == "execute_step":
        calls = f" -> {', '.join(event['tool_calls'])}" if event.get("tool_calls") else ""
        return f"  step {event['step']}: {event['output_tokens']} tokens{calls}"
    if event["event"] == "execute":
        return f"execution {event['status']}"
    return None


def _describe_bid(event: BidEvent) -> str:
    if event.get("status") != "ok":
        return f"bid from {event['agent']} FAILED {event.get('error')}"
    think = f" (+{event['reasoning_tokens']} thinking)" if event.get("reasoning_tokens") else ""
    cut = ", CUT at the cap" if event.get("truncated") else ""
    retried = f", {len(event['retries'] or [])} retried call(s)" if event.get("retries") else ""
    return (f"bid from {event['agent']}, {event['tokens']} tokens{think}, "
            f"H={event['entropy']:.3f} ({event['entropy_source']}){cut}{retried}")


__all__ = [
    "EVENT_NAMES",
    "EVENT_TYPES",
    "ApproveEvent",
    "AuctionStartEvent",
    "BidEvent",
    "BidStartEvent",
    "EventName",
    "ExecuteEvent",
    "ExecuteStartEvent",
    "ExecuteStepEvent",
    "JuryEvent",
    "RefineEvent",
    "RememberEvent",
    "SaleEvent",
    "ScoreEvent",
    "SelectEvent",
    "describe",
    "emit",
]
