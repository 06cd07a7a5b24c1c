"""One model call with its accounting: text, token usage, log-probs, dollars and seconds.

Nodes never call a chat model directly; they go through :func:`call_model`,
so every call is bounded by the run's concurrency limiter and lands in the
ledger with the endpoint's own ``usage_metadata``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage

from sale_graph.pool import AgentSpec
from sale_graph.state import Phase, UsageEntry


class ModelFactory(Protocol):
    """Builds the chat model an agent uses for one phase.

    The default builds a ``ChatOpenAI`` from the agent spec; tests and users who
    want another LangChain chat model for an agent pass their own.
    """

    def __call__(self, agent: AgentSpec, *, phase: Phase, max_tokens: int, logprobs: bool) -> BaseChatModel: ...


def openai_factory(agent: AgentSpec, *, phase: Phase, max_tokens: int, logprobs: bool) -> BaseChatModel:
    """The default :class:`ModelFactory`: ``agent.chat_model`` with the phase's caps."""
    return agent.chat_model(max_tokens=max_tokens, logprobs=logprobs)


@dataclass
class CallResult:
    """What one call returned and what it cost."""

    text: str
    input_tokens: int
    output_tokens: int
    seconds: float
    usage_reported: bool
    top_logprobs: list[list[float]] | None
    message: AIMessage


def message_text(message: BaseMessage) -> str:
    """The plain text of a message whose content may be a string or a list of parts."""
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and part.get("type") == "text":
            parts.append(str(part.get("text", "")))
    return "".join(parts)


def extract_top_logprobs(message: AIMessage) -> list[list[float]] | None:
    """Per generated token, the log-probs of its top alternatives, from ``response_metadata['logprobs']``.

    Returns ``None`` when the endpoint sent no log-probs. Where a token carries
    only its own log-prob, that single value is used.
    """
    lp = (message.response_metadata or {}).get("logprobs")
    if not lp:
        return None
    content = lp.get("content") if isinstance(lp, dict) else None
    if not content:
        return None
    out: list[list[float]] = []
    for tok in content:
        tops = tok.get("top_logprobs") or []
        values = [float(t["logprob"]) for t in tops if t.get("logprob") is not None]
        if not values and tok.get("logprob") is not None:
            values = [float(tok["logprob"])]
        out.append(values)
    return out


def usage_of(message: AIMessage, text: str) -> tuple[int, int, bool]:
    """(input, output, reported) token counts; estimated at ~4 characters a token when the endpoint is silent."""
    usage = message.usage_metadata
    if usage and (usage.get("input_tokens") or usage.get("output_tokens")):
        return int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)), True
    return 0, max(1, len(text) // 4) if text else 0, False


def call_model(
    model: BaseChatModel,
    messages: Sequence[Any],
    *,
    limiter: threading.BoundedSemaphore | None = None,
) -> CallResult:
    """Invoke ``model`` once under ``limiter`` and measure it."""
    start = time.perf_counter()
    if limiter is not None:
        with limiter:
            msg = model.invoke(list(messages))
    else:
        msg = model.invoke(list(messages))
    seconds = time.perf_counter() - start
    if not isinstance(msg, AIMessage):  # pragma: no cover - chat models return AIMessage
        msg = AIMessage(content=message_text(msg))
    text = message_text(msg)
    inp, out, reported = usage_of(msg, text)
    return CallResult(text, inp, out, seconds, reported, extract_top_logprobs(msg), msg)


def ledger_entry(
    phase: Phase, agent: AgentSpec, input_tokens: int, output_tokens: int, seconds: float, usage_reported: bool = True
) -> UsageEntry:
    """A ledger line for a call, priced with the agent's config prices.

    ``usage_reported`` is False when the endpoint sent no token usage and the
    counts are the ~4-characters-a-token estimate of :func:`usage_of`.
    """
    entry = UsageEntry(
        phase=phase,
        agent=agent.name,
        input_tokens=int(input_tokens),
        output_tokens=int(output_tokens),
        cost_usd=agent.call_cost(input_tokens, output_tokens),
        seconds=round(seconds, 4),
    )
    if not usage_reported:
        entry["estimated"] = True
    return entry


Factory = Callable[..., BaseChatModel]
