"""Fake chat models for unit tests: scripted answers, real usage metadata and log-probs, no network."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage

from sale_graph.pool import AgentPool, AgentSpec


class ScriptedChatModel(GenericFakeChatModel):
    """A chat model whose answer is computed from the prompt by ``responder``.

    ``bind_tools`` returns the model itself, so the executor can bind tools to it.
    """

    responder: Callable[[list[BaseMessage]], AIMessage | str | Exception]
    delay_s: float = 0.0
    messages: Any = iter(())

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        from langchain_core.outputs import ChatGeneration, ChatResult

        if self.delay_s:
            time.sleep(self.delay_s)
        out = self.responder(messages)
        if isinstance(out, Exception):
            raise out
        if isinstance(out, str):
            n_in = sum(len(str(m.content).split()) for m in messages)
            n_out = max(1, len(out.split()))
            out = AIMessage(content=out, usage_metadata={"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out})
        return ChatResult(generations=[ChatGeneration(message=out)])

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self


def spec(name: str, price: float) -> AgentSpec:
    """An agent spec that never reaches a network (tests pass check_endpoints=False)."""
    return AgentSpec(name=name, model=name, base_url="http://127.0.0.1:9/v1", price_input=price, price_output=price)


def pool_of(*agents: tuple[str, float]) -> AgentPool:
    return AgentPool(tuple(spec(n, p) for n, p in agents), source="test")


def prompt_text(messages: list[BaseMessage]) -> str:
    return "\n".join(str(m.content) for m in messages)


class FakeFactory:
    """A model factory routing each (agent, phase) to a responder; records every call."""

    def __init__(self, responders: dict[str, Callable[[str, list[BaseMessage]], Any]], delay_s: float = 0.0) -> None:
        self.responders = responders
        self.delay_s = delay_s
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, agent: AgentSpec, *, phase: str, max_tokens: int, logprobs: bool) -> ScriptedChatModel:
        responder = self.responders[phase]

        def respond(messages: list[BaseMessage]) -> Any:
            with self._lock:
                self.calls.append((agent.name, phase))
            return responder(agent.name, messages)

        return ScriptedChatModel(responder=respond, delay_s=self.delay_s)
