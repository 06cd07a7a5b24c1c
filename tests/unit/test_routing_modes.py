"""Route-only runs, chat-shaped input, a failing winner, a bad approval answer (fake models)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from sale_graph import SaleContext, build_sale_graph
from sale_graph.errors import ExecutionError
from tests.fakes import FakeFactory, pool_of, prompt_text

POOL = pool_of(("small", 0.05), ("large", 0.36))


def strategies(agent: str, messages: Any) -> str:
    return {"small": "1. search the capital 2. answer", "large": "1. search 2. verify with a second source 3. answer"}[agent]


def judge(agent: str, messages: Any) -> str:
    return "SCORE: 5" if "verify" in prompt_text(messages).split("Task:")[-1] else "SCORE: 2"


def executor(agent: str, messages: Any) -> str:
    return f"Final Answer: Canberra (by {agent})"


def context(**kw: Any) -> SaleContext:
    return SaleContext(pool=POOL, check_endpoints=False, use_memory=False, **kw)


def test_route_only_stops_before_execute() -> None:
    factory = FakeFactory({"bid": strategies, "jury": judge, "execute": executor})
    out = build_sale_graph(model_factory=factory, tools=[]).compile().invoke(
        {"task": "What is the capital of Australia?"}, context=context(route_only=True))
    assert out["selection"]["winner"] == "large" and "verify" in out["selection"]["strategy"]
    assert out["scores"] and out["ledger"]
    assert not any(phase == "execute" for _, phase in factory.calls)
    assert "execution" not in out and out["answer"] == ""
    assert {e["phase"] for e in out["ledger"]} == {"bid", "jury"}


def test_chat_input_takes_the_last_human_message_and_answers_in_messages() -> None:
    factory = FakeFactory({"bid": strategies, "jury": judge, "execute": executor})
    graph = build_sale_graph(model_factory=factory, tools=[]).compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "chat"}}
    first = graph.invoke({"messages": [HumanMessage("What is the capital of Australia?")]}, cfg, context=context())
    assert first["task"] == "What is the capital of Australia?"
    assert isinstance(first["messages"][-1], AIMessage) and first["messages"][-1].content == "Canberra (by large)"
    assert first["messages"][-1].name == "large"
    # The next turn on the thread is a new auction on the new human message, read in its conversation.
    second = graph.invoke({"messages": [HumanMessage("And of Peru?")]}, cfg, context=context())
    assert second["task"].endswith("\nRequest: And of Peru?") and "User: What is the capital of Australia?" in second["task"]
    assert second["auction_id"] != first["auction_id"]
    assert [type(m).__name__ for m in second["messages"]] == ["HumanMessage", "AIMessage", "HumanMessage", "AIMessage"]


def test_failing_winner_falls_back_to_the_runner_up_visibly() -> None:
    def flaky(agent: str, messages: Any) -> Any:
        if agent == "large":
            return httpx.ConnectError("connection refused")
        return executor(agent, messages)

    factory = FakeFactory({"bid": strategies, "jury": judge, "execute": flaky})
    out = build_sale_graph(model_factory=factory, tools=[]).compile().invoke({"task": "Capital of Australia?"}, context=context())
    assert out["selection"]["winner"] == "large"
    assert out["execution"]["agent"] == "small" and out["execution"]["fallback_from"] == "large"
    assert out["answer"] == "Canberra (by small)"
    assert any("runner-up small executed instead" in n for n in out["notes"])


def test_failing_winner_raises_when_asked() -> None:
    factory = FakeFactory({"bid": strategies, "jury": judge,
                           "execute": lambda a, m: httpx.ConnectError("down") if a == "large" else executor(a, m)})
    graph = build_sale_graph(model_factory=factory, tools=[]).compile()
    with pytest.raises(ExecutionError, match="'large' failed to execute"):
        graph.invoke({"task": "Capital of Australia?"}, context=context(on_execution_error="raise"))


def test_bad_approval_override_asks_again_and_the_thread_stays_usable() -> None:
    factory = FakeFactory({"bid": strategies, "jury": judge, "execute": executor})
    graph = build_sale_graph(model_factory=factory, tools=[]).compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "approval-retry"}}
    ctx = context(approve_before_execute=True)
    paused = graph.invoke({"task": "Capital of Australia?"}, cfg, context=ctx)
    assert paused["__interrupt__"][0].value["winner"] == "large"
    again = graph.invoke(Command(resume={"winner": "medium"}), cfg, context=ctx)
    question = again["__interrupt__"][0].value
    assert "'medium', which has no scored bid" in question["error"] and "small" in question["error"]
    assert not any(phase == "execute" for _, phase in factory.calls)
    done = graph.invoke(Command(resume={"winner": "small"}), cfg, context=ctx)
    assert done["execution"]["agent"] == "small" and done["answer"] == "Canberra (by small)"
