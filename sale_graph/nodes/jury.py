"""``jury``: one judge scores one bid (fanned out with ``Send``: every agent judges every bid)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from sale_graph.context import SaleContext
from sale_graph.judge_answers import parse_judge_answer
from sale_graph.llm import call_model, ledger_entry
from sale_graph.nodes._common import Node, CALL_ERRORS, ctx_of, describe_error, emit
from sale_graph.prompts import jury_messages
from sale_graph.scoring import jury_gamma
from sale_graph.services import SaleServices
from sale_graph.state import JuryVote, Round, SaleState


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


def make_jury_node(services: SaleServices) -> Node:
    """Build the ``jury`` node bound to ``services``."""

    def jury(state: JuryTask, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Ask one judge for a 0-5 score; a failed or unusable answer is a *missing* vote, recorded."""
        ctx = ctx_of(runtime)
        judge = ctx.resolved_pool().get(state["judge"])
        prompt = jury_messages(state["task"], state["strategy"])
        model = services.model_factory(judge, phase="jury", max_tokens=ctx.jury_max_tokens, logprobs=False)
        phase = "refine" if state["round"] == "refined" else "jury"
        ledger = []
        try:
            result = call_model(model, prompt.messages, limiter=ctx.limiter())
        except CALL_ERRORS as exc:
            vote = JuryVote(judge=judge.name, bidder=state["bidder"], round=state["round"], likert=None, gamma=None,
                            status="missing", reason=f"call failed: {describe_error(exc)}", raw="")
        else:
            ledger.append(ledger_entry(phase, judge, result.input_tokens, result.output_tokens, result.seconds, result.usage_reported))  # type: ignore[arg-type]
            parsed = parse_judge_answer(result.text, state["strategy"], prompt.nonce)
            ok = parsed.likert is not None
            vote = JuryVote(
                judge=judge.name, bidder=state["bidder"], round=state["round"], likert=parsed.likert,
                gamma=jury_gamma(parsed.likert) if ok else None,  # type: ignore[arg-type]
                status="ok" if ok else "missing", reason=parsed.reason, raw=result.text[:300],
            )
        emit(runtime, "jury", judge=vote["judge"], bidder=vote["bidder"], round=vote["round"], likert=vote["likert"], status=vote["status"], reason=vote["reason"])
        return {"votes": [vote], "ledger": ledger}

    return jury
