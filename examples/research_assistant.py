"""Way 1, shape (b): an app whose answering step is the SALE auction, with its own schema.

A small research assistant, served by ``langgraph dev`` as ``research_assistant``.

The assistant has a state of its own (``question``, ``notes``, ``final_report``...)
that shares no key with the auction. Its answering step is the SALE auction,
wrapped with :func:`sale_graph.sale_as_node`: the question is mapped to the
auction's ``task``, and the auction's answer, winner and cost are mapped back::

    START -> frame -> answer (SALE: bid, jury, select, execute, remember) -> report -> END

``frame`` turns the question into a task for the agents (and picks a domain),
``report`` writes the final report: the answer, who answered and why, and what the
answer and the auction cost. Run settings are the auction's
(:class:`~sale_graph.context.SaleContext`), passed as the run's ``context``.

``graph`` is compiled without a checkpointer for ``langgraph dev`` (the server adds
persistence); :func:`build_research_assistant` returns the uncompiled graph for
apps and tests that bring their own checkpointer or fake models.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, NotRequired

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from sale_graph import SaleContext, SaleOutput, sale_as_node

_CODE_HINTS = ("def ", "function", "python", "implement", "write code", "algorithm")


class ResearchInput(TypedDict):
    """What a user gives the assistant."""

    question: str


class ResearchState(ResearchInput):
    """The assistant's own state; none of its keys is shared with the auction."""

    task: NotRequired[str]
    domain: NotRequired[str]
    notes: NotRequired[Annotated[list[str], operator.add]]
    draft_answer: NotRequired[str]
    answered_by: NotRequired[str]
    why: NotRequired[str]
    auction: NotRequired[dict[str, Any]]
    final_report: NotRequired[str]


class ResearchOutput(TypedDict):
    """What the assistant returns."""

    question: str
    draft_answer: str
    answered_by: str
    notes: list[str]
    final_report: str


def frame(state: ResearchState) -> dict[str, Any]:
    """Turn the user's question into a task for the agents and guess its domain."""
    question = state["question"].strip()
    if not question:
        raise ValueError("the research assistant needs a non-empty 'question'")
    domain = "coding" if any(h in question.lower() for h in _CODE_HINTS) else "search"
    task = f"{question}\nAnswer precisely and briefly; say which facts the answer rests on."
    return {"task": task, "domain": domain, "notes": [f"framed the question as a {domain} task"]}


def _to_sale(state: ResearchState) -> dict[str, Any]:
    return {"task": state["task"], "domain": state.get("domain", "search")}


def _from_sale(out: SaleOutput) -> dict[str, Any]:
    ledger = out.get("ledger", [])
    auction_usd = sum(e["cost_usd"] for e in ledger if e["phase"] != "execute")
    total_usd = sum(e["cost_usd"] for e in ledger)
    tokens = sum(e["input_tokens"] + e["output_tokens"] for e in ledger)
    selection = out["selection"]
    execution = out.get("execution", {})
    return {
        "draft_answer": out.get("answer", ""),
        "answered_by": selection["winner"],
        "why": selection["reason"],
        "auction": {
            "auction_id": out["auction_id"],
            "bidders": sorted({b["agent"] for b in out.get("bids", [])}),
            "votes": len(out.get("votes", [])),
            "execution_status": execution.get("status", "unknown"),
            "tokens": tokens,
            "auction_usd": auction_usd,
            "total_usd": total_usd,
        },
        "notes": [f"SALE auction {out['auction_id'][:8]}: {selection['winner']} won ({selection['reason']})"],
    }


def report(state: ResearchState) -> dict[str, Any]:
    """Write the final report from the auction's result."""
    a = state.get("auction", {})
    answer = state.get("draft_answer") or "(no answer: the execution stopped early)"
    lines = [
        f"Question: {state['question']}",
        f"Answer: {answer}",
        f"Answered by: {state.get('answered_by', '?')} (chosen by a SALE auction among {', '.join(a.get('bidders', []))})",
        f"Why: {state.get('why', '')}",
        f"Execution: {a.get('execution_status', 'unknown')}; {a.get('tokens', 0)} tokens, "
        f"${a.get('total_usd', 0.0):.6f} in all, of which the auction ${a.get('auction_usd', 0.0):.6f}",
    ]
    return {"final_report": "\n".join(lines), "notes": ["wrote the final report"]}


def build_research_assistant(**build_kwargs: Any) -> StateGraph[ResearchState, SaleContext, ResearchInput, ResearchOutput]:
    """The research-assistant graph, uncompiled; ``build_kwargs`` go to ``build_sale_graph``."""
    g = StateGraph(ResearchState, context_schema=SaleContext, input_schema=ResearchInput, output_schema=ResearchOutput)
    g.add_node("frame", frame)
    g.add_node("answer", sale_as_node(_to_sale, _from_sale, **build_kwargs))
    g.add_node("report", report)
    g.add_edge(START, "frame")
    g.add_edge("frame", "answer")
    g.add_edge("answer", "report")
    g.add_edge("report", END)
    return g


graph = build_research_assistant().compile(name="research_assistant")

__all__ = ["ResearchInput", "ResearchOutput", "ResearchState", "build_research_assistant", "graph"]
