"""Tool calling through plain text, for endpoints whose models make no native tool calls.

Small local models behind llama-cpp-python's server (SmolLM2 with its own chat
template) never emit a tool call with ``tool_choice="auto"``. For such agents
(``tool_calling = "text"`` in the pool config) the executor wraps the chat model
in :class:`TextToolCallingModel`: tools are described in the prompt, the model
writes ``Action: <tool>`` / ``Action Input: <json>`` lines (the classic ReAct
text format), and the wrapper turns them into real ``tool_calls`` on the
returned ``AIMessage``. ``langchain.agents.create_agent`` then runs the tools
and loops exactly as it does for native tool calls; tool results come back to
the model as ``Observation:`` turns.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool

_ACTION = re.compile(r"Action\s*:\s*([A-Za-z_][\w\-]*)\s*\n+\s*Action\s*Input\s*:\s*(.+)", re.DOTALL | re.IGNORECASE)
_FINAL = re.compile(r"final answer\s*:", re.IGNORECASE)


def tool_specs(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """OpenAI-style function specs (name, description, parameters) of LangChain tools."""
    return [convert_to_openai_tool(t)["function"] for t in tools]


def describe_tools(specs: Sequence[dict[str, Any]]) -> str:
    """The instructions and tool list appended to the system prompt."""
    lines = ["You can use these tools:"]
    for s in specs:
        params = s.get("parameters", {}).get("properties", {})
        args = ", ".join(f"{k}: {v.get('type', 'string')}" for k, v in params.items())
        lines.append(f"- {s['name']}({args}): {s.get('description', '').strip().splitlines()[0] if s.get('description') else ''}")
    lines.append(
        "To use a tool, write exactly two lines and stop:\nAction: <tool name>\n"
        'Action Input: {"<argument>": <value>}\n'
        "You will then get an Observation with the result. When you know the answer, write:\nFinal Answer: <answer>"
    )
    return "\n".join(lines)


def parse_action(text: str, specs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The tool call written in ``text``, or ``None`` (no action, unknown tool, or a final answer first).

    ``Action Input`` is JSON; a bare string is accepted for a tool with one
    argument. Returns a LangChain tool-call dict (name, args, id).
    """
    m = _ACTION.search(text)
    if not m:
        return None
    final = _FINAL.search(text)
    if final and final.start() < m.start():
        return None
    by_name = {s["name"]: s for s in specs}
    name = m.group(1)
    if name not in by_name:
        return None
    raw = m.group(2).strip()
    raw = raw.split("\nObservation", 1)[0].strip()
    args: Any
    try:
        args = json.JSONDecoder().raw_decode(raw)[0] if raw.startswith("{") else None
    except json.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        params = list(by_name[name].get("parameters", {}).get("properties", {}))
        if len(params) != 1:
            return None
        value = raw.splitlines()[0].strip().strip('"').strip("'") if raw else ""
        args = {params[0]: value}
    return {"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}


def render_for_text_model(messages: Sequence[BaseMessage], specs: Sequence[dict[str, Any]]) -> list[BaseMessage]:
    """Rewrite an agent conversation for a model that only sees system/user/assistant text."""
    out: list[BaseMessage] = []
    described = False
    for msg in messages:
        if isinstance(msg, SystemMessage):
            out.append(SystemMessage(content=f"{msg.content}\n\n{describe_tools(specs)}" if specs else msg.content))
            described = True
        elif isinstance(msg, AIMessage):
            text = str(msg.content or "")
            for call in msg.tool_calls:
                if f"Action: {call['name']}" not in text:
                    text += f"\nAction: {call['name']}\nAction Input: {json.dumps(call['args'])}"
            out.append(AIMessage(content=text.strip()))
        elif isinstance(msg, ToolMessage):
            out.append(HumanMessage(content=f"Observation: {msg.content}"))
        else:
            out.append(msg)
    if specs and not described:
        out.insert(0, SystemMessage(content=describe_tools(specs)))
    return out


class TextToolCallingModel(BaseChatModel):
    """Wraps a chat model so that ReAct-style text actions become native ``tool_calls``."""

    inner: BaseChatModel
    specs: list[dict[str, Any]] = []

    @property
    def _llm_type(self) -> str:
        return "text-tool-calling"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> TextToolCallingModel:
        """Remember the tools to describe in the prompt (``tool_choice`` and the like are ignored)."""
        return self.model_copy(update={"specs": tool_specs(tools)})

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        rendered = render_for_text_model(messages, self.specs)
        stops = list(stop or []) + (["\nObservation:"] if self.specs else [])
        reply = self.inner.invoke(rendered, stop=stops or None)
        text = str(reply.content or "")
        call = parse_action(text, self.specs) if self.specs else None
        message = AIMessage(
            content=text,
            tool_calls=[call] if call else [],
            usage_metadata=getattr(reply, "usage_metadata", None),
            response_metadata=dict(getattr(reply, "response_metadata", {}) or {}),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])
