"""What the middleware and the router share: one route-only auction run inside a LangGraph node.

The auction is the library's own graph (:func:`~sale_graph.graph.build_sale_graph`),
compiled once and invoked with the calling node's config, so it runs as a true
subgraph of the app: it shares the app's checkpointer (an approval ``interrupt``
pauses the app), its stream (``subgraphs=True`` shows the auction's events; its
model calls carry the ``sale`` tags) and its callbacks. It stops before ``execute``
(``route_only``): the caller's own model or node executes.

Per turn (:func:`plan_turn`): the task is the turn in its conversation
(:func:`turn_of`), and with ``auction_per="thread"`` a thread's later turns reuse its
auction (:func:`pinned_record`) instead of running one.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping, Sequence
from typing import Any, cast

from langgraph.config import get_config

from sale_graph.context import SaleContext
from sale_graph.conversation import ConversationTask, conversation_task
from sale_graph.errors import TaskError
from sale_graph.llm import ModelFactory
from sale_graph.memory import AuctionMemory
from sale_graph.services import open_memory

#: Keys of the auction's output that a route-only run leaves empty or that belong to the caller.
_NOT_RECORDED = ("messages", "answer", "request_id", "execution")
#: Optional task keys passed on from the caller's state when present.
TASK_KEYS = ("request_id", "task_id", "domain", "gold", "tests", "entry_point")
NO_TASK = "{who} found no task: give the state a 'task' or a human message in 'messages'"


def turn_of(state: Mapping[str, Any], ctx: SaleContext, *, task_key: bool = False) -> ConversationTask | None:
    """The run's task: the state's ``task`` (when ``task_key`` and it holds one), else the chat turn of ``messages``.

    The chat turn is the latest human message as the request, after the earlier turns
    condensed to ``ctx.conversation_max_tokens``
    (:func:`~sale_graph.conversation.conversation_task`); ``None`` when there is neither.
    """
    task = state.get("task") if task_key else None
    if isinstance(task, str) and task.strip():
        return ConversationTask(text=task, request=task, max_tokens=ctx.conversation_max_tokens)
    return conversation_task(state.get("messages"), ctx.conversation_max_tokens)


def auction_record(out: Mapping[str, Any], turn: ConversationTask | None = None) -> dict[str, Any]:
    """The whole auction record of a route-only run, JSON-ready (the chat messages and empty answer left out).

    A note says so when the turn's conversation was condensed to its budget.
    """
    record = {k: v for k, v in out.items() if k not in _NOT_RECORDED}
    note = turn.note() if turn is not None else None
    if note:
        record["notes"] = [note, *record.get("notes", [])]
    return record


def pinned_record(previous: Mapping[str, Any] | None, turn: ConversationTask, ctx: SaleContext) -> tuple[dict[str, Any] | None, list[str]]:
    """With ``auction_per="thread"``, this turn's record from the thread's auction: its winner and strategy, no bids paid.

    Args:
        previous: the record the thread's state holds from its last turn (``sale_auction``), if any.
        turn: this turn's task.
        ctx: the run's settings.

    Returns:
        ``(record, [])`` when the turn is pinned: the thread's auction (its id, selection,
        bids, votes and table) with this turn's task, an empty ledger (nothing was paid for the
        auction this turn), a note and ``pinned`` (the auction's id, first task and winner, and
        how many turns it has served); ``(None, notes)`` when a new auction must run, with a note
        when a pin could not be kept.
    """
    if ctx.auction_per != "thread" or not previous or not previous.get("selection"):
        return None, []
    winner = previous["selection"]["winner"]
    origin = previous.get("pinned") or {"auction_id": previous.get("auction_id"), "task": previous.get("task"),
                                        "winner": winner, "turns": 1}
    pool = ctx.resolved_pool()
    if winner not in pool.names:
        return None, [f"the thread's auction {origin['auction_id']} was won by {winner!r}, which the pool "
                      f"({pool.source}) no longer has: a new auction for this turn (auction_per='thread')"]
    turns = int(origin.get("turns", 1)) + 1
    record = {k: v for k, v in previous.items() if k not in ("execution", "ledger", "notes", "memory_error", "pinned")}
    record.update(task=turn.text, ledger=[], pinned={**origin, "turns": turns}, notes=[
        f"pinned (auction_per='thread'): {winner} won this thread's auction {origin['auction_id']} and answers "
        f"its turn {turns} with that strategy; no bids this turn"])
    return record, []


def task_input(task: str | None, state: Mapping[str, Any], who: str) -> dict[str, Any]:
    """The auction's input: the task and the optional task keys the caller's state holds.

    Raises:
        TaskError: there is no task text.
    """
    if not isinstance(task, str) or not task.strip():
        raise TaskError(NO_TASK.format(who=who))
    return {"task": task, **{k: state[k] for k in TASK_KEYS if state.get(k) is not None}}


@dataclasses.dataclass
class RouteTurn:
    """What a route-only caller does for one turn: an auction on ``inputs``, or the thread's ``pinned`` record.

    Attributes:
        turn: the turn's task (its text is the auction's task).
        inputs: the auction's input.
        pinned: with ``auction_per="thread"`` and an auction already on the thread, this turn's record
            (see :func:`pinned_record`); ``None`` when an auction runs.
        notes: notes for the record of the auction that runs (a pin that could not be kept).
    """

    turn: ConversationTask
    inputs: dict[str, Any]
    pinned: dict[str, Any] | None
    notes: list[str]

    def record(self, out: Mapping[str, Any]) -> dict[str, Any]:
        """The record of the auction run for this turn, with this turn's notes first."""
        record = auction_record(out, self.turn)
        if self.notes:
            record["notes"] = [*self.notes, *record.get("notes", [])]
        return record


def plan_turn(state: Mapping[str, Any], ctx: SaleContext, who: str, *, task_key: bool = False) -> RouteTurn:
    """This turn's task and whether it runs an auction or reuses the thread's (``state["sale_auction"]``).

    Args:
        state: the caller's state (``messages``, optionally ``task`` and the task keys, ``sale_auction``).
        ctx: the run's settings (``conversation_max_tokens``, ``auction_per``).
        who: the caller, for the error message.
        task_key: a ``task`` in the state wins over ``messages``, and the state's optional task keys
            (:data:`TASK_KEYS`) go to the auction (the router); else only ``messages`` is read (the middleware).

    Raises:
        TaskError: there is no task text.
    """
    turn = turn_of(state, ctx, task_key=task_key)
    if turn is None:
        raise TaskError(NO_TASK.format(who=who))
    inputs = task_input(turn.text, state if task_key else {}, who)
    pinned, notes = pinned_record(state.get("sale_auction"), turn, ctx)
    return RouteTurn(turn=turn, inputs=inputs, pinned=pinned, notes=notes)


class RouteOnlyAuction:
    """A compiled route-only auction, built on first use and shared by every run.

    Args:
        model_factory: builds each agent's chat model (default: from the pool config).
        tools: the tools the executing agent has; their names go into the bid prompt.
        memory: the auction memory; ``None`` lets each run's context name one.
    """

    def __init__(self, *, model_factory: ModelFactory | None, tools: Sequence[Any], memory: AuctionMemory | None) -> None:
        self.model_factory = model_factory
        self.tools = list(tools)
        self.memory = memory
        self._graph: Any = None
        self._lock = threading.Lock()

    def open_memory(self, ctx: SaleContext) -> AuctionMemory | None:
        """The memory the auctions use and an outcome goes to: the given one, else the context's (opened once).

        Must be called before the first auction when the caller reports outcomes, so that
        the auctions and the outcomes share one store.
        """
        if not ctx.use_memory:
            return None
        with self._lock:
            if self.memory is None:
                self.memory = open_memory(ctx.memory_dir, ctx.memory_url)  # a bad location: MemoryStoreError naming it
            return self.memory

    def graph(self) -> Any:
        """The compiled auction graph."""
        with self._lock:
            if self._graph is None:
                from sale_graph.graph import build_sale_graph

                self._graph = build_sale_graph(model_factory=self.model_factory, tools=self.tools,
                                               memory=self.memory).compile(name="sale")
            return self._graph

    def run(self, inputs: Mapping[str, Any], ctx: SaleContext) -> dict[str, Any]:
        """Run the auction as a subgraph of the calling node; returns its output.

        Raises:
            sale_graph.SaleError: whatever the auction raises (``AuctionError``, ``PoolError``...).
        """
        return cast(dict[str, Any], self.graph().invoke(dict(inputs), config=_node_config(), context=_one_run(ctx)))

    async def arun(self, inputs: Mapping[str, Any], ctx: SaleContext) -> dict[str, Any]:
        """:meth:`run` on asyncio (the auction's model calls are awaited)."""
        return cast(dict[str, Any], await self.graph().ainvoke(dict(inputs), config=_node_config(), context=_one_run(ctx)))


def _one_run(ctx: SaleContext) -> SaleContext:
    """The auction graph's settings: it runs one auction per run (the caller keeps a thread's pin in its own state)."""
    return ctx if ctx.auction_per == "turn" else dataclasses.replace(ctx, auction_per="turn")


def _node_config() -> Any:
    """The calling node's config (so the auction runs as its subgraph), or none outside a graph."""
    try:
        return get_config()
    except RuntimeError:
        return None


__all__ = [
    "TASK_KEYS",
    "RouteOnlyAuction",
    "RouteTurn",
    "auction_record",
    "pinned_record",
    "plan_turn",
    "task_input",
    "turn_of",
]
