"""One model call with its accounting: text, token usage, log-probs, dollars and seconds.

Nodes never call a chat model directly; they go through :func:`call_model`,
so every call is bounded by the run's and the endpoint's limits (:mod:`sale_graph.llm.limits`), retried by the
agent's policy (:mod:`sale_graph.llm.retries`), split into visible text and reasoning
(:mod:`sale_graph.llm.reasoning`), tagged for stream filtering, and lands in the
ledger with the endpoint's own ``usage_metadata``. A call that no callback handler
would see (no tracer, no ``messages`` stream) skips LangChain's run bookkeeping
(:mod:`sale_graph.llm.lean_invoke`); one that a handler would see is LangChain's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, convert_to_messages
from langchain_core.runnables import RunnableConfig
from langchain_openai.chat_models.base import BaseChatOpenAI

from sale_graph.llm import lean_invoke
from sale_graph.llm.limits import Limiter, acall_slot, call_slot
from sale_graph.llm.reasoning import split_output
from sale_graph.llm.retries import Endpoint, acall_with_retries, call_with_retries
from sale_graph.state import Phase, UsageEntry

if TYPE_CHECKING:  # the pool builds its models from this package (sale_graph.llm.chat_openai): types only
    from sale_graph.pool import AgentSpec


class ModelFactory(Protocol):
    """Builds the chat model an agent uses for one phase.

    The default builds a ``ChatOpenAI`` from the agent spec; tests and users who
    want another LangChain chat model for an agent pass their own.
    """

    def __call__(self, agent: AgentSpec, *, phase: Phase, max_tokens: int, logprobs: bool) -> BaseChatModel:
        """The chat model ``agent`` uses for ``phase``, capped at ``max_tokens`` per generation."""
        ...


_MODELS_KEPT = 256
_models: OrderedDict[tuple[str, ...], BaseChatModel] = OrderedDict()
_formatted: OrderedDict[tuple[int, str], tuple[BaseChatModel, Any]] = OrderedDict()
_models_lock = threading.Lock()


def openai_factory(agent: AgentSpec, *, phase: Phase, max_tokens: int, logprobs: bool) -> BaseChatModel:
    """The default :class:`ModelFactory`: ``agent.chat_model`` with the phase's caps and request fields.

    Models are reused across calls and runs (one per agent, phase, cap and log-prob
    setting, the most recent 256 kept): a ``ChatOpenAI`` holds the HTTP clients, so
    reuse keeps their connections open instead of opening new ones for every call.
    """
    key = _model_key(agent, phase, max_tokens, logprobs)
    model = _cached_model(key)
    if model is not None:
        return model
    model = agent.chat_model(max_tokens=max_tokens, logprobs=logprobs, phase=phase)
    with _models_lock:
        _models[key] = model
        while len(_models) > _MODELS_KEPT:
            _models.popitem(last=False)
    return model


def _model_key(agent: AgentSpec, phase: Phase, max_tokens: int, logprobs: bool) -> tuple[str, ...]:
    return (repr(agent), agent.api_key(), phase, str(max_tokens), str(logprobs))


def _cached_model(key: tuple[str, ...]) -> BaseChatModel | None:
    with _models_lock:
        model = _models.get(key)
        if model is not None:
            _models.move_to_end(key)
        return model


async def abuild_model(factory: ModelFactory, agent: AgentSpec, *, phase: Phase, max_tokens: int,
                       logprobs: bool) -> BaseChatModel:
    """``factory``'s model for an asyncio caller, built in a worker thread so that the event loop never blocks.

    Building a ``ChatOpenAI`` reads files (certificates, lazily imported modules); the
    default factory's models are built once and then come from its cache, on the loop.
    Any other factory is called in a worker thread every time.
    """
    if factory is openai_factory:
        model = _cached_model(_model_key(agent, phase, max_tokens, logprobs))
        if model is not None:
            return model
    return await asyncio.to_thread(factory, agent, phase=phase, max_tokens=max_tokens, logprobs=logprobs)


@dataclass
class CallResult:
    """What one call returned and what it cost.

    ``text`` is the *visible* answer (reasoning removed, see :mod:`sale_graph.llm.reasoning`);
    ``output_tokens`` counts every generated token, reasoning included (what is billed);
    ``visible_tokens`` counts the visible text only (a bid's ``|s|``).
    """

    text: str
    input_tokens: int
    output_tokens: int
    seconds: float
    usage_reported: bool
    top_logprobs: list[list[float]] | None
    message: AIMessage
    visible_tokens: int = 0
    reasoning_tokens: int = 0
    token_source: str = "usage"
    finish_reason: str | None = None
    retries: list[str] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        """Whether the generation stopped at its token cap (``finish_reason == "length"``)."""
        return self.finish_reason == "length"


def with_response_format(model: BaseChatModel, response_format: dict[str, Any] | None) -> Any:
    """``model`` asking for ``response_format``, sent as a plain request field.

    ``ChatOpenAI`` turns a ``response_format`` argument into the SDK's ``parse`` path,
    which raises (instead of returning) when the answer hits its token cap and does
    not stream; in ``extra_body`` the field is sent as is, like any other, so a cut
    answer is recorded as truncated. Other chat models get it as a call argument.
    """
    if response_format is None:
        return model
    key = (id(model), json.dumps(response_format, sort_keys=True))
    with _models_lock:
        hit = _formatted.get(key)
        if hit is not None:
            _formatted.move_to_end(key)
            return hit[1]
    if isinstance(model, BaseChatOpenAI):
        copy: Any = model.model_copy(update={"extra_body": {**(model.extra_body or {}), "response_format": response_format}})
    else:
        copy = model.bind(response_format=response_format)
    with _models_lock:
        _formatted[key] = (model, copy)  # the original is kept so its id stays unique while the entry lives
        while len(_formatted) > _MODELS_KEPT:
            _formatted.popitem(last=False)
    return copy


@functools.lru_cache(maxsize=1024)
def _prompt_message(role: str, text: str) -> BaseMessage:
    return convert_to_messages([(role, text)])[0]


def prompt_messages(messages: Sequence[Any]) -> list[Any]:
    """``messages`` with each ``(role, text)`` pair as a LangChain message, the same object for the same pair.

    The prompts are ``(role, text)`` pairs, and most of them repeat from call to call
    (a judge's instructions and worked examples, the same bid prompt for every
    agent); ``ChatOpenAI`` would build a message object for each pair twice per
    call. Messages are read, never changed, by the chat models. Anything else
    (messages, dicts) passes through as it is.
    """
    return [_prompt_message(*m) if type(m) is tuple and len(m) == 2 and type(m[0]) is str and type(m[1]) is str else m
            for m in messages]


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


def usage_of(message: AIMessage, text: str) -> tuple[int, int, bool]:
    """(input, output, reported) token counts; estimated at ~4 characters a token when the endpoint is silent."""
    usage = message.usage_metadata
    if usage and (usage.get("input_tokens") or usage.get("output_tokens")):
        return int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)), True
    return 0, max(1, len(text) // 4) if text else 0, False


def finish_reason_of(message: AIMessage) -> str | None:
    """The endpoint's ``finish_reason`` (``stop``, ``length``, ``tool_calls``...), when it sent one."""
    value = (message.response_metadata or {}).get("finish_reason")
    return str(value) if value else None


def call_tags(phase: str) -> list[str]:
    """Tags on every internal call of a phase, so a caller can filter them out of a ``messages`` stream.

    Each call carries ``sale`` and ``sale:<phase>`` (``sale:bid``, ``sale:jury``,
    ``sale:refine``, ``sale:execute``). The executor is a nested agent graph: its token
    chunks reach a ``messages`` stream with ``subgraphs=True``; without it, the answer
    arrives as the ``execute`` node's ``AIMessage`` (untagged), so filtering out the
    ``sale`` tags leaves exactly the answer.
    """
    return ["sale", f"sale:{phase}"]


def _result(msg: Any, seconds: float, retries: list[str]) -> CallResult:
    if not isinstance(msg, AIMessage):  # pragma: no cover - chat models return AIMessage
        msg = AIMessage(content=message_text(msg))
    raw = message_text(msg)
    inp, out, reported = usage_of(msg, raw)
    visible = split_output(msg, raw, out)
    return CallResult(
        text=visible.text, input_tokens=inp, output_tokens=out, seconds=seconds, usage_reported=reported,
        top_logprobs=visible.top_logprobs, message=msg, visible_tokens=visible.visible_tokens,
        reasoning_tokens=visible.reasoning_tokens, token_source=visible.token_source if reported else "estimate",
        finish_reason=finish_reason_of(msg), retries=retries,
    )


def _endpoint(agent: AgentSpec | None) -> Endpoint:
    return (agent.name, agent.base_url, agent.model) if agent is not None else ("?", "?", "?")


def _slot(agent: AgentSpec | None, run: Limiter | None) -> contextlib.AbstractContextManager[None]:
    if agent is not None:
        return call_slot(agent, run)
    return run.hold() if run is not None else contextlib.nullcontext()


def _aslot(agent: AgentSpec | None, run: Limiter | None) -> contextlib.AbstractAsyncContextManager[None]:
    if agent is not None:
        return acall_slot(agent, run)
    return run.ahold() if run is not None else contextlib.nullcontext()


def call_model(
    model: BaseChatModel,
    messages: Sequence[Any],
    *,
    agent: AgentSpec | None = None,
    phase: str = "bid",
    run: Limiter | None = None,
    **kwargs: Any,
) -> CallResult:
    """Invoke ``model`` once within the run's and the endpoint's limits, retried by the agent's policy.

    ``agent`` gives the retry budget (``max_retries``), the endpoint's concurrency
    bound, and names the endpoint in a fatal error
    (:class:`~sale_graph.errors.EndpointError`: a bad key, URL or model name).
    ``run`` is the run's fan-out bound. Retried failures are listed in
    ``CallResult.retries``. ``kwargs`` go to ``model.invoke`` (e.g. ``response_format``).
    """
    retries: list[str] = []
    config: RunnableConfig = {"tags": call_tags(phase)}
    prompt = prompt_messages(messages)

    def once() -> Any:
        with _slot(agent, run):
            return model.invoke(prompt, config=config, **kwargs) if kwargs else lean_invoke.invoke(model, prompt, config)

    start = time.perf_counter()
    msg = call_with_retries(once, max_retries=agent.max_retries if agent is not None else 0, on_retry=retries.append,
                            endpoint=_endpoint(agent), retries=retries)
    return _result(msg, time.perf_counter() - start, retries)


async def acall_model(
    model: BaseChatModel,
    messages: Sequence[Any],
    *,
    agent: AgentSpec | None = None,
    phase: str = "bid",
    run: Limiter | None = None,
    **kwargs: Any,
) -> CallResult:
    """:func:`call_model` for asyncio: awaits the model (``ainvoke``) and the limits, never blocking the loop."""
    retries: list[str] = []
    config: RunnableConfig = {"tags": call_tags(phase)}
    prompt = prompt_messages(messages)

    async def once() -> Any:
        async with _aslot(agent, run):
            if kwargs:
                return await model.ainvoke(prompt, config=config, **kwargs)
            return await lean_invoke.ainvoke(model, prompt, config)

    start = time.perf_counter()
    msg = await acall_with_retries(once, max_retries=agent.max_retries if agent is not None else 0, on_retry=retries.append,
                                   endpoint=_endpoint(agent), retries=retries)
    return _result(msg, time.perf_counter() - start, retries)


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
