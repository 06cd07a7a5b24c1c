"""``bid``: one agent writes its strategy for the task (fanned out with ``Send``, one per agent)."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from sale_graph.context import SaleContext
from sale_graph.llm import call_model, ledger_entry
from sale_graph.nodes._common import Node, CALL_ERRORS, ctx_of, describe_error, emit
from sale_graph.pool import AgentSpec
from sale_graph.prompts import bid_messages
from sale_graph.scoring import logprob_entropy, text_entropy
from sale_graph.services import SaleServices
from sale_graph.state import Bid, Round


class BidTask(TypedDict):
    """The payload of one ``Send('bid', ...)``."""

    agent: str
    task: str
    tool_names: list[str]


def bid_entropy(text: str, top_logprobs: list[list[float]] | None) -> tuple[float, str]:
    """``H(s)`` and its source: the model's log-probs when present, else the text-level estimate."""
    if top_logprobs:
        return logprob_entropy(top_logprobs), "logprobs"
    return text_entropy(text), "text"


def make_bid(
    agent: AgentSpec,
    messages: list[Any],
    round_: Round,
    phase: str,
    ctx: SaleContext,
    services: SaleServices,
) -> tuple[Bid, list[Any]]:
    """Ask ``agent`` for a strategy; return the bid and its ledger entries (shared by bid and refine)."""
    model = services.model_factory(agent, phase=phase, max_tokens=ctx.bid_max_tokens, logprobs=True)
    start = time.perf_counter()
    try:
        result = call_model(model, messages, limiter=ctx.limiter())
    except CALL_ERRORS as exc:
        bid = Bid(agent=agent.name, round=round_, strategy="", tokens=0, entropy=0.0, entropy_source="text", entropy_text=0.0,
                  status="error", error=describe_error(exc), seconds=round(time.perf_counter() - start, 3))
        return bid, []
    strategy = result.text.strip()
    entropy, source = bid_entropy(strategy, result.top_logprobs)
    bid = Bid(
        agent=agent.name,
        round=round_,
        strategy=strategy,
        tokens=result.output_tokens,
        entropy=round(entropy, 6),
        entropy_source=source,  # type: ignore[typeddict-item]
        entropy_text=round(text_entropy(strategy), 6),
        status="ok" if strategy else "error",
        seconds=round(result.seconds, 3),
    )
    if not strategy:
        bid["error"] = "the agent returned an empty strategy"
    return bid, [ledger_entry(phase, agent, result.input_tokens, result.output_tokens, result.seconds, result.usage_reported)]  # type: ignore[arg-type]


def make_bid_node(services: SaleServices) -> Node:
    """Build the ``bid`` node bound to ``services``."""

    def bid(state: BidTask, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Collect one agent's original bid."""
        ctx = ctx_of(runtime)
        agent = ctx.resolved_pool().get(state["agent"])
        emit(runtime, "bid_start", agent=agent.name)
        new_bid, ledger = make_bid(agent, bid_messages(state["task"], state.get("tool_names", [])), "original", "bid", ctx, services)
        emit(runtime, "bid", **{k: new_bid.get(k) for k in ("agent", "tokens", "entropy", "entropy_source", "status", "error")})
        notes = [f"bid of {agent.name} failed: {new_bid['error']}"] if new_bid["status"] != "ok" else []
        return {"bids": [new_bid], "ledger": ledger, "notes": notes}

    return bid
