"""``jury``: one judge scores one bid (fanned out with ``Send``: every agent judges every bid)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from sale_graph.context import SaleContext
from sale_graph.judge_answers import ParsedScore, parse_judge_answer
from sale_graph.jury_format import (
    FALLBACK,
    AnswerFormat,
    answer_format,
    is_format_rejection,
    parse_json_score,
    remember_format,
    response_format,
)
from sale_graph.llm import CallResult, call_model, ledger_entry
from sale_graph.nodes._common import CALL_ERRORS, Node, ctx_of, describe_error, emit
from sale_graph.pool import AgentSpec
from sale_graph.prompts import jury_messages
from sale_graph.scoring import jury_gamma
from sale_graph.services import SaleServices
from sale_graph.state import JuryVote, Phase, Round, SaleState, UsageEntry


class JuryTask(TypedDict):
    """The payload of one ``Send('jury', ...)``."""

    judge: str
    bidder: str
    round: Round
    task: str
    strategy: str


def pending_jury(state: SaleState) -> list[JuryTask]:
    """Every (judge, bid) pair without a vote yet: all agents judge all successful bids."""
    done = {(v["judge"], v["bidder"], v["round"]) for v in state.get("votes", [])}
    out: list[JuryTask] = []
    for b in state.get("bids", []):
        if b["status"] != "ok":
            continue
        for judge in state.get("agents", []):
            if (judge, b["agent"], b["round"]) not in done:
                out.append(JuryTask(judge=judge, bidder=b["agent"], round=b["round"], task=state["task"], strategy=b["strategy"]))
    return out


def _vote(state: JuryTask, judge: AgentSpec, result: CallResult, nonce: str, fmt: AnswerFormat) -> JuryVote:
    if fmt == "text":
        parsed = parse_judge_answer(result.text, state["strategy"], nonce)
    else:
        parsed = parse_json_score(result.text)
        if parsed.likert is None:  # an endpoint that takes response_format but does not enforce it
            as_text = parse_judge_answer(result.text, state["strategy"], nonce)
            if as_text.likert is not None:
                parsed = ParsedScore(as_text.likert, f"ok (a text answer to a {fmt} request)")
            else:
                parsed = ParsedScore(None, f"{parsed.reason}, and as text: {as_text.reason}")
    ok = parsed.likert is not None
    reason = parsed.reason
    if not ok and result.truncated:
        reason += " (the answer was cut at its token cap: raise jury_max_tokens or turn thinking off for the auction)"
    return JuryVote(
        judge=judge.name, bidder=state["bidder"], round=state["round"], likert=parsed.likert,
        gamma=jury_gamma(parsed.likert) if parsed.likert is not None else None,
        status="ok" if ok else "missing", reason=reason, raw=result.text[:300],
        answer_format=fmt, truncated=result.truncated, retries=result.retries,
    )


def judge_bid(state: JuryTask, judge: AgentSpec, ctx: SaleContext, services: SaleServices) -> tuple[JuryVote, list[UsageEntry]]:
    """One judge's vote on one bid, asked in the richest answer format the judge's endpoint accepts.

    A refused ``response_format`` (detected, for ``structured_output = "auto"``) falls
    back to the next format and is remembered for the endpoint; a failed call or an
    unusable answer is a *missing* vote with the reason.
    """
    phase: Phase = "refine" if state["round"] == "refined" else "jury"
    model = services.model_factory(judge, phase="jury", max_tokens=ctx.cap("jury", judge), logprobs=False)
    fmt = answer_format(judge)
    while True:
        prompt = jury_messages(state["task"], state["strategy"], json_answer=fmt != "text")
        extra = {"response_format": response_format(fmt)} if fmt != "text" else {}
        try:
            result = call_model(model, prompt.messages, agent=judge, phase="jury", limiter=ctx.limiter(), **extra)
        except CALL_ERRORS as exc:
            if judge.structured_output == "auto" and fmt in FALLBACK and is_format_rejection(exc):
                fmt = FALLBACK[fmt]
                remember_format(judge, fmt)
                continue
            vote = JuryVote(judge=judge.name, bidder=state["bidder"], round=state["round"], likert=None, gamma=None,
                            status="missing", reason=f"call failed: {describe_error(exc)}", raw="", answer_format=fmt)
            return vote, []
        remember_format(judge, fmt)
        ledger = [ledger_entry(phase, judge, result.input_tokens, result.output_tokens, result.seconds, result.usage_reported)]
        return _vote(state, judge, result, prompt.nonce, fmt), ledger


def make_jury_node(services: SaleServices) -> Node:
    """Build the ``jury`` node bound to ``services``."""

    def jury(state: JuryTask, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Ask one judge for a 0-5 score; a failed or unusable answer is a *missing* vote, recorded."""
        ctx = ctx_of(runtime)
        judge = ctx.resolved_pool().get(state["judge"])
        vote, ledger = judge_bid(state, judge, ctx, services)
        emit(runtime, "jury", judge=vote["judge"], bidder=vote["bidder"], round=vote["round"], likert=vote["likert"],
             status=vote["status"], reason=vote["reason"], answer_format=vote.get("answer_format"))
        return {"votes": [vote], "ledger": ledger}

    return jury
