"""Small helpers the nodes share: the run's context and pool, progress events, recoverable errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import openai
from langgraph.runtime import Runtime

from sale_graph.context import SaleContext, context_from
from sale_graph.pool import PoolError

Node = Callable[[Any, Runtime[SaleContext]], dict[str, Any]]
"""A node function: (state or ``Send`` payload, runtime) -> state update."""

# Failures of one model call that the auction records and survives (the agent's
# bid or vote is marked failed/missing, visibly); anything else is a bug and raises.
CALL_ERRORS: tuple[type[BaseException], ...] = (
    openai.APIError,
    httpx.HTTPError,
    TimeoutError,
    ConnectionError,
    PoolError,
)


def ctx_of(runtime: Any) -> SaleContext:
    """The run's :class:`SaleContext` from a LangGraph runtime (a default one when absent)."""
    return context_from(getattr(runtime, "context", None))


def emit(runtime: Any, event: str, **data: Any) -> None:
    """Send a progress event on the ``custom`` stream (no-op when nobody streams it)."""
    writer = getattr(runtime, "stream_writer", None)
    if writer is not None:
        writer({"event": event, **data})


def describe_error(exc: BaseException) -> str:
    """A one-line description of a call failure for the record."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}"[:300]
