"""``execute``: the winner runs the task as a ReAct agent, within a step, token and time budget."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langgraph.errors import GraphRecursionError
from langgraph.runtime import Runtime

from sale_graph.context import SaleContext
from sale_graph.llm import ledger_entry, message_text, usage_of
from sale_graph.nodes._common import CALL_ERRORS, ctx_of, describe_error, emit
from sale_graph.prompts import execute_system_prompt
from sale_graph.services import SaleServices
from sale_graph.outcome import assess
from sale_graph.state import Execution, SaleState, UsageEntry
from sale_graph.text_tools import TextToolCallingModel

_FINAL = re.compile(r"final answer\s*:\s*(.+)", re.IGNORECASE | re.DOTALL)


def final_answer(text: str) -> str:
    """The answer part of the executor's last message (after 'Final Answer:' when present)."""
    m = _FINAL.search(text)
    return (m.group(1) if m else text).strip()


def _tool_names(tools: list[Any]) -> list[str]:
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


def make_execute_node(services: SaleServices) -> Any:
    """Build the ``execute`` node bound to ``services`` (its tools and model factory)."""

    def execute(state: SaleState, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Run the winning agent with its winning strategy; stop cleanly when a budget runs out."""
        from langchain.agents import create_agent

        ctx = ctx_of(runtime)
        selection = state["selection"]
        agent = ctx.resolved_pool().get(selection["winner"])
        tools = services.tools_for(state.get("domain"), ctx)
        model = services.model_factory(agent, phase="execute", max_tokens=ctx.execute_step_max_tokens, logprobs=False)
        if agent.tool_calling == "text" and tools:
            model = TextToolCallingModel(inner=model)
        react = create_agent(model, tools=tools, system_prompt=execute_system_prompt(selection["strategy"], _tool_names(tools)))
        emit(runtime, "execute_start", agent=agent.name, tools=_tool_names(tools))

        start = time.perf_counter()
        ledger: list[UsageEntry] = []
        steps = tool_calls = out_tokens = 0
        last_ai: AIMessage | None = None
        status, detail = "completed", ""
        opening: list[Any] = [("user", state["task"])]
        if ctx.search_first and state.get("domain") == "search":
            prefetch = search_first_messages(state["task"], tools)
            if prefetch:
                opening += prefetch
                tool_calls += 1
                emit(runtime, "execute_step", agent=agent.name, step=0, tool_calls=["web_search"], output_tokens=0)
        step_start = time.perf_counter()
        try:
            stream = react.stream(
                {"messages": opening},
                stream_mode="updates",
                config={"recursion_limit": 2 * ctx.execute_max_steps + 1},
            )
            for update in stream:
                for node_update in update.values():
                    messages: list[BaseMessage] = (node_update or {}).get("messages", []) if isinstance(node_update, dict) else []
                    for msg in messages:
                        if isinstance(msg, AIMessage):
                            steps += 1
                            last_ai = msg
                            inp, out, reported = usage_of(msg, message_text(msg))
                            out_tokens += out
                            tool_calls += len(msg.tool_calls)
                            ledger.append(ledger_entry("execute", agent, inp, out, time.perf_counter() - step_start, reported))
                            emit(runtime, "execute_step", agent=agent.name, step=steps, tool_calls=[c["name"] for c in msg.tool_calls], output_tokens=out)
                    step_start = time.perf_counter()
                elapsed = time.perf_counter() - start
                pending_tools = last_ai is not None and bool(last_ai.tool_calls)
                if pending_tools and steps >= ctx.execute_max_steps:
                    status, detail = "budget_exhausted", f"step budget of {ctx.execute_max_steps} model calls used up"
                elif pending_tools and out_tokens >= ctx.execute_max_tokens:
                    status, detail = "budget_exhausted", f"token budget of {ctx.execute_max_tokens} generated tokens used up ({out_tokens})"
                elif pending_tools and elapsed >= ctx.execute_wall_time_s:
                    status, detail = "budget_exhausted", f"wall-time budget of {ctx.execute_wall_time_s:g} s used up ({elapsed:.1f} s)"
                if status != "completed":
                    break
        except GraphRecursionError:
            status, detail = "budget_exhausted", f"step budget of {ctx.execute_max_steps} model calls used up"
        except CALL_ERRORS as exc:
            status, detail = "error", f"the winner's endpoint failed: {describe_error(exc)}"

        text = message_text(last_ai) if last_ai is not None else ""
        answer = final_answer(text) if status == "completed" else ""
        execution = Execution(
            agent=agent.name, answer=answer, status=status, detail=detail,  # type: ignore[typeddict-item]
            steps=steps, tool_calls=tool_calls, seconds=round(time.perf_counter() - start, 3),
        )
        if status == "completed":
            execution["outcome"], execution["outcome_detail"] = assess(state, text, answer)
        elif state.get("tests") or state.get("gold"):
            execution["outcome"], execution["outcome_detail"] = "failed", detail
        else:
            execution["outcome"], execution["outcome_detail"] = "unknown", detail
        emit(runtime, "execute", agent=agent.name, status=status, answer=answer[:200], detail=detail, outcome=execution["outcome"])
        notes = [f"execution stopped: {detail}"] if status != "completed" else []
        return {"execution": execution, "answer": answer, "ledger": ledger, "notes": notes}

    return execute
