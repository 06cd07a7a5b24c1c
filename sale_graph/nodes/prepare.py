"""``prepare``: check the input, resolve the pool and weights, start a fresh auction record."""

from __future__ import annotations

import uuid
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from sale_graph.context import SaleContext
from sale_graph.conversation import DEFAULT_CONVERSATION_MAX_TOKENS, ConversationTask, conversation_task
from sale_graph.errors import ContextError, TaskError
from sale_graph.events import AuctionStartEvent, emit
from sale_graph.nodes._common import TASK_INPUT_KEYS, Node, ctx_of, run_fingerprint
from sale_graph.pool import check_pool
from sale_graph.services import SaleServices
from sale_graph.state import SaleState
from sale_graph.tools.defaults import check_default_tools


def make_prepare_node(services: SaleServices) -> Node:
    """Build the ``prepare`` node bound to ``services``.

    Before anything is paid for, it checks what this run will use: the pool and
    the weights (in :func:`prepare`), the auction memory (opened now, when it is
    on), and the default tools of the task's domain (the code sandbox, a search
    corpus) only when the run executes (not ``route_only``) with those defaults
    (no ``tools`` given to the graph).
    """

    def prepare_node(state: SaleState, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        ctx = ctx_of(runtime)
        update = prepare(state, runtime)
        services.memory_for(ctx)  # opened before the first paid call: a bad memory_dir / memory_url fails here
        if services.tools is None and not ctx.route_only:
            check_default_tools(state.get("domain"), ctx.search)
        update["tool_names"] = services.tool_names_for(state.get("domain"), ctx.search)
        return update

    prepare_node.__doc__ = prepare.__doc__
    return prepare_node


def chat_turn(state: SaleState, max_tokens: int = DEFAULT_CONVERSATION_MAX_TOKENS) -> ConversationTask | None:
    """The chat turn that just arrived, as a task in its conversation; ``None`` when the run's task is the ``task`` input.

    A chat thread's last message is the auction's answer after a run, so a new human
    turn at the end of ``messages`` is the new task (a ``task`` left from the previous
    turn does not win over it): the latest human message as the request, after the
    earlier turns condensed to ``max_tokens`` (:func:`~sale_graph.conversation.conversation_task`).
    """
    messages = state.get("messages") or []
    if messages and isinstance(messages[-1], HumanMessage):
        return conversation_task(messages, max_tokens)
    return None


def stale_inputs(state: SaleState, task: str | None) -> tuple[list[str], list[str]]:
    """Per-task input keys left over from an earlier run on this thread that did not finish.

    A finished run clears its per-task inputs (``remember``). A run that failed or
    was abandoned at the approval pause cannot; when the next run brings a new task,
    keys still holding the unfinished run's values are dropped, with a note.
    """
    previous = state.get("run_context") or {}
    if not previous or previous.get("completed", True):
        return [], []
    before = previous.get("inputs") or {}
    if before.get("task") == task:
        return [], []
    stale = [k for k in TASK_INPUT_KEYS if state.get(k) is not None and state.get(k) == before.get(k)]
    notes = [f"dropped {k}={state.get(k)!r}: left over from an unfinished run on this thread with another task "
             "(pass it again if it belongs to this task)" for k in stale]
    return stale, notes


def prepare(state: SaleState, runtime: Runtime[SaleContext]) -> dict[str, Any]:
    """Validate the task, ping the endpoints if asked, and reset the per-auction lists.

    Every run gets a fresh auction id (``request_id`` from the input when the
    caller gives one, for idempotent memory writes; it is consumed, so it does
    not carry over to the next run on the thread). A second run on the same
    thread (a checkpointer, a parent graph sharing keys) therefore starts a new
    auction instead of mixing in the previous run's bids and ledger.
    """
    ctx = ctx_of(runtime)
    turn = chat_turn(state, ctx.conversation_max_tokens)
    task = turn.text if turn is not None else state.get("task")
    if not isinstance(task, str) or not task.strip():
        raise TaskError("the task has no text: pass {'task': 'your question or problem'} or a last human message in 'messages'")
    if ctx.auction_per != "turn":
        raise ContextError(f"auction_per={ctx.auction_per!r} is for SaleMiddleware and sale_router, which keep the "
                           "thread's auction in their state; the auction graph runs one auction per run: use "
                           "auction_per='turn'")
    ctx.reload_files()  # the run's pool and weights files, read here (a worker thread under ainvoke), not on the loop
    pool = ctx.resolved_pool()
    ctx.resolved_weights().check_judges(pool.names)  # fail early on a bad weights file or a missing judge
    if ctx.check_endpoints:
        check_pool(pool)
    auction_id = state.get("request_id") or uuid.uuid4().hex
    emit(runtime, AuctionStartEvent(event="auction_start", auction_id=auction_id, agents=pool.names))
    stale, notes = stale_inputs(state, task)
    condensed = turn.note() if turn is not None else None
    notes += [condensed] if condensed else []
    inputs = {"task": task, **{k: state.get(k) for k in TASK_INPUT_KEYS if k not in stale}}
    return {
        "task": task,
        **dict.fromkeys(stale),
        "notes": Overwrite(notes),
        "run_context": {"fingerprint": run_fingerprint(ctx), "inputs": inputs, "completed": False},
        "degraded": None,
        "entropy_policy": "",
        "memory_error": "",
        "auction_id": auction_id,
        "request_id": None,
        "agents": pool.names,
        "bids": Overwrite([]),
        "votes": Overwrite([]),
        "ledger": Overwrite([]),
        "refinement": Overwrite({}),
        "scores": [],
        "answer": "",
    }
