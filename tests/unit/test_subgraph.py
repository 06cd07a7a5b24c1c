"""Way 1, the auction as a subgraph of a parent graph: shared keys, function node, streaming, approval (fake models)."""

from __future__ import annotations

import operator
import time
from dataclasses import dataclass
from typing import Annotated, Any, NotRequired

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command
from typing_extensions import TypedDict

from sale_graph import SaleContext
from sale_graph.integrations.subgraph import SHARED_INPUT_KEYS, SHARED_OUTPUT_KEYS, sale_as_node, sale_subgraph, shared_key_problems
from tests.fakes import FakeFactory, pool_of, prompt_text

POOL = pool_of(("small", 0.05), ("large", 0.36))
CAPITALS = {"Australia": "Canberra", "France": "Paris", "Japan": "Tokyo"}


def strategies(agent: str, messages: Any) -> str:
    return {"small": "1. search the capital 2. answer", "large": "1. search 2. verify with a second source 3. answer concisely"}[agent]


def fair_judge(agent: str, messages: Any) -> str:
    return "SCORE: 5" if "verify" in prompt_text(messages) else "SCORE: 2"


def executor(agent: str, messages: Any) -> str:
    text = prompt_text(messages)
    country = next(c for c in CAPITALS if c in text)
    return f"Final Answer: {CAPITALS[country]}"


def factory(delay_s: float = 0.0) -> FakeFactory:
    return FakeFactory({"bid": strategies, "jury": fair_judge, "execute": executor}, delay_s=delay_s)


def context(**kw: Any) -> SaleContext:
    return SaleContext(pool=POOL, check_endpoints=False, use_memory=False, **kw)


def phases(f: FakeFactory) -> list[str]:
    return [phase for _, phase in f.calls]


# ---------------------------------------------------------------- way 1, shape (a): shared keys


class SharedParent(TypedDict):
    """A parent that shares ``task``, ``answer`` and ``selection`` with the auction and keeps a history."""

    task: str
    answer: NotRequired[str]
    selection: NotRequired[dict[str, Any]]
    history: NotRequired[Annotated[list[dict[str, Any]], operator.add]]


def record(state: SharedParent) -> dict[str, Any]:
    return {"history": [{"task": state["task"], "answer": state["answer"], "winner": state["selection"]["winner"]}]}


def shared_parent(f: FakeFactory) -> Any:
    g = StateGraph(SharedParent, context_schema=SaleContext)
    g.add_node("sale", sale_subgraph(model_factory=f, tools=[]))
    g.add_node("record", record)
    g.add_edge(START, "sale")
    g.add_edge("sale", "record")
    g.add_edge("record", END)
    return g.compile(checkpointer=InMemorySaver())


def test_shared_key_lists_match_the_schemas() -> None:
    assert SHARED_INPUT_KEYS[0] == "task" and {"request_id", "domain", "gold", "tests", "entry_point"} <= set(SHARED_INPUT_KEYS)
    assert {"auction_id", "answer", "selection", "bids", "votes", "ledger", "scores", "execution"} <= set(SHARED_OUTPUT_KEYS)
    assert shared_key_problems(SharedParent) == []


def test_shared_key_problems_are_reported() -> None:
    from sale_graph.state import SaleState

    class NoTask(TypedDict):
        question: str

    assert any("no 'task'" in p for p in shared_key_problems(NoTask))
    problems = shared_key_problems(SaleState)
    assert any("'bids' has a reducer" in p for p in problems)
    assert not any("'request_id'" in p for p in problems)


def test_subgraph_twice_on_one_parent_thread() -> None:
    f = factory()
    app = shared_parent(f)
    cfg = {"configurable": {"thread_id": "two-runs"}}
    first = app.invoke({"task": "What is the capital of Australia?"}, cfg, context=context())
    second = app.invoke({"task": "What is the capital of France?"}, cfg, context=context())

    assert first["answer"] == "Canberra" and second["answer"] == "Paris"
    assert second["history"] == [
        {"task": "What is the capital of Australia?", "answer": "Canberra", "winner": "large"},
        {"task": "What is the capital of France?", "answer": "Paris", "winner": "large"},
    ]
    # The parent's checkpointer holds both runs; keys the parent does not declare were not written.
    saved = app.get_state(cfg).values
    assert len(saved["history"]) == 2 and "bids" not in saved and "ledger" not in saved
    assert len(list(app.get_state_history(cfg))) >= 6
    # Each run is a whole fresh auction: 2 bids + 4 votes + 1 execution, twice.
    assert sorted(phases(f)) == sorted(["bid"] * 4 + ["jury"] * 8 + ["execute"] * 2)


def test_shared_auction_id_is_fresh_per_run() -> None:
    class WithId(SharedParent):
        auction_id: NotRequired[str]

    app = _single_sale_parent(WithId)
    cfg = {"configurable": {"thread_id": "ids"}}
    first = app.invoke({"task": "What is the capital of Australia?"}, cfg, context=context())
    second = app.invoke({"task": "What is the capital of France?"}, cfg, context=context())
    assert first["auction_id"] != second["auction_id"]


def test_shared_request_id_is_not_reused_by_the_next_run() -> None:
    class WithRequest(SharedParent):
        request_id: NotRequired[str | None]
        auction_id: NotRequired[str]

    app = _single_sale_parent(WithRequest)
    cfg = {"configurable": {"thread_id": "req"}}
    first = app.invoke({"task": "What is the capital of Australia?", "request_id": "req-1"}, cfg, context=context())
    assert first["auction_id"] == "req-1"
    second = app.invoke({"task": "What is the capital of France?"}, cfg, context=context())
    assert second["auction_id"] != "req-1"


def _single_sale_parent(schema: type) -> Any:
    g = StateGraph(schema, context_schema=SaleContext)
    g.add_node("sale", sale_subgraph(model_factory=factory(), tools=[]))
    g.add_edge(START, "sale")
    g.add_edge("sale", END)
    return g.compile(checkpointer=InMemorySaver())


# ---------------------------------------------------------------- way 1, shape (b): function node


class AskState(TypedDict):
    question: str
    results: NotRequired[Annotated[list[dict[str, Any]], operator.add]]


@dataclass
class AppContext:
    """A parent context schema of its own, which the auction's settings are derived from."""

    tenant: str
    max_bid_tokens: int = 64


def to_sale(state: AskState) -> dict[str, Any]:
    return {"task": state["question"], "domain": "search"}


def from_sale(out: Any) -> dict[str, Any]:
    return {"results": [{
        "auction_id": out["auction_id"],
        "answer": out["answer"],
        "winner": out["selection"]["winner"],
        "bidders": sorted(b["agent"] for b in out["bids"]),
        "usd": sum(e["cost_usd"] for e in out["ledger"]),
    }]}


def test_function_node_with_its_own_schema_and_context() -> None:
    f = factory()
    seen: list[Any] = []

    def derive(app_ctx: AppContext) -> SaleContext:
        seen.append(app_ctx)
        return context(bid_max_tokens=app_ctx.max_bid_tokens)

    g = StateGraph(AskState, context_schema=AppContext)
    g.add_node("ask", sale_as_node(to_sale, from_sale, context=derive, model_factory=f, tools=[]))
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    app = g.compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "fn"}}
    app.invoke({"question": "What is the capital of Japan?"}, cfg, context=AppContext(tenant="acme"))
    out = app.invoke({"question": "What is the capital of France?"}, cfg, context=AppContext(tenant="acme"))

    assert [r["answer"] for r in out["results"]] == ["Tokyo", "Paris"]
    assert all(r["winner"] == "large" and r["bidders"] == ["large", "small"] and r["usd"] > 0 for r in out["results"])
    assert out["results"][0]["auction_id"] != out["results"][1]["auction_id"]
    assert set(out) == {"question", "results"}  # no auction key leaks into the parent's state
    assert [c.tenant for c in seen] == ["acme", "acme"]


def test_function_node_passes_parent_context_through() -> None:
    g = StateGraph(AskState, context_schema=SaleContext)
    g.add_node("ask", sale_as_node(to_sale, from_sale, model_factory=factory(), tools=[]))
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    out = g.compile().invoke({"question": "What is the capital of Australia?"}, context=context())
    assert out["results"][0]["answer"] == "Canberra"


def test_function_node_with_foreign_context_fails_clearly() -> None:
    g = StateGraph(AskState, context_schema=AppContext)
    g.add_node("ask", sale_as_node(to_sale, from_sale, model_factory=factory(), tools=[]))
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    with pytest.raises(TypeError, match="context must be a SaleContext or a dict"):
        g.compile().invoke({"question": "What is the capital of Australia?"}, context=AppContext(tenant="x"))


def test_research_assistant_example_on_fakes() -> None:
    from examples.research_assistant import build_research_assistant

    f = factory()
    app = build_research_assistant(model_factory=f, tools=[]).compile(checkpointer=InMemorySaver())
    out = app.invoke({"question": "What is the capital of Australia?"}, {"configurable": {"thread_id": "ra"}}, context=context())
    assert out["draft_answer"] == "Canberra" and out["answered_by"] == "large"
    assert "Answer: Canberra" in out["final_report"] and "among large, small" in out["final_report"]
    assert out["notes"][0].startswith("framed the question as a search task")
    assert out["notes"][-1] == "wrote the final report"
    assert set(out) == {"question", "draft_answer", "answered_by", "notes", "final_report"}


def test_exported_graphs_have_no_persistence() -> None:
    from examples.auction_graph import graph as sale
    from examples.research_assistant import graph as assistant
    from examples.router_app import graph as routed

    for g in (sale, assistant, routed):
        assert g.checkpointer is None and g.store is None
    assert {"route", "quick_agent", "thorough_agent"} <= set(routed.get_graph().nodes)
    assert set(sale.get_graph().nodes) >= {"prepare", "bid", "jury", "select", "approve", "execute", "remember"}
    assert "task" in sale.get_input_jsonschema()["properties"]
    assert "question" in assistant.get_input_jsonschema()["required"]


# ---------------------------------------------------------------- streaming


def function_parent(f: FakeFactory) -> Any:
    class Parent(TypedDict):
        task: str
        answer: NotRequired[str]
        selection: NotRequired[dict[str, Any]]

    g = StateGraph(Parent, context_schema=SaleContext)
    g.add_node("sale", sale_as_node(
        lambda s: {"task": s["task"]},
        lambda out: {"answer": out["answer"], "selection": out["selection"]},
        model_factory=f,
        tools=[],
    ))
    g.add_edge(START, "sale")
    g.add_edge("sale", END)
    return g.compile(checkpointer=InMemorySaver())


PARENTS = {"shared_keys": shared_parent, "function_node": function_parent}


@pytest.mark.parametrize("way", sorted(PARENTS))
def test_streaming_shows_progress_as_it_happens(way: str) -> None:
    delay = 0.2
    f = factory(delay_s=delay)
    app = PARENTS[way](f)
    start = time.perf_counter()
    received: list[tuple[float, tuple[str, ...], str, Any]] = []
    for ns, mode, payload in app.stream(
        {"task": "What is the capital of Australia?"}, {"configurable": {"thread_id": f"s-{way}"}},
        context=context(max_concurrency=8), stream_mode=["updates", "custom"], subgraphs=True,
    ):
        received.append((time.perf_counter() - start, ns, mode, payload))

    events = [(t, ns, p) for t, ns, mode, p in received if mode == "custom"]
    names = [p["event"] for _, _, p in events if p["event"] in ("bid", "jury", "select")]
    assert names == ["bid"] * 2 + ["jury"] * 4 + ["select"]
    assert {p["agent"] for _, _, p in events if p["event"] == "bid"} == {"small", "large"}
    assert {(p["judge"], p["bidder"]) for _, _, p in events if p["event"] == "jury"} == {
        (j, b) for j in ("small", "large") for b in ("small", "large")}
    # Events come from inside the subgraph, under its namespace, not from the parent.
    assert all(ns and ns[0].startswith("sale:") for _, ns, _ in events)
    # Subgraph node updates are streamed too, then the parent's update of its "sale" node.
    sub_nodes = [next(iter(p)) for _, ns, mode, p in received if mode == "updates" and ns]
    assert {"prepare", "bid", "jury", "select", "execute", "remember"} <= set(sub_nodes)
    parent_updates = [(t, p) for t, ns, mode, p in received if mode == "updates" and ns == ()]
    t_end, last = next((t, p) for t, p in parent_updates if "sale" in p)
    assert last["sale"]["answer"] == "Canberra"
    assert t_end >= max(t for t, _, _ in events)
    # As they happen: each bid arrives while the jury (one call round) and the execution
    # (another) are still to run; the selection arrives before the execution's call ends.
    t_bid = max(t for t, _, p in events if p["event"] == "bid")
    t_select = next(t for t, _, p in events if p["event"] == "select")
    assert t_bid <= t_end - 2 * delay + 0.05, (t_bid, t_end)
    assert t_select <= t_end - delay + 0.05, (t_select, t_end)


# ---------------------------------------------------------------- approval


@pytest.mark.parametrize("way", sorted(PARENTS))
def test_approval_interrupt_through_parent_with_override(way: str) -> None:
    f = factory()
    app = PARENTS[way](f)
    cfg = {"configurable": {"thread_id": f"approve-{way}"}}
    ctx = context(approve_before_execute=True)

    paused = app.invoke({"task": "What is the capital of Australia?"}, cfg, context=ctx)
    assert "__interrupt__" in paused
    question = paused["__interrupt__"][0].value
    assert question["winner"] == "large" and {r["agent"] for r in question["scores"]} == {"small", "large"}
    snapshot = app.get_state(cfg)
    assert snapshot.next == ("sale",) and snapshot.interrupts
    assert "execute" not in phases(f) and "answer" not in snapshot.values
    calls_before = len(f.calls)

    done = app.invoke(Command(resume={"winner": "small"}), cfg, context=ctx)
    assert done["selection"]["winner"] == "small" and "human override" in done["selection"]["reason"]
    assert done["answer"] == "Canberra"
    # Resuming re-ran neither the bids nor the jury: only the overridden winner executed.
    assert f.calls[calls_before:] == [("small", "execute")]
    assert app.get_state(cfg).next == ()


def test_approval_resume_true_keeps_the_winner() -> None:
    f = factory()
    app = shared_parent(f)
    cfg = {"configurable": {"thread_id": "approve-keep"}}
    ctx = context(approve_before_execute=True)
    app.invoke({"task": "What is the capital of France?"}, cfg, context=ctx)
    done = app.invoke(Command(resume=True), cfg, context=ctx)
    assert done["selection"]["winner"] == "large" and done["answer"] == "Paris"
    assert done["history"] == [{"task": "What is the capital of France?", "answer": "Paris", "winner": "large"}]
