"""The graph state: everything one auction produced, in plain JSON-ready dicts.

Lists written by parallel branches (bids, jury votes, ledger entries, notes)
use :func:`accumulate`, which appends. The ``prepare`` node replaces them
(LangGraph's ``Overwrite``) so that a second run on the same thread (a
checkpointer, LangGraph Studio) starts a fresh auction instead of mixing in the
previous one's bids; the ``remember`` node clears the per-task input keys at the
end of a run so the next task on the thread never inherits them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

Phase = Literal["bid", "jury", "refine", "execute"]
Round = Literal["original", "refined"]


def accumulate(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    """Reducer: append ``right`` to ``left``; ``None`` on the right empties the list."""
    if right is None:
        return []
    return (left or []) + list(right)


def merge_refinement(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer for the refinement record: parallel refine branches each add their agent's entry.

    Top-level keys of ``right`` replace those of ``left`` except ``agents``,
    which is merged per agent. ``None`` on the right empties the record.
    """
    if right is None:
        return {}
    merged = dict(left or {})
    for key, value in right.items():
        if key == "agents":
            merged["agents"] = {**merged.get("agents", {}), **value}
        else:
            merged[key] = value
    return merged


class Bid(TypedDict):
    """One strategy written by one agent (an original bid or a refined one)."""

    agent: str
    round: Round
    strategy: str  # the visible strategy: reasoning removed
    tokens: int  # |s|: tokens of the visible strategy (reasoning never counts)
    entropy: float
    entropy_source: Literal["logprobs", "text"]
    entropy_text: float  # the text-level estimate, always computed, for auctions with mixed sources
    status: Literal["ok", "error"]
    error: NotRequired[str]
    seconds: float
    output_tokens: NotRequired[int]  # every generated token, reasoning included (what the ledger bills)
    reasoning_tokens: NotRequired[int]  # generated tokens spent thinking
    token_source: NotRequired[str]  # how `tokens` is known: usage, logprobs or estimate
    finish_reason: NotRequired[str | None]
    truncated: NotRequired[bool]  # the generation hit its token cap (finish_reason == "length")
    retries: NotRequired[list[str]]  # one line per retried failure of the call


class JuryVote(TypedDict):
    """One judge's score of one bid. ``likert`` is ``None`` when the score is missing."""

    judge: str
    bidder: str
    round: Round
    likert: float | None
    gamma: float | None
    status: Literal["ok", "missing"]
    reason: str  # why missing: unparseable, out of range, refused, timeout, error
    raw: str  # the judge's answer, truncated
    answer_format: NotRequired[str]  # json_schema, json_object or text: how the score was asked for
    truncated: NotRequired[bool]  # the answer hit its token cap
    retries: NotRequired[list[str]]


class ScoreRow(TypedDict):
    """A bid's line in the auction table."""

    agent: str
    round: Round
    price: float
    tokens: int
    cost: float
    entropy: float
    entropy_source: str
    jury: dict[str, float | None]  # judge -> gamma (None = missing)
    missing_judges: list[str]
    value: float
    net: float  # C - V: lower wins
    note: str


class SelectionInfo(TypedDict):
    """Who won, by how much and why."""

    winner: str
    round: Round
    strategy: str
    net: float
    margin: float
    runner_up: str | None
    provisional_winner: str
    reason: str


#: How a task's execution turned out: graded against its tests or gold answer, or not known.
Outcome = Literal["passed", "failed", "unknown"]


class ToolUse(TypedDict):
    """One tool call of the executor and what it returned (the result cut to a few hundred characters)."""

    tool: str
    args: dict[str, Any]
    result: str  # the first TOOL_RESULT_CHARS characters of what the tool returned
    result_chars: int  # the whole result's length


class Execution(TypedDict):
    """What the winner did with the task."""

    agent: str
    answer: str
    status: Literal["completed", "budget_exhausted", "error"]
    detail: str
    steps: int
    tool_calls: int
    seconds: float
    truncated_steps: NotRequired[int]  # model steps that hit their token cap
    fallback_from: NotRequired[str]  # the winner whose endpoint failed; this agent (the runner-up) executed instead
    retries: NotRequired[list[str]]
    tools: NotRequired[list[str]]  # the tools the executor had
    tool_uses: NotRequired[list[ToolUse]]  # every tool call, in order, with its (abridged) result
    outcome: NotRequired[Outcome]
    outcome_detail: NotRequired[str]
    # what the outcome rests on: "tests" (the task's tests ran in the sandbox on the final code), "gold"
    # (the gold answers), "none" (nothing was checked: no tests or gold, no code in the answer, the run stopped)
    graded_by: NotRequired[Literal["tests", "gold", "none"]]


class UsageEntry(TypedDict):
    """Tokens, dollars and seconds of one model call, by phase and agent."""

    phase: Phase
    agent: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    seconds: float
    estimated: NotRequired[bool]  # the endpoint reported no usage: counts estimated from the text
    # made again by a resumed run: the task had not finished when the run stopped, and if the call was in
    # flight then it was paid twice (the lost first call is not in the ledger; see sale_graph/nodes/replay.py)
    replayed: NotRequired[bool]


class SaleInput(TypedDict):
    """What a caller gives the auction: the task and, optionally, how to check the answer.

    Chat-shaped input works too: with ``messages`` and no ``task`` (or a thread whose last
    message is a new human turn), the task is that turn in its conversation (the last human
    message as the request, the earlier turns condensed: :mod:`sale_graph.conversation`),
    and the answer is appended to ``messages`` as an ``AIMessage`` named after the winner.
    """

    task: NotRequired[str]
    messages: NotRequired[Annotated[list[AnyMessage], add_messages]]
    request_id: NotRequired[str | None]  # optional caller-chosen auction id (idempotent memory writes)
    task_id: NotRequired[str]
    domain: NotRequired[str]  # "search", "coding" or free text
    gold: NotRequired[list[str]]  # accepted answers (deep search)
    tests: NotRequired[str]  # unit tests (coding)
    entry_point: NotRequired[str]


class SaleState(SaleInput):
    """The whole auction: input, bids, votes, table, selection, execution and ledger."""

    auction_id: NotRequired[str]
    agents: NotRequired[list[str]]
    tool_names: NotRequired[list[str]]  # the executor's tools, named in the bid prompt
    bids: NotRequired[Annotated[list[Bid], accumulate]]
    votes: NotRequired[Annotated[list[JuryVote], accumulate]]
    scores: NotRequired[list[ScoreRow]]
    selection: NotRequired[SelectionInfo]
    refinement: NotRequired[Annotated[dict[str, Any], merge_refinement]]
    execution: NotRequired[Execution]
    answer: NotRequired[str]
    ledger: NotRequired[Annotated[list[UsageEntry], accumulate]]
    notes: NotRequired[Annotated[list[str], accumulate]]
    entropy_policy: NotRequired[str]  # how bids' entropies were put on one scale
    degraded: NotRequired[dict[str, Any] | None]  # set when the auction went on below the jury quorum
    run_context: NotRequired[dict[str, Any]]  # what the run started with, checked on resume
    memory_error: NotRequired[str]  # the auction memory failed after execution (the answer is still returned)


class SaleOutput(TypedDict):
    """What the auction returns to a parent graph."""

    task: str
    messages: NotRequired[Annotated[list[AnyMessage], add_messages]]
    request_id: NotRequired[str | None]  # always None after a run: a parent sharing the key gets it cleared
    auction_id: str
    answer: str
    selection: SelectionInfo
    scores: list[ScoreRow]
    execution: Execution
    ledger: list[UsageEntry]
    bids: list[Bid]
    votes: list[JuryVote]
    refinement: dict[str, Any]
    notes: list[str]
    entropy_policy: NotRequired[str]
    degraded: NotRequired[dict[str, Any] | None]
    run_context: NotRequired[dict[str, Any]]  # the pool (its source: file, or embedded backend and slots), agents, weights
    memory_error: NotRequired[str]
