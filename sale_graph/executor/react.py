"""The winner's run: a ReAct agent with its tools, within a step, token and time budget.

:func:`run_react` / :func:`arun_react` stream a ``langchain.agents.create_agent``
agent step by step into a :class:`Trace` (tokens, tool calls, the ledger, budget
checks); :class:`~sale_graph.llm.endpoint_policy.EndpointPolicy` gives each of its
model calls the endpoint's concurrency slot and the agent's retry policy, recording every retry.
:func:`execution_record` turns the trace into the state's ``execution`` with the
graded outcome. The ``execute`` node (:mod:`sale_graph.nodes.execute`) wires them.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphRecursionError
from langgraph.runtime import Runtime

from sale_graph.context import SaleContext
from sale_graph.conversation import search_query
from sale_graph.events import ExecuteStepEvent, emit
from sale_graph.executor.grading import assess, extract_final_answer
from sale_graph.llm.call import call_tags, finish_reason_of, ledger_entry, message_text, usage_of
from sale_graph.llm.endpoint_policy import EndpointPolicy, collecting_retries, report_retry
from sale_graph.llm.limits import endpoint_limiter
from sale_graph.llm.reasoning import strip_think
from sale_graph.llm.retries import CALL_ERRORS, acall_with_retries, call_with_retries, describe_error
from sale_graph.llm.text_tool_calling import TextToolCallingModel
from sale_graph.pool import AgentSpec
from sale_graph.prompts import execute_system_prompt
from sale_graph.state import Execution, SaleState, ToolUse, UsageEntry


def final_answer(text: str) -> str:
    """The answer in the executor's last message: the one extractor the bench uses too."""
    return extract_final_answer(text)


class DirectAnswer:
    """The executor with no tools: a ReAct loop without tools is one model call, so make just that call.

    It streams like the compiled agent (one ``{"model": {"messages": [answer]}}`` update)
    and calls the model under the same endpoint slot and retry policy.
    """

    def __init__(self, agent: AgentSpec, model: Any) -> None:
        self.agent = agent
        self.model = model
        self.endpoint = (agent.name, agent.base_url, agent.model)

    def stream(self, inputs: dict[str, Any], stream_mode: str, config: RunnableConfig) -> Iterator[dict[str, Any]]:
        """Yield the one model step."""
        limiter = endpoint_limiter(self.agent)

        def once() -> Any:
            with limiter.hold():
                return self.model.invoke(inputs["messages"], config=config)

        yield {"model": {"messages": [call_with_retries(once, max_retries=self.agent.max_retries, on_retry=report_retry,
                                                        endpoint=self.endpoint)]}}

    async def astream(self, inputs: dict[str, Any], stream_mode: str, config: RunnableConfig) -> AsyncIterator[dict[str, Any]]:
        """Yield the one model step (asyncio)."""
        limiter = endpoint_limiter(self.agent)

        async def once() -> Any:
            async with limiter.ahold():
                return await self.model.ainvoke(inputs["messages"], config=config)

        yield {"model": {"messages": [await acall_with_retries(once, max_retries=self.agent.max_retries, on_retry=report_retry,
                                                               endpoint=self.endpoint)]}}


_AGENTS_KEPT = 64
#: How much of each tool result the execution record keeps (the model saw all of it).
TOOL_RESULT_CHARS = 400
_agents: OrderedDict[tuple[int, ...], tuple[Any, Any, list[Any]]] = OrderedDict()
_agents_lock = threading.Lock()


def react_agent(agent: AgentSpec, model: Any, tools: list[Any]) -> Any:
    """The compiled ReAct agent for this model and these tools, built once and reused by every run.

    The winning strategy goes in as the run's first (system) message, so nothing
    run-specific is compiled in. An agent with ``tool_calling = "text"`` gets its
    model wrapped in :class:`~sale_graph.llm.text_tool_calling.TextToolCallingModel`. With
    no tools the run is one model call (:class:`DirectAnswer`). Kept: the most recent 64, with their model and tools
    (which keeps the ids of the key valid).
    """
    if not tools:
        return DirectAnswer(agent, model)
    key = (id(model), *(id(t) for t in tools))
    with _agents_lock:
        hit = _agents.get(key)
        if hit is not None:
            _agents.move_to_end(key)
            return hit[0]
    caller = TextToolCallingModel(inner=model) if agent.tool_calling == "text" and tools else model
    compiled = create_agent(caller, tools=tools, middleware=[EndpointPolicy(agent)])
    with _agents_lock:
        _agents[key] = (compiled, model, list(tools))
        while len(_agents) > _AGENTS_KEPT:
            _agents.popitem(last=False)
    return compiled


def tool_names(tools: list[Any]) -> list[str]:
    """The tools' names, as the prompts and the trace show them."""
    return [getattr(t, "name", getattr(t, "__name__", str(t))) for t in tools]


def search_first_messages(task: str, tools: list[Any], max_results: int = 3) -> list[BaseMessage]:
    """A ``web_search`` for the task text, as a tool call and its result, to open a search task's run.

    Deep-search strategies start with a search; small models often answer from
    memory instead. Running that first search for them (visible in the trace as
    an ordinary tool call) grounds the answer in the corpus; the model still
    decides what to do next.
    """
    search = next((t for t in tools if getattr(t, "name", "") == "web_search"), None)
    if search is None:
        return []
    call_id = f"call_{uuid.uuid4().hex[:12]}"
    args = {"query": task, "max_results": max_results}
    result = search.invoke({"name": "web_search", "args": args, "id": call_id, "type": "tool_call"})
    content = result.content if isinstance(result, ToolMessage) else str(result)
    return [AIMessage(content="", tool_calls=[{"name": "web_search", "args": args, "id": call_id, "type": "tool_call"}]),
            ToolMessage(content=content, tool_call_id=call_id, name="web_search")]


@dataclass
class Trace:
    """What the executor has done so far, and whether a budget ran out."""

    agent: AgentSpec
    ctx: SaleContext
    strategy: str = ""
    start: float = field(default_factory=time.perf_counter)
    step_start: float = field(default_factory=time.perf_counter)
    ledger: list[UsageEntry] = field(default_factory=list)
    steps: int = 0
    tool_calls: int = 0
    out_tokens: int = 0
    last_ai: AIMessage | None = None
    status: str = "completed"
    detail: str = ""
    truncated_steps: int = 0
    retries: list[str] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    tool_uses: list[ToolUse] = field(default_factory=list)
    _pending: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def note_calls(self, msg: AIMessage) -> None:
        """Remember the tool calls a model step asked for, to label their results."""
        self._pending.update({str(c.get("id")): (c["name"], dict(c.get("args") or {})) for c in msg.tool_calls})

    def record_result(self, msg: ToolMessage) -> None:
        """Keep one tool result, matched to the call that asked for it, cut to :data:`TOOL_RESULT_CHARS`."""
        name, args = self._pending.pop(msg.tool_call_id, (msg.name or "?", {}))
        text = message_text(msg)
        self.tool_uses.append(ToolUse(tool=name, args=args, result=text[:TOOL_RESULT_CHARS], result_chars=len(text)))

    def record(self, msg: AIMessage, runtime: Runtime[SaleContext]) -> None:
        """Account one model step: tokens, tool calls, the ledger line and a progress event."""
        self.steps += 1
        self.last_ai = msg
        inp, out, reported = usage_of(msg, message_text(msg))
        self.out_tokens += out
        self.tool_calls += len(msg.tool_calls)
        self.note_calls(msg)
        self.truncated_steps += finish_reason_of(msg) == "length"
        self.ledger.append(ledger_entry("execute", self.agent, inp, out, time.perf_counter() - self.step_start, reported))
        emit(runtime, ExecuteStepEvent(event="execute_step", agent=self.agent.name, step=self.steps,
                                       tool_calls=[c["name"] for c in msg.tool_calls], output_tokens=out))

    def over_budget(self) -> bool:
        """Stop (with the reason) when the model wants more tool calls but a budget is used up."""
        if self.last_ai is None or not self.last_ai.tool_calls:
            return False
        detail = budget_used_up(self.ctx, self.steps, self.out_tokens, time.perf_counter() - self.start)
        if detail is None:
            return False
        self.status, self.detail = "budget_exhausted", detail
        return True


def budget_used_up(ctx: SaleContext, steps: int, out_tokens: int, elapsed_s: float) -> str | None:
    """Which execution budget of ``ctx`` is used up after ``steps`` model calls, as the record says it, or ``None``.

    Args:
        ctx: the run's settings (``execute_max_steps``, ``execute_max_tokens``, ``execute_wall_time_s``).
        steps: model calls made so far.
        out_tokens: tokens they generated.
        elapsed_s: seconds since the execution started.

    Returns:
        e.g. ``"step budget of 6 model calls used up"``; ``None`` while every budget has room.
    """
    if steps >= ctx.execute_max_steps:
        return f"step budget of {ctx.execute_max_steps} model calls used up"
    if out_tokens >= ctx.execute_max_tokens:
        return f"token budget of {ctx.execute_max_tokens} generated tokens used up ({out_tokens})"
    if elapsed_s >= ctx.execute_wall_time_s:
        return f"wall-time budget of {ctx.execute_wall_time_s:g} s used up ({elapsed_s:.1f} s)"
    return None


def opening_messages(state: SaleState, tools: list[Any], trace: Trace, runtime: Runtime[SaleContext]) -> list[Any]:
    """The run's first messages: the winning strategy (system), the task, and for search tasks the opening web search."""
    system = execute_system_prompt(trace.strategy or state["selection"]["strategy"], tool_names(tools))
    opening: list[Any] = [SystemMessage(content=system), HumanMessage(content=state["task"])]
    if trace.ctx.search_first and state.get("domain") != "coding":
        prefetch = search_first_messages(search_query(state["task"]), tools)  # blocking (the search backend): async callers use a thread
        if prefetch:
            opening += prefetch
            trace.tool_calls += 1
            for msg in prefetch:
                if isinstance(msg, AIMessage):
                    trace.note_calls(msg)
                elif isinstance(msg, ToolMessage):
                    trace.record_result(msg)
            emit(runtime, ExecuteStepEvent(event="execute_step", agent=trace.agent.name, step=0, tool_calls=["web_search"],
                                           output_tokens=0))
    return opening


def _config(ctx: SaleContext) -> RunnableConfig:
    return {"recursion_limit": 2 * ctx.execute_max_steps + 1, "tags": call_tags("execute")}


def _take(update: dict[str, Any], trace: Trace, runtime: Runtime[SaleContext]) -> bool:
    """Account one streamed update of the ReAct agent; True when a budget ran out."""
    for node_update in update.values():
        messages: list[BaseMessage] = (node_update or {}).get("messages", []) if isinstance(node_update, dict) else []
        for msg in messages:
            if isinstance(msg, AIMessage):
                trace.record(msg, runtime)
            elif isinstance(msg, ToolMessage):
                trace.record_result(msg)
        trace.step_start = time.perf_counter()
    return trace.over_budget()


def _failed(trace: Trace, exc: BaseException) -> None:
    if isinstance(exc, GraphRecursionError):
        trace.status, trace.detail = "budget_exhausted", f"step budget of {trace.ctx.execute_max_steps} model calls used up"
    else:
        trace.status, trace.detail = "error", f"the winner's endpoint failed: {describe_error(exc)}"


def run_react(react: Any, opening: list[Any], trace: Trace, runtime: Runtime[SaleContext]) -> None:
    """Stream the ReAct agent's steps into ``trace`` until it answers, fails or a budget runs out."""
    trace.step_start = time.perf_counter()
    with collecting_retries(trace.retries):
        try:
            for update in react.stream({"messages": opening}, stream_mode="updates", config=_config(trace.ctx)):
                if _take(update, trace, runtime):
                    break
        except GraphRecursionError as exc:
            _failed(trace, exc)
        except CALL_ERRORS as exc:
            _failed(trace, exc)


async def arun_react(react: Any, opening: list[Any], trace: Trace, runtime: Runtime[SaleContext]) -> None:
    """:func:`run_react` for asyncio (``astream``)."""
    trace.step_start = time.perf_counter()
    with collecting_retries(trace.retries):
        try:
            async for update in react.astream({"messages": opening}, stream_mode="updates", config=_config(trace.ctx)):
                if _take(update, trace, runtime):
                    break
        except GraphRecursionError as exc:
            _failed(trace, exc)
        except CALL_ERRORS as exc:
            _failed(trace, exc)


def execution_record(state: SaleState, trace: Trace) -> Execution:
    """The execution record, with the outcome graded where the task carries tests or a gold answer."""
    text = strip_think(message_text(trace.last_ai))[0] if trace.last_ai is not None else ""
    completed = trace.status == "completed"
    answer = final_answer(text) if completed else ""
    execution = Execution(
        agent=trace.agent.name, answer=answer, status=trace.status, detail=trace.detail,  # type: ignore[typeddict-item]
        steps=trace.steps, tool_calls=trace.tool_calls, seconds=round(time.perf_counter() - trace.start, 3),
        truncated_steps=trace.truncated_steps, retries=trace.retries, tools=list(trace.tools), tool_uses=list(trace.tool_uses),
    )
    if completed:
        execution["outcome"], execution["outcome_detail"], execution["graded_by"] = assess(state, text, answer)
    elif state.get("tests") or state.get("gold"):
        execution["outcome"], execution["outcome_detail"], execution["graded_by"] = "failed", trace.detail, "none"
    else:
        execution["outcome"], execution["outcome_detail"], execution["graded_by"] = "unknown", trace.detail, "none"
    return execution


def execution_notes(trace: Trace) -> list[str]:
    """Visible notes: a stop, steps cut at their cap, retried calls."""
    notes = [stop_note(trace.detail)] if trace.status != "completed" else []
    if trace.truncated_steps:
        notes.append(f"{trace.truncated_steps} execution step(s) of {trace.agent.name} were cut at the step token cap "
                     "(finish_reason=length): raise execute_step_max_tokens")
    if trace.retries:
        notes.append(retries_note(trace.retries))
    return notes


def stop_note(detail: str) -> str:
    """The note of an execution that stopped before its answer (a budget, a failed endpoint)."""
    return f"execution stopped: {detail}"


def retries_note(retries: list[str]) -> str:
    """The note listing an execution's retried model calls."""
    return f"execution needed {len(retries)} retried call(s): " + "; ".join(retries)


def fallback_note(winner: str, detail: str, runner_up: str) -> str:
    """The note of a fallback: the winner's endpoint failed and the runner-up executed instead."""
    return f"the winner {winner} failed to execute ({detail}); the runner-up {runner_up} executed instead"
