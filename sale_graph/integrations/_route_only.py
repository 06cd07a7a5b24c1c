"""What the middleware and the router share: one route-only auction run inside a LangGraph node.

The auction is the library's own graph (:func:`~sale_graph.graph.build_sale_graph`),
compiled once and invoked with the calling node's config, so it runs as a true
subgraph of the app: it shares the app's checkpointer (an approval ``interrupt``
pauses the app), its stream (``subgraphs=True`` shows the auction's events; its
model calls carry the ``sale`` tags) and its callbacks. It stops before ``execute``
(``route_only``): the caller's own model or node executes.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, cast

from langchain_core.messages import HumanMessage
from langgraph.config import get_config

from sale_graph.context import SaleContext
from sale_graph.errors import TaskError
from sale_graph.llm import ModelFactory, message_text
from sale_graph.memory import AuctionMemory
from sale_graph.services import open_memory

#: Keys of the auction's output that a route-only run leaves empty or that belong to the caller.
_NOT_RECORDED = ("messages", "answer", "request_id", "execution")
#: Optional task keys passed on from the caller's state when present.
TASK_KEYS = ("request_id", "task_id", "domain", "gold", "tests", "entry_point")


def latest_human_text(messages: Sequence[Any] | None) -> str | None:
    """The text of the last human message in ``messages`` (``None`` when there is none)."""
    for message in reversed(list(messages or [])):
        if isinstance(message, HumanMessage):
            return message_text(message)
        if isinstance(message, Mapping) and message.get("role") in ("user", "human"):  # a JSON message
            content = message.get("content")
            return content if isinstance(content, str) else None
    return None


def auction_record(out: Mapping[str, Any]) -> dict[str, Any]:
    """The whole auction record of a route-only run, JSON-ready (the chat messages and empty answer left out)."""
    return {k: v for k, v in out.items() if k not in _NOT_RECORDED}


def task_input(task: str | None, state: Mapping[str, Any], who: str) -> dict[str, Any]:
    """The auction's input: the task and the optional task keys the caller's state holds.

    Raises:
        TaskError: there is no task text.
    """
    if not isinstance(task, str) or not task.strip():
        raise TaskError(f"{who} found no task: give the state a 'task' or a human message in 'messages'")
    return {"task": task, **{k: state[k] for k in TASK_KEYS if state.get(k) is not None}}


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
        return cast(dict[str, Any], self.graph().invoke(dict(inputs), config=_node_config(), context=ctx))

    async def arun(self, inputs: Mapping[str, Any], ctx: SaleContext) -> dict[str, Any]:
        """:meth:`run` on asyncio (the auction's model calls are awaited)."""
        return cast(dict[str, Any], await self.graph().ainvoke(dict(inputs), config=_node_config(), context=ctx))


def _node_config() -> Any:
    """The calling node's config (so the auction runs as its subgraph), or none outside a graph."""
    try:
        return get_config()
    except RuntimeError:
        return None


__all__ = ["TASK_KEYS", "RouteOnlyAuction", "auction_record", "latest_human_text", "task_input"]
