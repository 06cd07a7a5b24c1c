"""Chat turns through the three ways (issue 20, findings 1 and 5), on fake models.

A follow-up turn is auctioned in its conversation: the bidders and the jury see the earlier
turns' subject, and the memory stores a self-contained task. ``auction_per="thread"`` pins
the thread's first winner for later turns; router turns on one thread get distinct auction ids.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from typing import Any, NotRequired

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

from sale_graph import AuctionMemory, ContextError, SaleContext, build_sale_graph
from sale_graph.conversation import REQUEST_LABEL
from sale_graph.integrations import SaleMiddleware, SaleRouterState, sale_router
from tests.fakes import FakeFactory, ScriptedChatModel, pool_of, prompt_text
from tests.unit.memory.helpers import BagOfWordsEmbeddings

POOL = pool_of(("small", 0.05), ("large", 0.36))
FIRST, FOLLOW_UP = "What is the capital of Australia?", "And its population?"
SETTINGS: dict[str, Any] = {"pool": POOL, "check_endpoints": False, "refine": False}


class Recorder:
    """A fake pool that records every prompt by phase: ``large`` bids a plan the jury rates 5, ``small`` one rated 1."""

    def __init__(self) -> None:
        self.prompts: dict[str, list[list[BaseMessage]]] = defaultdict(list)

    def factory(self) -> FakeFactory:
        def seen(phase: str, answer: Any) -> Any:
            def respond(agent: str, messages: list[BaseMessage]) -> Any:
                self.prompts[phase].append(messages)
                return answer(agent, messages)
            return respond

        return FakeFactory({
            "bid": seen("bid", lambda a, m: "1. search 2. verify 3. answer" if a == "large" else "1. answer"),
            "jury": seen("jury", lambda a, m: "SCORE: 5" if "verify" in prompt_text(m).split("Plan:")[-1] else "SCORE: 1"),
            "execute": seen("execute", lambda a, m: f"Final Answer: Canberra (by {a})"),
        })

    def texts(self, phase: str) -> list[str]:
        return [prompt_text(m) for m in self.prompts[phase]]

    def clear(self) -> None:
        self.prompts.clear()


def memory() -> AuctionMemory:
    import chromadb
    from chromadb.config import Settings

    client = chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))
    return AuctionMemory(client=client, embeddings=BagOfWordsEmbeddings(), collection_prefix=f"t{uuid.uuid4().hex[:12]}")


def assert_in_context(rec: Recorder, mem: AuctionMemory, auction_id: str) -> None:
    """The turn's bids and votes saw the first turn's subject; the memory holds a self-contained task."""
    assert len(rec.prompts["bid"]) == 2 and len(rec.prompts["jury"]) == 4
    for text in rec.texts("bid") + rec.texts("jury"):
        assert "Australia" in text and FOLLOW_UP in text and REQUEST_LABEL in text
    # The jury prompts of one judge are the same up to the bid (the shared prefix a server caches).
    heads = [([m.content for m in p[:-1]], str(p[-1].content).split("Plan: <strategy-")[0]) for p in rec.prompts["jury"]]
    assert len({repr(h) for h in heads}) == 1 and "Australia" in heads[0][1]
    stored = {b.task for b in mem.get_auction(auction_id)}
    assert len(stored) == 1 and "Australia" in stored.pop()
    assert all(s.task != FOLLOW_UP for s in mem.similar_tasks(FOLLOW_UP, k=10, min_similarity=-1.0))


# --- way 2: SaleMiddleware --------------------------------------------------------------------------------


def chat_agent(rec: Recorder, mem: AuctionMemory | None, **settings: Any) -> Any:
    sale = SaleMiddleware(model_factory=rec.factory(), memory=mem, use_memory=mem is not None, **{**SETTINGS, **settings})
    return create_agent(model=ScriptedChatModel(responder=lambda m: "default model"), tools=[], middleware=[sale],
                        checkpointer=InMemorySaver())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_middleware_auctions_a_follow_up_in_its_conversation(mode: str) -> None:
    rec, mem = Recorder(), memory()
    agent, cfg = chat_agent(rec, mem), {"configurable": {"thread_id": "chat"}}

    def turn(text: str) -> dict[str, Any]:
        inputs = {"messages": [HumanMessage(text)]}
        return dict(agent.invoke(inputs, cfg) if mode == "sync" else asyncio.run(agent.ainvoke(inputs, cfg)))

    first = turn(FIRST)["sale_auction"]
    assert first["task"] == FIRST  # a first turn is the message itself
    rec.clear()
    second = turn(FOLLOW_UP)["sale_auction"]
    assert second["auction_id"] != first["auction_id"] and second["task"].endswith(FOLLOW_UP)
    assert "User: What is the capital of Australia?\nAssistant: Final Answer: Canberra (by large)" in second["task"]
    assert_in_context(rec, mem, second["auction_id"])
    assert mem.count_auctions() == 2


def test_middleware_thread_policy_pins_the_first_winner_for_later_turns() -> None:
    rec = Recorder()
    agent, cfg = chat_agent(rec, None, auction_per="thread"), {"configurable": {"thread_id": "pinned"}}
    first = agent.invoke({"messages": [HumanMessage(FIRST)]}, cfg)["sale_auction"]
    rec.clear()
    out = agent.invoke({"messages": [HumanMessage(FOLLOW_UP)]}, cfg)
    second = out["sale_auction"]
    assert rec.prompts["bid"] == [] and rec.prompts["jury"] == []  # no auction paid on turn 2
    assert out["messages"][-1].content == "Final Answer: Canberra (by large)"
    assert second["auction_id"] == first["auction_id"] and second["selection"] == first["selection"]
    assert second["pinned"] == {"auction_id": first["auction_id"], "task": FIRST, "winner": "large", "turns": 2}
    assert second["task"].endswith(FOLLOW_UP) and "Australia" in second["task"]
    assert [e["phase"] for e in second["ledger"]] == ["execute"]  # only this turn's own model call
    assert second["notes"][0].startswith("pinned (auction_per='thread'): large won this thread's auction")
    third = agent.invoke({"messages": [HumanMessage("And its area?")]}, cfg)["sale_auction"]
    assert third["pinned"]["turns"] == 3 and third["pinned"]["task"] == FIRST and rec.prompts["bid"] == []


# --- way 3: sale_router ----------------------------------------------------------------------------------


class RoutedState(MessagesState, SaleRouterState):
    request_id: NotRequired[str | None]


def routed_app(rec: Recorder, mem: AuctionMemory | None, **settings: Any) -> Any:
    def answer_as(name: str) -> Any:
        def node(state: RoutedState) -> dict[str, Any]:
            return {"messages": [AIMessage(f"Canberra, says {name}", name=name)]}
        return node

    g = StateGraph(RoutedState)
    g.add_node("route", sale_router({"small": "quick", "large": "thorough"}, model_factory=rec.factory(), memory=mem,
                                    use_memory=mem is not None, **{**SETTINGS, **settings}))
    for node, agent in (("quick", "small"), ("thorough", "large")):
        g.add_node(node, answer_as(agent))
        g.add_edge(node, END)
    g.add_edge(START, "route")
    return g.compile(checkpointer=InMemorySaver())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_router_auctions_a_follow_up_in_its_conversation_with_a_fresh_auction_id(mode: str) -> None:
    rec, mem = Recorder(), memory()
    app, cfg = routed_app(rec, mem), {"configurable": {"thread_id": "routed"}}

    def turn(inputs: dict[str, Any]) -> dict[str, Any]:
        return dict(app.invoke(inputs, cfg) if mode == "sync" else asyncio.run(app.ainvoke(inputs, cfg)))

    first = turn({"messages": [HumanMessage(FIRST)], "request_id": "req-1"})
    assert first["sale_auction"]["auction_id"] == "req-1" and first.get("request_id") is None  # consumed
    rec.clear()
    second = turn({"messages": [HumanMessage(FOLLOW_UP)]})["sale_auction"]
    # Finding 5: the second turn is a new auction, not the first one's id overwritten in the memory.
    assert second["auction_id"] != "req-1" and mem.count_auctions() == 2
    assert {b.task for b in mem.get_auction("req-1")} == {FIRST}
    assert "Assistant: Canberra, says large" in second["task"]
    assert_in_context(rec, mem, second["auction_id"])


def test_router_thread_policy_routes_later_turns_to_the_pinned_winner() -> None:
    rec = Recorder()
    app, cfg = routed_app(rec, None, auction_per="thread"), {"configurable": {"thread_id": "pinned"}}
    first = app.invoke({"messages": [HumanMessage(FIRST)]}, cfg)["sale_auction"]
    rec.clear()
    out = app.invoke({"messages": [HumanMessage(FOLLOW_UP)]}, cfg)
    assert rec.prompts["bid"] == [] and rec.prompts["jury"] == []
    assert out["messages"][-1].content == "Canberra, says large" and out["sale_strategy"] == first["selection"]["strategy"]
    assert out["sale_auction"]["pinned"]["auction_id"] == first["auction_id"] and out["sale_auction"]["ledger"] == []


# --- way 1: the auction graph ----------------------------------------------------------------------------


def test_the_graph_auctions_a_chat_turn_in_its_conversation_and_refuses_the_thread_policy() -> None:
    rec = Recorder()
    app = build_sale_graph(model_factory=rec.factory(), tools=[]).compile(checkpointer=InMemorySaver())
    cfg: Any = {"configurable": {"thread_id": "graph"}}
    ctx = SaleContext(use_memory=False, **SETTINGS)
    assert app.invoke({"messages": [HumanMessage(FIRST)]}, cfg, context=ctx)["task"] == FIRST
    rec.clear()
    out = app.invoke({"messages": [HumanMessage(FOLLOW_UP)]}, cfg, context=ctx)
    assert "Australia" in out["task"] and out["task"].endswith(FOLLOW_UP)
    assert all("Australia" in t for t in rec.texts("bid") + rec.texts("jury") + rec.texts("execute"))
    # A budget too small for the first turn: condensed, and said in the run's notes.
    out = app.invoke({"messages": [HumanMessage("And its area?")]}, cfg, context=SaleContext(
        use_memory=False, conversation_max_tokens=20, **SETTINGS))
    assert any(n.startswith("conversation condensed:") for n in out["notes"])
    with pytest.raises(ContextError, match="auction_per='thread' is for SaleMiddleware and sale_router"):
        app.invoke({"task": FIRST}, {"configurable": {"thread_id": "other"}},
                   context=SaleContext(use_memory=False, auction_per="thread", **SETTINGS))
