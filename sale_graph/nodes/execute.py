"""``execute``: the winner runs the task as a ReAct agent, within a step, token and time budget.

The machinery (the trace, budgets, retries, the outcome) is in :mod:`sale_graph.executor`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.runtime import Runtime

from sale_graph.context import SaleContext
from sale_graph.executor import (
    Trace,
    arun_react,
    execution_notes,
    execution_record,
    opening_messages,
    react_agent,
    run_react,
    tool_names,
)
from sale_graph.nodes._common import Node, check_run_context, ctx_of, dual_node, emit
from sale_graph.services import SaleServices
from sale_graph.state import SaleState


def make_execute_node(services: SaleServices) -> Node:
    """Build the ``execute`` node bound to ``services`` (its tools and model factory), sync and async."""

    def start(state: SaleState, runtime: Runtime[SaleContext]) -> tuple[Any, list[Any], Trace]:
        ctx = ctx_of(runtime)
        check_run_context(state, ctx)
        selection = state["selection"]
        agent = ctx.resolved_pool().get(selection["winner"])
        tools = services.tools_for(state.get("domain"), ctx)
        model = services.model_factory(agent, phase="execute", max_tokens=ctx.cap("execute_step", agent), logprobs=False)
        trace = Trace(agent=agent, ctx=ctx)
        react = react_agent(agent, model, tools)
        emit(runtime, "execute_start", agent=agent.name, tools=tool_names(tools))
        return react, tools, trace

    def finish(state: SaleState, runtime: Runtime[SaleContext], trace: Trace) -> dict[str, Any]:
        execution = execution_record(state, trace)
        emit(runtime, "execute", agent=trace.agent.name, status=trace.status, answer=execution["answer"][:200],
             detail=trace.detail, outcome=execution["outcome"])
        return {"execution": execution, "answer": execution["answer"], "ledger": trace.ledger, "notes": execution_notes(trace)}

    def execute(state: SaleState, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Run the winning agent with its winning strategy; stop cleanly when a budget runs out."""
        react, tools, trace = start(state, runtime)
        run_react(react, opening_messages(state, tools, trace, runtime), trace, runtime)
        return finish(state, runtime, trace)

    async def aexecute(state: SaleState, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Run the winning agent (asyncio: the model calls are awaited; blocking tools run in threads)."""
        react, tools, trace = await asyncio.to_thread(start, state, runtime)  # tools may build a search index
        opening = await asyncio.to_thread(opening_messages, state, tools, trace, runtime)
        await arun_react(react, opening, trace, runtime)
        return await asyncio.to_thread(finish, state, runtime, trace)  # grading may run the code sandbox

    return dual_node(execute, aexecute)
