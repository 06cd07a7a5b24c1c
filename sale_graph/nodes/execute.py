"""``execute``: the winner runs the task as a ReAct agent, within a step, token and time budget.

The machinery (the trace, budgets, retries, the outcome) is in :mod:`sale_graph.executor`.
When the winner's endpoint fails during the run (after its retries), the runner-up
executes instead, with a note (``on_execution_error="fallback"``, the default), or
the run stops with an :class:`ExecutionError` (``"raise"``): never an empty answer
that looks like one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.runtime import Runtime

from sale_graph.context import SaleContext
from sale_graph.errors import ExecutionError
from sale_graph.events import ExecuteEvent, ExecuteStartEvent, emit
from sale_graph.executor import (
    Trace,
    arun_react,
    execution_notes,
    execution_record,
    fallback_note,
    opening_messages,
    react_agent,
    run_react,
    tool_names,
)
from sale_graph.nodes._common import Node, check_run_context, ctx_of, dual_node
from sale_graph.nodes.replay import mark_replayed, resumed_task
from sale_graph.pool import AgentSpec
from sale_graph.services import SaleServices
from sale_graph.state import SaleState


def runner_up(state: Mapping[str, Any], failed: str) -> tuple[str, str] | None:
    """The best-scored other agent and its strategy (lowest ``C - V``), or ``None`` when there is none."""
    rows = sorted((r for r in state.get("scores", []) if r["agent"] != failed), key=lambda r: (r["net"], r["price"], r["agent"]))
    for row in rows:
        strategy = next((b["strategy"] for b in state.get("bids", [])
                         if b["agent"] == row["agent"] and b["round"] == row["round"] and b["status"] == "ok"), None)
        if strategy:
            return row["agent"], strategy
    return None


def plan_b(state: Mapping[str, Any], ctx: SaleContext, failed: str, detail: str) -> tuple[str, str]:
    """Who executes after the winner's endpoint failed, and with which strategy.

    Args:
        state: what holds the auction's ``scores`` and ``bids`` (the graph state or an auction record).
        ctx: the run's settings (``on_execution_error``).
        failed: the winner whose endpoint failed.
        detail: how it failed, for the error.

    Returns:
        The runner-up's name and its best bid's strategy.

    Raises:
        ExecutionError: ``on_execution_error="raise"``, or no other agent bid.
    """
    if ctx.on_execution_error == "raise":
        raise ExecutionError(f"the winner {failed!r} failed to execute: {detail} "
                             "(on_execution_error='raise'; 'fallback' runs the runner-up instead)")
    fallback = runner_up(state, failed)
    if fallback is None:
        raise ExecutionError(f"the winner {failed!r} failed to execute ({detail}) and no other agent bid")
    return fallback


def make_execute_node(services: SaleServices) -> Node:
    """Build the ``execute`` node bound to ``services`` (its tools and model factory), sync and async."""

    def start(state: SaleState, runtime: Runtime[SaleContext], name: str, strategy: str) -> tuple[Any, list[Any], Trace]:
        ctx = ctx_of(runtime)
        check_run_context(state, ctx)
        agent: AgentSpec = ctx.resolved_pool().get(name)
        tools = services.tools_for(state.get("domain"), ctx)
        model = services.model_factory(agent, phase="execute", max_tokens=ctx.cap("execute_step", agent), logprobs=False)
        trace = Trace(agent=agent, ctx=ctx, strategy=strategy, tools=tool_names(tools))
        emit(runtime, ExecuteStartEvent(event="execute_start", agent=agent.name, tools=tool_names(tools)))
        return react_agent(agent, model, tools), tools, trace

    def finish(state: SaleState, runtime: Runtime[SaleContext], trace: Trace, first: Trace | None) -> dict[str, Any]:
        execution = execution_record(state, trace)
        notes = execution_notes(first) if first is not None else []
        if first is not None:
            execution["fallback_from"] = first.agent.name
            notes.append(fallback_note(first.agent.name, first.detail, trace.agent.name))
        notes += execution_notes(trace)
        emit(runtime, ExecuteEvent(event="execute", agent=trace.agent.name, status=execution["status"],
                                   answer=execution["answer"][:200], detail=trace.detail, outcome=execution["outcome"]))
        update: dict[str, Any] = {"execution": execution, "answer": execution["answer"], "notes": notes,
                                  "ledger": (first.ledger if first is not None else []) + trace.ledger}
        if resumed_task():  # the whole execution ran again: its model calls before the interruption may be paid twice
            calls = len(update["ledger"])
            mark_replayed(update, f"the execution by {(first or trace).agent.name} ({calls} model call{'' if calls == 1 else 's'})")
        # The answer is the thread's next turn (chat-shaped input), or the task and its answer start the
        # transcript; either way a `messages` stream shows it, without the auction's internal calls.
        reply = AIMessage(content=execution["answer"] or f"(no answer: {trace.detail})", name=trace.agent.name)
        update["messages"] = [reply] if state.get("messages") else [HumanMessage(content=state["task"]), reply]
        return update

    def execute(state: SaleState, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Run the winning agent with its winning strategy; stop cleanly when a budget runs out."""
        selection = state["selection"]
        react, tools, trace = start(state, runtime, selection["winner"], selection["strategy"])
        run_react(react, opening_messages(state, tools, trace, runtime), trace, runtime)
        if trace.status != "error":
            return finish(state, runtime, trace, None)
        name, strategy = plan_b(state, trace.ctx, trace.agent.name, trace.detail)
        react, tools, second = start(state, runtime, name, strategy)
        run_react(react, opening_messages(state, tools, second, runtime), second, runtime)
        return finish(state, runtime, second, trace)

    async def aexecute(state: SaleState, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Run the winning agent (asyncio: the model calls are awaited; blocking tools and grading run in threads)."""
        selection = state["selection"]
        react, tools, trace = await asyncio.to_thread(start, state, runtime, selection["winner"], selection["strategy"])
        await arun_react(react, await asyncio.to_thread(opening_messages, state, tools, trace, runtime), trace, runtime)
        if trace.status != "error":
            return await asyncio.to_thread(finish, state, runtime, trace, None)
        name, strategy = plan_b(state, trace.ctx, trace.agent.name, trace.detail)
        react, tools, second = await asyncio.to_thread(start, state, runtime, name, strategy)
        await arun_react(react, await asyncio.to_thread(opening_messages, state, tools, second, runtime), second, runtime)
        return await asyncio.to_thread(finish, state, runtime, second, trace)

    return dual_node(execute, aexecute)
