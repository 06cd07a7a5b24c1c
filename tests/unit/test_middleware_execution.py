"""``SaleMiddleware`` honours the execution settings it accepts (issue 20, finding 6), on fake models.

Budgets (``execute_max_steps``, ``execute_max_tokens``, ``execute_wall_time_s``) end the
agent run cleanly with the reason in the record; ``on_execution_error`` falls back to the
runner-up or raises; retried calls are recorded like the graph's; the graph's executor
settings that cannot apply are refused by name.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx
import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

import sale_graph.llm.retries
from sale_graph import ContextError, ExecutionError, SaleContext
from sale_graph.integrations import SaleMiddleware
from tests.fakes import FakeFactory, ScriptedChatModel, pool_of, prompt_text

POOL = pool_of(("small", 0.05), ("large", 0.36))
SETTINGS: dict[str, Any] = {"pool": POOL, "check_endpoints": False, "use_memory": False}
_ids = itertools.count()


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def slow_add(a: int, b: int) -> int:
    """Add two integers, slowly."""
    time.sleep(0.3)
    return a + b


def tool_call(name: str = "add", out_tokens: int = 5) -> AIMessage:
    """A model step asking for one more tool call, with the endpoint's token usage."""
    call = {"name": name, "args": {"a": 2, "b": 3}, "id": f"call_{next(_ids)}", "type": "tool_call"}
    return AIMessage(content="", tool_calls=[call],
                     usage_metadata={"input_tokens": 10, "output_tokens": out_tokens, "total_tokens": 10 + out_tokens})


def factory(execute: Any) -> FakeFactory:
    """``large`` wins every auction (the jury rates its plan 5, small's 1); ``execute`` answers the run's model calls."""
    return FakeFactory({
        "bid": lambda a, m: "1. verify with a second source 2. answer" if a == "large" else "1. answer",
        "jury": lambda a, m: "SCORE: 5" if "verify" in prompt_text(m).split("Task:")[-1] else "SCORE: 1",
        "execute": execute,
    })


def run(fake: FakeFactory, mode: str = "sync", tools: tuple[Any, ...] = (add,), **settings: Any) -> dict[str, Any]:
    sale = SaleMiddleware(model_factory=fake, tools=list(tools), **{**SETTINGS, **settings})
    agent = create_agent(model=ScriptedChatModel(responder=lambda m: "default model"), tools=list(tools), middleware=[sale])
    inputs = {"messages": [HumanMessage("2 + 3?")]}
    return dict(agent.invoke(inputs) if mode == "sync" else asyncio.run(agent.ainvoke(inputs)))


def execute_calls(fake: FakeFactory) -> list[str]:
    return [agent for agent, phase in fake.calls if phase == "execute"]


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sale_graph.llm.retries, "backoff_s", lambda attempt, exc: 0.0)


# --- budgets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_step_and_token_budgets_from_the_report_stop_the_run_after_two_calls(mode: str) -> None:
    """The report's case: ``execute_max_steps=2, execute_max_tokens=100`` gave 9 model calls and 24,003 tokens."""
    fake = factory(lambda a, m: tool_call(out_tokens=2667))
    out = run(fake, mode, execute_max_steps=2, execute_max_tokens=100)
    record = out["sale_auction"]
    assert execute_calls(fake) == ["large"]  # the token budget was used up by the first call
    assert record["execution"]["status"] == "budget_exhausted" and record["execution"]["model_calls"] == 1
    assert record["execution"]["detail"] == "token budget of 100 generated tokens used up (2667)"
    assert "execution stopped: token budget of 100 generated tokens used up (2667)" in record["notes"]
    assert out["messages"][-1].content == "(no answer: token budget of 100 generated tokens used up (2667))"
    assert sum(e["output_tokens"] for e in record["ledger"] if e["phase"] == "execute") == 2667


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_step_budget_ends_a_tool_loop_cleanly_with_the_reason(mode: str) -> None:
    fake = factory(lambda a, m: tool_call())
    out = run(fake, mode, execute_max_steps=2)
    record = out["sale_auction"]
    assert execute_calls(fake) == ["large", "large"]
    assert record["execution"] == {"agent": "large", "model_calls": 2, "status": "budget_exhausted", "outcome": "unknown",
                                   "detail": "step budget of 2 model calls used up"}
    assert record["notes"][-1] == "execution stopped: step budget of 2 model calls used up"
    # The conversation stays well formed: every tool call has its result, then the stop message.
    kinds = [type(m).__name__ for m in out["messages"]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert out["messages"][-1].content == "(no answer: step budget of 2 model calls used up)"


def test_wall_time_budget_ends_the_run_after_a_slow_tool() -> None:
    fake = factory(lambda a, m: tool_call("slow_add"))
    out = run(fake, tools=(slow_add,), execute_wall_time_s=0.2)
    execution = out["sale_auction"]["execution"]
    assert execute_calls(fake) == ["large"]
    assert execution["status"] == "budget_exhausted" and execution["detail"].startswith("wall-time budget of 0.2 s used up")


def test_a_run_within_its_budgets_completes() -> None:
    answers = iter([tool_call(), "Final Answer: 5"])
    out = run(factory(lambda a, m: next(answers)), execute_max_steps=2)
    assert out["sale_auction"]["execution"] == {"agent": "large", "model_calls": 2, "status": "completed", "outcome": "unknown"}
    assert out["messages"][-1].content == "Final Answer: 5"


# --- on_execution_error and retries -----------------------------------------------------------------


def down(agent: str, answer: Any) -> Any:
    """``large``'s endpoint refuses every connection; the others answer with ``answer``."""
    def respond(a: str, m: Any) -> Any:
        return httpx.ConnectError("connection refused") if a == "large" else answer(a, m)
    return respond


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_fallback_makes_the_call_again_on_the_runner_up_which_answers_the_rest_of_the_run(mode: str) -> None:
    answers = iter([tool_call(), "Final Answer: 5"])
    fake = factory(down("large", lambda a, m: next(answers)))
    out = run(fake, mode)
    record = out["sale_auction"]
    # large: one call and its 3 retries (the pool's max_retries), then small makes that call and the next one.
    assert execute_calls(fake) == ["large"] * 4 + ["small", "small"]
    execution = record["execution"]
    assert (execution["agent"], execution["fallback_from"], execution["status"]) == ("small", "large", "completed")
    assert len(execution["retries"]) == 3 and all("ConnectError" in line for line in execution["retries"])
    assert ("the winner large failed to execute (the winner's endpoint failed: ConnectError: connection refused "
            "(after 3 retried call(s))); the runner-up small executed instead") in record["notes"]
    assert any(n.startswith("execution needed 3 retried call(s): attempt 1 failed") for n in record["notes"])
    assert [e["agent"] for e in record["ledger"] if e["phase"] == "execute"] == ["small", "small"]
    assert out["messages"][-1].content == "Final Answer: 5"


def test_a_retried_call_that_then_succeeds_is_recorded() -> None:
    attempts = iter([httpx.ConnectError("connection reset"), "Final Answer: 5"])
    out = run(factory(lambda a, m: next(attempts)))
    execution = out["sale_auction"]["execution"]
    assert execution["agent"] == "large" and "fallback_from" not in execution
    assert len(execution["retries"]) == 1 and "ConnectError: connection reset" in execution["retries"][0]
    assert out["sale_auction"]["notes"][-1].startswith("execution needed 1 retried call(s): attempt 1 failed")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_raise_stops_the_run_naming_the_winner(mode: str) -> None:
    fake = factory(down("large", lambda a, m: "Final Answer: 5"))
    with pytest.raises(ExecutionError, match="the winner 'large' failed to execute: the winner's endpoint failed: "
                                             "ConnectError: connection refused .*on_execution_error='raise'"):
        run(fake, mode, on_execution_error="raise")
    assert "small" not in execute_calls(fake)


def test_a_runner_up_that_fails_too_is_an_execution_error_naming_both() -> None:
    fake = factory(lambda a, m: httpx.ConnectError("connection refused"))
    with pytest.raises(ExecutionError, match="the winner 'large' failed to execute .* the runner-up 'small' failed too"):
        run(fake)


# --- settings that cannot apply ---------------------------------------------------------------------


def test_executor_settings_the_agent_run_cannot_use_are_refused_by_name() -> None:
    with pytest.raises(ContextError, match="SaleMiddleware setting 'search' does not apply to an agent run"):
        SaleMiddleware(model_factory=factory(None), search={"backend": "duckduckgo"}, **SETTINGS)
    with pytest.raises(ContextError, match="SaleMiddleware setting 'search_first' does not apply"):
        SaleMiddleware(model_factory=factory(None), search_first=False, **SETTINGS)
    with pytest.raises(ContextError, match="'search' does not apply"):
        SaleMiddleware(model_factory=factory(None), context=SaleContext(search={"backend": "duckduckgo"}), pool=POOL)
