"""SALE in LangChain / LangGraph apps over real HTTP: ``SaleMiddleware``, ``sale_router``, route-only runs.

Every model is a real ``ChatOpenAI`` (the pool's ``SaleChatOpenAI``, the agent's own
default model) talking to the loopback wire server (:mod:`tests.contract.sale_apps`
says what each model answers: ``large`` wins every auction). Native tool calls are
OpenAI's ``message.tool_calls`` [OAI-OBJECT]; a server without tool calling answers
HTTP 400 as vLLM does without ``--enable-auto-tool-choice``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command

from sale_graph import AgentPool, AuctionError, AuctionMemory, SaleContext, build_sale_graph
from sale_graph.integrations import SaleMiddleware, SaleRouterState, ToolCallingError, sale_router
from tests.contract.sale_apps import (
    LARGE_PLAN,
    MIDDLEWARE_NOTE,
    TASK,
    add,
    behaviours,
    chats,
    native_tool_calls,
    pool_of,
    refuse_tools,
    role_of,
)
from tests.contract.wire_formats import count_tokens, last_user_text, message_text
from tests.contract.wire_server import WireServer

pytestmark = [pytest.mark.contract, pytest.mark.usefixtures("fresh_detection")]



@pytest.fixture
def server() -> Iterator[WireServer]:
    with WireServer(behaviours()) as s:
        yield s



def agent_with(server: WireServer, pool: AgentPool, **settings: Any) -> Any:
    settings.setdefault("use_memory", False)
    middleware = SaleMiddleware(pool=pool, tools=[add], **settings)
    return create_agent(model=server.chat_model("default"), tools=[add], middleware=[middleware])


def ask(agent: Any, mode: str = "sync") -> dict[str, Any]:
    inputs = {"messages": [HumanMessage(TASK)]}
    return dict(agent.invoke(inputs) if mode == "sync" else asyncio.run(agent.ainvoke(inputs)))


# --- SaleMiddleware ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_middleware_winner_answers_every_model_call_with_the_agents_tools(
    server: WireServer, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    native_tool_calls(monkeypatch)
    out = ask(agent_with(server, pool_of(server)), mode)

    auction = out["sale_auction"]
    assert auction["selection"]["winner"] == "large" and auction["selection"]["strategy"] == LARGE_PLAN
    assert {b["agent"] for b in auction["bids"]} == {"small", "large"} and len(auction["votes"]) == 4
    assert [r["agent"] for r in auction["scores"]] and auction["auction_id"]
    # Every model call of the run went to the winner, none to the agent's default model.
    calls = chats(server, "agent")
    assert [r.model for r in calls] == ["large", "large"] and chats(server, model="default") == []
    for request in calls:  # the agent's tools, natively; the winning strategy in the system prompt
        assert [t["function"]["name"] for t in request.body["tools"]] == ["add"]  # type: ignore[index]
        system = message_text(request.body["messages"][0]["content"])  # type: ignore[index]
        assert MIDDLEWARE_NOTE in system and LARGE_PLAN in system
    assert [type(m).__name__ for m in out["messages"]] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert isinstance(out["messages"][2], ToolMessage) and out["messages"][2].content == "5"
    assert out["messages"][-1].content == "Final Answer: 5"
    # The run's model calls are in the auction's ledger, with the endpoint's own token counts.
    executed = [e for e in auction["ledger"] if e["phase"] == "execute"]
    assert [e["agent"] for e in executed] == ["large", "large"]
    assert executed[1]["output_tokens"] == count_tokens("Final Answer: 5")
    assert {e["phase"] for e in auction["ledger"]} == {"bid", "jury", "execute"}
    assert auction["execution"] == {"agent": "large", "model_calls": 2, "status": "completed", "outcome": "unknown"}
    assert "sale_usage" not in out  # internal


def test_middleware_uses_text_tool_calling_for_a_winner_configured_for_it(server: WireServer) -> None:
    out = ask(agent_with(server, pool_of(server, large={"tool_calling": "text"})))

    calls = chats(server, "agent")
    assert [r.model for r in calls] == ["large", "large"]
    assert all("tools" not in r.body for r in calls)  # type: ignore[operator]
    assert "add(" in message_text(calls[0].body["messages"][0]["content"])  # type: ignore[index]
    tool_messages = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert [m.content for m in tool_messages] == ["5"] and out["messages"][-1].content == "Final Answer: 5"


def test_middleware_on_tools_the_winners_endpoint_cannot_call_natively_is_a_clear_error(
    server: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_tools(monkeypatch, "large")
    with pytest.raises(ToolCallingError) as err:
        ask(agent_with(server, pool_of(server)))
    message = str(err.value)
    assert "'large'" in message and "refused the agent's tools" in message and "HTTP 400" in message
    assert 'tool_calling = "text"' in message and "contract pool" in message
    assert chats(server, model="default") == []


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_auction_below_its_quorum_propagates_from_the_middleware(mode: str) -> None:
    with WireServer(behaviours(jury=lambda _: "I like this plan.")) as server:
        with pytest.raises(AuctionError, match="jury quorum not met"):
            ask(agent_with(server, pool_of(server)), mode)
        assert chats(server, "agent") == [] and chats(server, model="default") == []  # no fallback model


@pytest.mark.parametrize("outcome", ["passed", "failed"])
def test_outcome_reported_after_a_route_only_run_reaches_the_memory_and_the_next_refinement(
    server: WireServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, outcome: str
) -> None:
    native_tool_calls(monkeypatch)
    memory = AuctionMemory(path=tmp_path / "memory")
    graded: list[dict[str, Any]] = []

    def grader(state: Any) -> str:
        graded.append(dict(state))
        return outcome

    agent = agent_with(server, pool_of(server), use_memory=True, memory=memory, grader=grader)
    first = ask(agent)["sale_auction"]
    assert graded and graded[0]["messages"][-1].content == "Final Answer: 5"
    assert first["execution"]["outcome"] == outcome and f"outcome {outcome!r} stored" in first["notes"][-1]
    assert {b.outcome for b in memory.get_auction(first["auction_id"])} == {outcome}
    assert chats(server, "refine") == []  # the first auction had nothing to learn from

    second = ask(agent)["sale_auction"]
    small = second["refinement"]["agents"]["small"]
    refine_calls = chats(server, "refine")
    if outcome == "passed":  # the past winner's plan is the example the cheaper agent refines from
        assert small["status"] == "ok" and small["pairs"] == 1
        assert [r.model for r in refine_calls] == ["small"]
        assert f"WINNING strategy: {LARGE_PLAN}" in message_text(refine_calls[0].body["messages"][-1]["content"])  # type: ignore[index]
    else:  # a winner that failed is never shown as an example
        assert small["status"] == "skipped" and "1 whose winner failed on execution" in small["reason"]
        assert refine_calls == []
    assert memory.count_auctions() == 2


def test_a_follow_up_turn_is_auctioned_in_its_conversation_over_http(
    server: WireServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 20, finding 1: the second turn's bid and jury requests carry the first turn; the memory task is whole."""
    native_tool_calls(monkeypatch)
    memory = AuctionMemory(path=tmp_path / "memory")
    middleware = SaleMiddleware(pool=pool_of(server), tools=[add], memory=memory, refine=False)
    agent = create_agent(model=server.chat_model("default"), tools=[add], middleware=[middleware],
                         checkpointer=InMemorySaver())
    cfg: Any = {"configurable": {"thread_id": "chat"}}
    agent.invoke({"messages": [HumanMessage(TASK)]}, cfg)
    before = len(chats(server))
    second = agent.invoke({"messages": [HumanMessage("And 3 + 4?")]}, cfg)["sale_auction"]
    turn2 = chats(server)[before:]
    auction_requests = [r for r in turn2 if role_of(r.body) in ("bid", "jury")]  # type: ignore[arg-type]
    assert len(auction_requests) == 2 + 4
    for request in auction_requests:
        asked = last_user_text(request.body)  # type: ignore[arg-type]
        assert f"User: {TASK}" in asked and "And 3 + 4?" in asked
    assert {b.task for b in memory.get_auction(second["auction_id"])} == {second["task"]}
    assert TASK in second["task"] and second["task"].endswith("And 3 + 4?")


# --- sale_router ---------------------------------------------------------------------------------


class RoutedState(MessagesState, SaleRouterState):
    pass


def routed_app(pool: AgentPool, checkpointer: Any = None, **settings: Any) -> Any:
    def agent_node(name: str) -> Any:
        def node(state: RoutedState) -> dict[str, Any]:
            return {"messages": [AIMessage(f"{name} follows: {state['sale_strategy']}", name=name)]}
        return node

    settings.setdefault("use_memory", False)
    g = StateGraph(RoutedState)
    g.add_node("route", sale_router({"small": "quick", "large": "thorough"}, pool=pool, tools=[add], **settings))
    g.add_node("quick", agent_node("small"))
    g.add_node("thorough", agent_node("large"))
    g.add_edge(START, "route")
    g.add_edge("quick", END)
    g.add_edge("thorough", END)
    return g.compile(checkpointer=checkpointer)


def test_router_sends_the_run_to_the_winners_node_and_executes_nothing(server: WireServer) -> None:
    app = routed_app(pool_of(server))
    out = app.invoke({"messages": [HumanMessage(TASK)]})
    assert out["messages"][-1].name == "large" and out["messages"][-1].content == f"large follows: {LARGE_PLAN}"
    assert out["sale_strategy"] == LARGE_PLAN and out["sale_auction"]["selection"]["winner"] == "large"
    assert {e["phase"] for e in out["sale_auction"]["ledger"]} == {"bid", "jury"}
    assert chats(server, "agent") == []  # route-only: no execute call
    assert {r.model for r in chats(server)} == {"small", "large"}
    # The graph's drawing shows the router's edges (its destinations are in its return type).
    edges = {(e.source, e.target) for e in app.get_graph().edges}
    assert {("route", "quick"), ("route", "thorough")} <= edges


def test_router_under_the_apps_checkpointer_pauses_for_approval_and_follows_the_override(server: WireServer) -> None:
    app = routed_app(pool_of(server), InMemorySaver(), approve_before_execute=True)
    cfg = {"configurable": {"thread_id": "routed"}}
    paused = app.invoke({"messages": [HumanMessage(TASK)]}, cfg)
    assert paused["__interrupt__"][0].value["winner"] == "large"
    done = app.invoke(Command(resume={"winner": "small"}), cfg)
    assert done["messages"][-1].name == "small" and done["sale_auction"]["selection"]["winner"] == "small"
    # The thread goes on: the next turn is a new auction, routed again.
    nxt = app.invoke({"messages": [HumanMessage("And 3 + 4?")]}, cfg)
    assert nxt["__interrupt__"][0].value["winner"] == "large"
    assert asyncio.run(app.ainvoke(Command(resume=True), cfg))["messages"][-1].name == "large"


def test_auction_below_its_quorum_propagates_from_the_router() -> None:
    with WireServer(behaviours(jury=lambda _: "no idea")) as server:
        with pytest.raises(AuctionError, match="jury quorum not met"):
            routed_app(pool_of(server)).invoke({"messages": [HumanMessage(TASK)]})


def test_route_only_run_makes_no_execute_call(server: WireServer) -> None:
    out = build_sale_graph(tools=[add]).compile().invoke(
        {"task": TASK}, context=SaleContext(pool=pool_of(server), use_memory=False, route_only=True))
    assert out["selection"]["winner"] == "large" and "execution" not in out and out["answer"] == ""
    assert {e["phase"] for e in out["ledger"]} == {"bid", "jury"}
    assert chats(server, "agent") == [] and len(chats(server)) == 2 + 4  # two bids, four votes
