"""Wire-server models and pools for the LangChain / LangGraph integration tests and the examples' tests.

Two agents: ``small`` (cheap) bids a one-step plan, ``large`` (ten times dearer) bids a plan
with the word ``CAREFUL`` in it; every judge scores a ``CAREFUL`` plan 5 and any other 1, so
``large`` wins each auction, and a refined bid by ``small`` (which never says ``CAREFUL``)
never beats it. Judges answer in text (``structured_output = "none"``), so these scores
are what the jury returns. The agent's own model calls (the system prompt carries the
middleware's strategy note, or the library executor's) call the ``add`` tool once,
natively or as a text action, then answer ``Final Answer: 5``.

:func:`native_tool_calls` teaches the wire server OpenAI's native tool-call message
(``message.tool_calls`` [OAI-OBJECT]) for the duration of a test: an answer written
``CALL <name> <json args>`` goes out as a tool call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest
from langchain_core.tools import tool

from sale_graph.pool import AgentPool, AgentSpec
from tests.contract import wire_formats, wire_server
from tests.contract.wire_formats import ModelBehaviour, last_user_text, message_text
from tests.contract.wire_server import RecordedRequest, WireServer

TASK = "What is 2 + 3? Use the add tool."
SMALL_PLAN = "1. Answer from memory."
LARGE_PLAN = "1. Call add(2, 3). 2. CAREFUL: check the sum. 3. Answer with the number."
REFINED_PLAN = "1. Answer directly from memory."
PRICES = {"small": 0.1, "large": 1.0}
MIDDLEWARE_NOTE = "A strategy auction chose you"  # sale_graph.integrations.middleware.STRATEGY_PROMPT
EXECUTOR_NOTE = "You won the auction"  # sale_graph.prompts.execute_system_prompt
NODE_NOTE = "Follow this plan"  # what the example apps' agent nodes put in their system prompt


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def system_text(request: Mapping[str, Any]) -> str:
    """The text of the request's system message, or ``""``."""
    messages = request.get("messages") or []
    first = messages[0] if messages else {}
    return message_text(first.get("content")) if first.get("role") == "system" else ""


def role_of(request: Mapping[str, Any]) -> str:
    """``jury``, ``refine``, ``bid`` (the auction) or ``agent`` (a model call of the app's agent)."""
    system = system_text(request)
    if system.startswith("Rate how likely"):
        return "jury"
    if request.get("tools") or any(note in system for note in (MIDDLEWARE_NOTE, EXECUTOR_NOTE, NODE_NOTE)):
        return "agent"  # the auction's own calls never offer tools
    if last_user_text(request).startswith("Here are strategies from past auctions"):
        return "refine"
    return "bid"


def agent_answer(request: Mapping[str, Any]) -> str:
    """One ``add`` call (native when the request offers tools, else a text action), then the answer."""
    messages = request.get("messages") or []
    called = any(m.get("role") == "tool" or "Observation:" in message_text(m.get("content")) for m in messages)
    if called:
        return "Final Answer: 5"
    if request.get("tools"):
        return 'CALL add {"a": 2, "b": 3}'
    if "Action:" in system_text(request):  # text tool calling: the tools are described in the prompt
        return 'Thought: add them.\nAction: add\nAction Input: {"a": 2, "b": 3}'
    return "Final Answer: 5"


def responder(model: str, jury: Callable[[str], str] | None = None) -> Callable[[Mapping[str, Any]], str]:
    """What ``model`` answers to each kind of request."""

    def respond(request: Mapping[str, Any]) -> str:
        role = role_of(request)
        if role == "jury":
            return jury(last_user_text(request)) if jury else ("SCORE: 5" if "CAREFUL" in last_user_text(request) else "SCORE: 1")
        if role == "agent":
            return agent_answer(request)
        if role == "refine":
            return REFINED_PLAN
        return LARGE_PLAN if model == "large" else SMALL_PLAN

    return respond


def behaviours(jury: Callable[[str], str] | None = None, latency_s: float = 0.0) -> dict[str, ModelBehaviour]:
    """The served models: ``small``, ``large`` and ``default`` (the agent's own model, which should stay idle)."""
    return {m: ModelBehaviour(responder=responder(m, jury), latency_s=latency_s) for m in ("small", "large", "default")}


class Served(Protocol):
    """Where the models are served: a :class:`WireServer`, or its URL when it runs in another process."""

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``."""
        ...


def agent_fields(server: Served, **overrides: Any) -> list[dict[str, Any]]:
    """The pool's ``[[agents]]`` tables; ``overrides`` maps an agent name to fields to change."""
    out = []
    for name, price in PRICES.items():
        fields = {"name": name, "model": name, "base_url": server.base_url, "price_input": price, "price_output": price,
                  "structured_output": "none", "timeout_s": 10.0, "max_retries": 0}
        fields.update(overrides.get(name, {}))
        out.append(fields)
    return out


def write_pool(path: Path, server: Served, **overrides: Any) -> Path:
    """Write a pool TOML for ``server`` at ``path``; returns the path."""
    lines = []
    for fields in agent_fields(server, **overrides):
        lines.append("[[agents]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in fields.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def chats(server: WireServer, role: str | None = None, model: str | None = None) -> list[RecordedRequest]:
    """The chat requests the server saw, optionally of one kind and one model, in arrival order."""
    return [r for r in server.requests(model) if r.path.endswith("/chat/completions") and r.body is not None
            and (role is None or role_of(r.body) == role)]


def native_tool_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the wire server send ``CALL <name> <json>`` answers as native tool calls [OAI-OBJECT]."""
    original = wire_formats._message

    def message(behaviour: ModelBehaviour, gen: wire_formats.Generation) -> dict[str, Any]:
        text = gen.raw_text
        if not text.startswith("CALL "):
            return original(behaviour, gen)
        _, name, args = text.split(" ", 2)
        call = {"id": f"call_{abs(hash(args)) % 10**8}", "type": "function", "function": {"name": name, "arguments": args}}
        return {"role": "assistant", "content": None, "tool_calls": [call]}

    monkeypatch.setattr(wire_formats, "_message", message)


def refuse_tools(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    """Make ``model`` answer a request offering tools as vLLM without tool calling does: HTTP 400."""
    original = wire_server.check_request

    def check(behaviour: ModelBehaviour, body: Mapping[str, Any]) -> Any:
        if body.get("model") == model and body.get("tools"):
            return wire_formats.openai_error(
                400, message='"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set')
        return original(behaviour, body)

    monkeypatch.setattr(wire_server, "check_request", check)


def fail_agent_calls(monkeypatch: pytest.MonkeyPatch, model: str, status: int, retry_after: str | None = "1",
                     times: int | None = None) -> None:
    """Make ``model`` answer its agent calls (not its bids or votes) with HTTP ``status`` in OpenAI's error shape.

    ``times``: only its first that many agent calls fail (default: every one).
    """
    original = wire_server.check_request
    failed = [0]

    def check(behaviour: ModelBehaviour, body: Mapping[str, Any]) -> Any:
        if body.get("model") == model and role_of(body) == "agent" and (times is None or failed[0] < times):
            failed[0] += 1
            return wire_formats.openai_error(status, model=model, retry_after=retry_after)
        return original(behaviour, body)

    monkeypatch.setattr(wire_server, "check_request", check)


def pool_of(server: WireServer, **overrides: Any) -> AgentPool:
    """The contract pool (see :func:`agent_fields`) on ``server``, as the library loads it."""
    return AgentPool(tuple(AgentSpec(**f) for f in agent_fields(server, **overrides)), source="contract pool")
