"""Small helpers the nodes share: the run's context and pool, the resume check, node wrappers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from langgraph._internal._runnable import RunnableCallable
from langgraph.runtime import Runtime

from sale_graph.context import SaleContext, context_from
from sale_graph.errors import ResumeError


class Node(Protocol):
    """A node function: (state or ``Send`` payload, runtime) -> state update (LangGraph's runtime-node shape)."""

    def __call__(self, state: Any, *, runtime: Runtime[SaleContext]) -> Any: ...


def ctx_of(runtime: Any) -> SaleContext:
    """The run's :class:`SaleContext` from a LangGraph runtime (a default one when absent)."""
    return context_from(getattr(runtime, "context", None))


TASK_INPUT_KEYS = ("task_id", "domain", "gold", "tests", "entry_point")
"""Optional per-task input keys: they describe one task and must never carry over to the next run."""


def run_fingerprint(ctx: SaleContext) -> dict[str, Any]:
    """What a run's decisions depend on in its context: the pool, the weights (with the cost weight and its rule), the approval setting."""
    pool = ctx.resolved_pool()
    weights = ctx.resolved_weights()
    return {
        "pool": pool.source,
        "agents": pool.names,
        "weights": weights.source,
        "w_c": weights.w_c,
        "cost_rule": weights.cost_rule,
        "approve_before_execute": ctx.approve_before_execute,
    }


def started_fingerprint(state: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fingerprint the run started with (``None`` before ``prepare``): what each paid task's payload carries.

    A task made again by a resumed run checks it before paying (:mod:`sale_graph.nodes.replay`).
    """
    started = (state.get("run_context") or {}).get("fingerprint")
    return dict(started) if started else None


def check_run_context(state: Any, ctx: SaleContext) -> None:
    """Raise :class:`ResumeError` when the context differs from the one the run started with.

    Resuming after the approval pause without the run's context would silently
    switch pools (the default is the embedded pool) and drop the human's answer.
    """
    check_fingerprint((state.get("run_context") or {}).get("fingerprint"), ctx)


def check_fingerprint(started: Mapping[str, Any] | None, ctx: SaleContext) -> None:
    """Raise :class:`ResumeError` when ``ctx`` differs from the run's fingerprint ``started`` (nothing to check: ``None``).

    Args:
        started: the :func:`run_fingerprint` the run started with (the state's ``run_context``, or a task's payload).
        ctx: the context the run goes on with.
    """
    if not started:
        return
    now = run_fingerprint(ctx)
    changed = [k for k in started if started[k] != now.get(k)]
    if changed:
        was = ", ".join(f"{k}={started[k]!r}" for k in changed)
        raise ResumeError(
            f"this run started with {was} but was resumed with {', '.join(f'{k}={now[k]!r}' for k in changed)}; "
            "resume with the context the run started with: graph.invoke(Command(resume=...) or None, config, context=<that context>)"
        )


class DualNode(RunnableCallable):
    """A node with a blocking and an asyncio implementation, also callable directly (blocking).

    ``graph.invoke`` runs the blocking half (in LangGraph's worker threads for
    fan-outs) and ``graph.ainvoke`` awaits the async half on the event loop, so async
    callers never hold a thread per model call. LangGraph has no public constructor
    for such a node: its ``RunnableCallable`` is what it builds itself from a plain
    function, here with the async half filled in.
    """

    def __call__(self, state: Any, runtime: Runtime[SaleContext]) -> Any:
        """Run the blocking implementation (for callers outside a graph, e.g. the benchmark recorder)."""
        assert self.func is not None
        return self.func(state, runtime)


def dual_node(func: Callable[..., Any], afunc: Callable[..., Awaitable[Any]]) -> Node:
    """One node from its blocking and asyncio implementations, both taking ``(state, runtime)``."""
    return DualNode(func, afunc, name=func.__name__)


def threaded_node(func: Callable[..., Any]) -> Node:
    """A node whose work blocks (Chroma, an endpoint check, a subprocess): asyncio runs it in a worker thread."""

    async def in_thread(state: Any, runtime: Runtime[SaleContext]) -> Any:
        return await asyncio.to_thread(func, state, runtime)

    in_thread.__name__ = f"a{func.__name__}"
    return dual_node(func, in_thread)


def inline_node(func: Callable[..., Any]) -> Node:
    """A node that only computes (no I/O): asyncio runs it on the loop, without a thread hop."""

    async def on_loop(state: Any, runtime: Runtime[SaleContext]) -> Any:
        return func(state, runtime)

    on_loop.__name__ = f"a{func.__name__}"
    return dual_node(func, on_loop)
