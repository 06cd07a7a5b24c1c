"""``jury``: one judge scores one bid (fanned out with ``Send``: every agent judges every bid)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NotRequired

from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from sale_graph.context import SaleContext
from sale_graph.events import JuryEvent, emit
from sale_graph.jury.ask import FALLBACK, AnswerFormat, answer_format, is_format_rejection, remember_format, response_format
from sale_graph.jury.read import ParsedScore, parse_json_score, parse_judge_answer
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
    with_response_format,
)
from sale_graph.nodes._common import Node, ctx_of, dual_node, started_fingerprint
from sale_graph.nodes.replay import mark_replayed, replay_guard
from sale_graph.pool import AgentSpec
from sale_graph.prompts import jury_messages
from sale_graph.scoring import jury_gamma
from sale_graph.services import SaleServices
from sale_graph.state import JuryVote, Phase, Round, SaleState, UsageEntry


class JuryTask(TypedDict):
    """The payload of one ``Send('jury', ...)``."""

    auction_id: str
    judge: str
    bidder: str
    round: Round
    task: str
    strategy: str
    run_fingerprint: NotRequired[dict[str, Any]]  # the run's context as it started, checked when a resumed run asks again


def pending_jury(state: SaleState) -> list[JuryTask]:
    """Every (judge, bid) pair without a vote yet: all agents judge all successful bids."""
    done = {(v["judge"], v["bidder"], v["round"]) for v in state.get("votes", [])}
    started = started_fingerprint(state)
    out: list[JuryTask] = []
    for b in state.get("bids", []):
        if b["status"] != "ok":
            continue
        for judge in state.get("agents", []):
            if (judge, b["agent"], b["round"]) not in done:
                out.append(JuryTask(auction_id=state["auction_id"], judge=judge, bidder=b["agent"], round=b["round"],
                                    task=state["task"], strategy=b["strategy"]))
                if started:
                    out[-1]["run_fingerprint"] = started
    return out


Ask = tuple[AnswerFormat, CallResult | None, str, list[str]]
"""(format used, the answer or None, why the call failed, retried failures before the final failure)."""
PromptFor = Callable[[AnswerFormat], tuple[list[Any], dict[str, Any] | None]]
"""Builds a judge's messages and ``response_format`` for an answer format."""


def _next_format(judge: AgentSpec, fmt: AnswerFormat, exc: BaseException) -> AnswerFormat | None:
    """The format to try after the endpoint refused ``fmt``'s request shape (``auto`` agents only)."""
    if judge.structured_output == "auto" and fmt in FALLBACK and is_format_rejection(exc):
        nxt = FALLBACK[fmt]
        remember_format(judge, nxt)
        return nxt
    return None


def ask_judge(judge: AgentSpec, model: Any, prompt_for: PromptFor, run: Limiter | None) -> Ask:
    """One judge call in the richest answer format its endpoint accepts (detected once per endpoint)."""
    fmt = answer_format(judge)
    while True:
        messages, rf = prompt_for(fmt)
        try:
            result = call_model(with_response_format(model, rf), messages, agent=judge, phase="jury", run=run)
        except CALL_ERRORS as exc:
            nxt = _next_format(judge, fmt, exc)
            if nxt is None:
                return fmt, None, f"call failed: {describe_error(exc)}", retries_of(exc)
            fmt = nxt
            continue
        remember_format(judge, fmt)
        return fmt, result, "", result.retries


async def aask_judge(judge: AgentSpec, model: Any, prompt_for: PromptFor, run: Limiter | None) -> Ask:
    """:func:`ask_judge` for asyncio."""
    fmt = answer_format(judge)
    while True:
        messages, rf = prompt_for(fmt)
        try:
            result = await acall_model(with_response_format(model, rf), messages, agent=judge, phase="jury", run=run)
        except CALL_ERRORS as exc:
            nxt = _next_format(judge, fmt, exc)
            if nxt is None:
                return fmt, None, f"call failed: {describe_error(exc)}", retries_of(exc)
            fmt = nxt
            continue
        remember_format(judge, fmt)
        return fmt, result, "", result.retries


def parse_score(text: str, strategy: str, nonce: str, fmt: AnswerFormat) -> ParsedScore:
    """A judge's score from its answer in ``fmt``; a JSON request answered in text still counts (noted)."""
    if fmt == "text":
        return parse_judge_answer(text, strategy, nonce)
    parsed = parse_json_score(text)
    if parsed.likert is None:  # an endpoint that takes response_format but does not enforce it
        as_text = parse_judge_answer(text, strategy, nonce)
        if as_text.likert is not None:
            return ParsedScore(as_text.likert, f"ok (a text answer to a {fmt} request)")
        return ParsedScore(None, f"{parsed.reason}, and as text: {as_text.reason}")
    return parsed


def make_vote(judge: str, bidder: str, round_: Round, parsed: ParsedScore, fmt: AnswerFormat, result: CallResult | None,
              failure: str = "", retries: list[str] | None = None) -> JuryVote:
    """One judge's vote on one bid, missing (with the reason) when the call failed or the score is unusable."""
    if result is None:
        return JuryVote(judge=judge, bidder=bidder, round=round_, likert=None, gamma=None, status="missing",
                        reason=failure, raw="", answer_format=fmt, retries=list(retries or []))
    reason = parsed.reason
    if parsed.likert is None and result.truncated:
        reason += " (the answer was cut at its token cap: raise jury_max_tokens or turn thinking off for the auction)"
    return JuryVote(
        judge=judge, bidder=bidder, round=round_, likert=parsed.likert,
        gamma=jury_gamma(parsed.likert) if parsed.likert is not None else None,
        status="ok" if parsed.likert is not None else "missing", reason=reason, raw=result.text[:300],
        answer_format=fmt, truncated=result.truncated, retries=result.retries,
    )


def vote_notes(judge: str, retries: list[str], bidders: list[str]) -> list[str]:
    """A visible note when a judge's call needed retries (one note per call, naming the bids it scored)."""
    if not retries:
        return []
    return [f"jury call of {judge} on {', '.join(bidders)} needed {len(retries)} retried call(s): " + "; ".join(retries)]


def jury_ledger(phase: Phase, judge: AgentSpec, result: CallResult | None) -> list[UsageEntry]:
    """The ledger line of one judge call (none when the call failed before any answer)."""
    if result is None:
        return []
    return [ledger_entry(phase, judge, result.input_tokens, result.output_tokens, result.seconds, result.usage_reported)]


def make_jury_node(services: SaleServices) -> Node:
    """Build the ``jury`` node bound to ``services`` (a sync and an async implementation)."""

    def start(state: JuryTask, runtime: Runtime[SaleContext]) -> tuple[SaleContext, AgentSpec, PromptFor, dict[str, str], bool]:
        ctx = ctx_of(runtime)
        replayed = replay_guard(state.get("run_fingerprint"), ctx)  # a resumed run checks its context before paying
        judge = ctx.resolved_pool().get(state["judge"])
        nonces: dict[str, str] = {}

        def prompt_for(fmt: AnswerFormat) -> tuple[list[Any], dict[str, Any] | None]:
            prompt = jury_messages(state["task"], state["strategy"], json_answer=fmt != "text")
            nonces["nonce"] = prompt.nonce
            return list(prompt.messages), response_format(fmt)

        return ctx, judge, prompt_for, nonces, replayed

    def finish(state: JuryTask, runtime: Runtime[SaleContext], judge: AgentSpec, asked: Ask, nonce: str, replayed: bool) -> dict[str, Any]:
        fmt, result, failure, retries = asked
        parsed = parse_score(result.text, state["strategy"], nonce, fmt) if result is not None else ParsedScore(None, failure)
        vote = make_vote(judge.name, state["bidder"], state["round"], parsed, fmt, result, failure, retries)
        emit(runtime, JuryEvent(event="jury", judge=vote["judge"], bidder=vote["bidder"], round=vote["round"],
                                likert=vote["likert"], status=vote["status"], reason=vote["reason"], answer_format=fmt))
        phase: Phase = "refine" if state["round"] == "refined" else "jury"
        scored = f"{state['bidder']} ({state['round']})"
        update = {"votes": [vote], "ledger": jury_ledger(phase, judge, result), "notes": vote_notes(judge.name, retries, [scored])}
        return mark_replayed(update, f"the jury call of {judge.name} on {scored}") if replayed else update

    def jury(state: JuryTask, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Ask one judge for a 0-5 score; a failed or unusable answer is a *missing* vote, recorded."""
        ctx, judge, prompt_for, nonces, replayed = start(state, runtime)
        model = services.model_factory(judge, phase="jury", max_tokens=ctx.cap("jury", judge), logprobs=False)
        asked = ask_judge(judge, model, prompt_for, ctx.run_limiter(state["auction_id"]))
        return finish(state, runtime, judge, asked, nonces.get("nonce", ""), replayed)

    async def ajury(state: JuryTask, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Ask one judge for a 0-5 score (asyncio)."""
        ctx, judge, prompt_for, nonces, replayed = start(state, runtime)
        model = await abuild_model(services.model_factory, judge, phase="jury", max_tokens=ctx.cap("jury", judge), logprobs=False)
        asked = await aask_judge(judge, model, prompt_for, ctx.run_limiter(state["auction_id"]))
        return finish(state, runtime, judge, asked, nonces.get("nonce", ""), replayed)

    return dual_node(jury, ajury)
