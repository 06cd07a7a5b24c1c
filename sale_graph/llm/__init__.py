"""The model-call stack: every call an agent makes, bounded, retried and accounted for.

The nodes never call a chat model directly; they go through :func:`call_model` /
:func:`acall_model`, and the winner's ReAct agent through ``EndpointPolicy``.
This package depends on nothing above it: only on the library's errors and the
state's ledger type (and on the pool's :class:`~sale_graph.pool.AgentSpec` for type
hints only; the pool builds its chat models from :mod:`~sale_graph.llm.chat_openai`).

Modules:

- :mod:`~sale_graph.llm.call`: one model call with its accounting (text, tokens,
  log-probs, dollars, seconds), the :class:`ModelFactory` protocol and its default.
- :mod:`~sale_graph.llm.retries`: what is retried, how long to wait, what stops the
  run (:class:`~sale_graph.errors.EndpointError`); :data:`CALL_ERRORS`, the
  failures a caller records and survives.
- :mod:`~sale_graph.llm.limits`: the concurrency bounds, per endpoint (each worker's
  share when several processes share the endpoints) and per run.
- :mod:`~sale_graph.llm.reasoning`: a reasoning model's visible text versus its
  reasoning, and their token counts.
- :mod:`~sale_graph.llm.chat_openai`: :class:`SaleChatOpenAI`, the ``ChatOpenAI``
  that keeps a server's separated reasoning.
- :mod:`~sale_graph.llm.async_http`: the async HTTP client of the chat models, with one
  connection pool per event loop.
- :mod:`~sale_graph.llm.text_tool_calling`: tool calls written as text, for models
  that make no native ones.
- :mod:`~sale_graph.llm.endpoint_policy`: :class:`~sale_graph.llm.endpoint_policy.EndpointPolicy`,
  the limits and the retry policy as a LangChain agent middleware. Import it from its
  module: it loads ``langchain.agents``, which the rest of the stack (and ``sale --help``,
  through the pool) does not need.
"""

from sale_graph.llm.call import (
    CallResult,
    ModelFactory,
    abuild_model,
    acall_model,
    call_model,
    call_tags,
    finish_reason_of,
    ledger_entry,
    message_text,
    openai_factory,
    usage_of,
    with_response_format,
)
from sale_graph.llm.chat_openai import SaleChatOpenAI
from sale_graph.llm.limits import (
    Limiter,
    endpoint_limiter,
    endpoint_workers,
    run_limiter,
    share_endpoints,
    worker_limit,
)
from sale_graph.llm.reasoning import split_output, strip_think
from sale_graph.llm.retries import (
    CALL_ERRORS,
    acall_with_retries,
    call_with_retries,
    describe_error,
    describe_failure,
    retries_of,
    status_of,
)
from sale_graph.llm.text_tool_calling import TextToolCallingModel

__all__ = [
    "CALL_ERRORS",
    "CallResult",
    "Limiter",
    "ModelFactory",
    "SaleChatOpenAI",
    "TextToolCallingModel",
    "abuild_model",
    "acall_model",
    "acall_with_retries",
    "call_model",
    "call_tags",
    "call_with_retries",
    "describe_error",
    "describe_failure",
    "endpoint_limiter",
    "endpoint_workers",
    "finish_reason_of",
    "ledger_entry",
    "message_text",
    "openai_factory",
    "retries_of",
    "run_limiter",
    "share_endpoints",
    "split_output",
    "status_of",
    "strip_think",
    "usage_of",
    "with_response_format",
    "worker_limit",
]
