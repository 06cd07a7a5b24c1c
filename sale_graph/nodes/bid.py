"""``bid``: one agent writes its strategy for the task (fanned out with ``Send``, one per agent)."""

from __future__ import annotations

import time
from typing import Any, Literal, NotRequired

from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from sale_graph.context import SaleContext
from sale_graph.events import BidEvent, BidStartEvent, emit
from sale_graph.llm import (
    CALL_ERRORS,
    CallResult,
    Limiter,
    abuild_model,
    acall_model,
    call_model,
    describe_error,
    ledger_entry,
    retries_of,
)
from sale_graph.nodes._common import Node, ctx_of, dual_node
from sale_graph.nodes.replay import mark_replayed, replay_guard
from sale_graph.pool import AgentSpec
from sale_graph.prompts import bid_messages
from sale_graph.scoring import logprob_entropy, text_entropy
from sale_graph.services import SaleServices
from sale_graph.state import Bid, Phase, Round, UsageEntry


class BidTask(TypedDict):
    """The payload of one ``Send('bid', ...)``."""

    auction_id: str
    agent: str
    task: str
    tool_names: list[str]
    run_fingerprint: NotRequired[dict[str, Any]]  # the run's context as it started, checked when a resumed run makes the bid again


def bid_entropy(text: str, top_logprobs: list[list[float]] | None) -> tuple[float, Literal["logprobs", "text"]]:
    """``H(s)`` and its source: the model's log-probs when present, else the text-level estimate."""
    if top_logprobs:
        return logprob_entropy(top_logprobs), "logprobs"
    return text_entropy(text), "text"


def _failed_bid(agent: AgentSpec, round_: Round, error: str, seconds: float, retries: list[str]) -> Bid:
    return Bid(agent=agent.name, round=round_, strategy="", tokens=0, entropy=0.0, entropy_source="text", entropy_text=0.0,
               status="error", error=error, seconds=round(seconds, 3), retries=retries)


def _empty_reason(result: CallResult, cap: int) -> str:
    if result.truncated and result.reasoning_tokens:
        return (f"the agent spent its whole bid cap ({cap} tokens) thinking and wrote no strategy; raise bid_max_tokens "
                "or turn thinking off for the auction (auction_extra_body in the pool)")
    return "the agent returned an empty strategy"


def _bid_from(agent: AgentSpec, round_: Round, phase: Phase, cap: int, result: CallResult) -> tuple[Bid, list[UsageEntry]]:
    """The bid and its ledger line from one answered call."""
    strategy = result.text.strip()
    entropy, source = bid_entropy(strategy, result.top_logprobs)
    bid = Bid(
        agent=agent.name, round=round_, strategy=strategy, tokens=result.visible_tokens,
        entropy=round(entropy, 6), entropy_source=source, entropy_text=round(text_entropy(strategy), 6),
        status="ok" if strategy else "error", seconds=round(result.seconds, 3),
        output_tokens=result.output_tokens, reasoning_tokens=result.reasoning_tokens, token_source=result.token_source,
        finish_reason=result.finish_reason, truncated=result.truncated, retries=result.retries,
    )
    if not strategy:
        bid["error"] = _empty_reason(result, cap)
    ledger = [ledger_entry(phase, agent, result.input_tokens, result.output_tokens, result.seconds, result.usage_reported)]
    return bid, ledger


def make_bid(
    agent: AgentSpec,
    messages: list[Any],
    round_: Round,
    phase: Phase,
    ctx: SaleContext,
    services: SaleServices,
    run: Limiter | None = None,
) -> tuple[Bid, list[UsageEntry]]:
    """Ask ``agent`` for a strategy; return the bid and its ledger entries (shared by bid and refine).

    The bid is the *visible* strategy: a reasoning model's thinking is removed and
    ``tokens`` (``|s|``) counts the visible text only, while the ledger bills every
    generated token. A failed call is a failed bid, recorded with its reason.
    ``run`` is the run's fan-out bound.
    """
    cap = ctx.cap("bid", agent)
    model = services.model_factory(agent, phase=phase, max_tokens=cap, logprobs=True)
    start = time.perf_counter()
    try:
        result = call_model(model, messages, agent=agent, phase=phase, run=run)
    except CALL_ERRORS as exc:
        return _failed_bid(agent, round_, describe_error(exc), time.perf_counter() - start, retries_of(exc)), []
    return _bid_from(agent, round_, phase, cap, result)


async def amake_bid(
    agent: AgentSpec,
    messages: list[Any],
    round_: Round,
    phase: Phase,
    ctx: SaleContext,
    services: SaleServices,
    run: Limiter | None = None,
) -> tuple[Bid, list[UsageEntry]]:
    """:func:`make_bid` for asyncio (the model is built off the loop)."""
    cap = ctx.cap("bid", agent)
    model = await abuild_model(services.model_factory, agent, phase=phase, max_tokens=cap, logprobs=True)
    start = time.perf_counter()
    try:
        result = await acall_model(model, messages, agent=agent, phase=phase, run=run)
    except CALL_ERRORS as exc:
        return _failed_bid(agent, round_, describe_error(exc), time.perf_counter() - start, retries_of(exc)), []
    return _bid_from(agent, round_, phase, cap, result)


def bid_notes(bid: Bid) -> list[str]:
    """Visible notes for a bid: failure, truncation at the cap, retried calls."""
    notes = []
    if bid["status"] != "ok":
        notes.append(f"{bid['round']} bid of {bid['agent']} failed: {bid.get('error', '?')}")
    elif bid.get("truncated"):
        notes.append(f"{bid['round']} bid of {bid['agent']} was cut at its token cap (finish_reason=length)")
    if bid.get("retries"):
        notes.append(f"{bid['round']} bid of {bid['agent']} needed {len(bid['retries'])} retr{'y' if len(bid['retries']) == 1 else 'ies'}: "
                     + "; ".join(bid["retries"]))
    return notes


def bid_event(bid: Bid) -> BidEvent:
    """The ``bid`` progress event of a bid: its size, entropy and status (every key present, ``None`` when absent)."""
    return BidEvent(
        event="bid", agent=bid["agent"], tokens=bid["tokens"], reasoning_tokens=bid.get("reasoning_tokens"),
        entropy=bid["entropy"], entropy_source=bid["entropy_source"], status=bid["status"], error=bid.get("error"),
        truncated=bid.get("truncated"), retries=bid.get("retries"),
    )


def make_bid_node(services: SaleServices) -> Node:
    """Build the ``bid`` node bound to ``services`` (a sync and an async implementation)."""

    def start(state: BidTask, runtime: Runtime[SaleContext]) -> tuple[SaleContext, AgentSpec, list[Any], bool]:
        ctx = ctx_of(runtime)
        replayed = replay_guard(state.get("run_fingerprint"), ctx)  # a resumed run checks its context before paying
        agent = ctx.resolved_pool().get(state["agent"])
        emit(runtime, BidStartEvent(event="bid_start", agent=agent.name))
        return ctx, agent, bid_messages(state["task"], state.get("tool_names", [])), replayed

    def finish(runtime: Runtime[SaleContext], replayed: bool, new_bid: Bid, ledger: list[UsageEntry]) -> dict[str, Any]:
        emit(runtime, bid_event(new_bid))
        update = {"bids": [new_bid], "ledger": ledger, "notes": bid_notes(new_bid)}
        return mark_replayed(update, f"the original bid of {new_bid['agent']}") if replayed else update

    def bid(state: BidTask, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Collect one agent's original bid."""
        ctx, agent, messages, replayed = start(state, runtime)
        run = ctx.run_limiter(state["auction_id"])
        return finish(runtime, replayed, *make_bid(agent, messages, "original", "bid", ctx, services, run))

    async def abid(state: BidTask, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Collect one agent's original bid (asyncio)."""
        ctx, agent, messages, replayed = start(state, runtime)
        run = ctx.run_limiter(state["auction_id"])
        return finish(runtime, replayed, *await amake_bid(agent, messages, "original", "bid", ctx, services, run))

    return dual_node(bid, abid)
