"""A SALE chat model's call without LangChain's run bookkeeping when no callback handler would see it.

``BaseChatModel.ainvoke`` builds a callback manager, the invocation and LangSmith
parameters, a run per prompt (``on_chat_model_start``), a task for the generation,
an ``LLMResult`` and ``on_llm_end``: about 0.15 ms of CPU a call, spent for the
handlers. When the call's configuration gives none (no callbacks passed or inherited
from the graph run, no tracing, no ``verbose``, no configure hook such as
``get_openai_callback``: LangChain's own ``CallbackManager.configure`` decides), no
LLM cache and no rate limiter are set and the model does not stream,
:func:`ainvoke` / :func:`invoke` call the model's ``_agenerate`` / ``_generate``
directly and finish the message as ``BaseChatModel`` does (its response metadata, the
run-shaped ``lc_run--<id>-0`` id). Whenever a handler would see the call (a
LangSmith tracer, a ``messages`` stream of the graph, ``astream_events``), it goes
through ``ainvoke`` / ``invoke`` unchanged, so tracing users see every call with its
tags and usage.

Only :class:`~sale_graph.llm.chat_openai.SaleChatOpenAI` models take the lean path,
and only for a call with no extra arguments; any other model or call is LangChain's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManager, CallbackManager
from langchain_core.globals import get_llm_cache
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ensure_config

from sale_graph.llm.chat_openai import SaleChatOpenAI

try:  # BaseChatModel's own helpers: without them (another langchain-core) every call goes through ainvoke
    from langchain_core.language_models._utils import _normalize_messages
    from langchain_core.language_models.chat_models import _gen_info_and_msg_metadata
    from langchain_core.utils.utils import LC_ID_PREFIX
    from langchain_core.utils.uuid import uuid7

    _HELPERS = True
except ImportError:  # pragma: no cover - depends on the installed langchain-core
    _HELPERS = False


def _lean_model(model: Any) -> SaleChatOpenAI | None:
    """``model`` when its call may skip the run bookkeeping, whatever the configuration; else ``None``."""
    if not _HELPERS or not isinstance(model, SaleChatOpenAI) or model.streaming or model.rate_limiter is not None:
        return None
    if model.output_version not in (None, "v0"):
        return None
    if model.cache is not False and (model.cache is not None or get_llm_cache() is not None):
        return None
    return model


def _quiet(model: SaleChatOpenAI, config: RunnableConfig, manager: type[CallbackManager] | type[AsyncCallbackManager]) -> bool:
    """Whether no callback handler would see this call (LangChain's configure decides, as ``agenerate`` does)."""
    if config.get("run_id") is not None:
        return False  # a run id asked for: the caller wants the run
    configured = manager.configure(config.get("callbacks"), model.callbacks, model.verbose, config.get("tags"), model.tags,
                                   config.get("metadata"), model.metadata)
    return not configured.handlers and not configured.inheritable_handlers


def _message(result: ChatResult) -> AIMessage:
    """The first generation's message, finished as ``BaseChatModel._agenerate_with_cache`` finishes it."""
    run = uuid7()
    for index, generation in enumerate(result.generations):
        if generation.message.id is None:
            generation.message.id = f"{LC_ID_PREFIX}-{run}-{index}"
        generation.message.response_metadata = _gen_info_and_msg_metadata(generation)
    first = result.generations[0].message
    if len(result.generations) == 1 and result.llm_output is not None:
        first.response_metadata = {**result.llm_output, **first.response_metadata}
    if not isinstance(first, AIMessage):  # pragma: no cover - chat models answer with AIMessage
        return AIMessage(content=first.content)
    return first


def _messages(model: SaleChatOpenAI, prompt: Sequence[Any]) -> list[BaseMessage]:
    return _normalize_messages(model._convert_input(list(prompt)).to_messages())


async def ainvoke(model: Any, prompt: Sequence[Any], config: RunnableConfig) -> Any:
    """``await model.ainvoke(prompt, config=config)``, without the run bookkeeping when no handler would see it."""
    lean = _lean_model(model)
    full = ensure_config(config)
    if lean is None or not _quiet(lean, full, AsyncCallbackManager):
        return await model.ainvoke(prompt, config=config)
    return _message(await lean._agenerate(_messages(lean, prompt)))


def invoke(model: Any, prompt: Sequence[Any], config: RunnableConfig) -> Any:
    """``model.invoke(prompt, config=config)``, without the run bookkeeping when no handler would see it."""
    lean = _lean_model(model)
    full = ensure_config(config)
    if lean is None or not _quiet(lean, full, CallbackManager):
        return model.invoke(prompt, config=config)
    return _message(lean._generate(_messages(lean, prompt)))
