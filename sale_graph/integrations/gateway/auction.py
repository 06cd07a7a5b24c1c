"""The gateway's auction step: a route-only auction on a chat request's turn, in its conversation.

The auction is the library's own (:class:`~sale_graph.integrations._route_only.RouteOnlyAuction`,
as ``SaleMiddleware`` and ``sale_router`` run it): the pool bids on the turn's task (the
latest human message after the earlier turns condensed, :mod:`sale_graph.conversation`),
the jury scores the bids, the cheapest good bid wins; nothing is executed. The bidders
are told the names of the tools the client offers (one compiled auction per tool set,
the most recent :data:`GRAPHS_KEPT` kept). The auction memory, when on, is opened once
and shared by every auction and by :meth:`AuctionStep.report` (the outcomes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from sale_graph.context import SaleContext
from sale_graph.conversation import conversation_task
from sale_graph.errors import TaskError
from sale_graph.integrations._route_only import RouteOnlyAuction, auction_record, task_input
from sale_graph.integrations.gateway.errors import GatewayError, bad_request
from sale_graph.integrations.gateway.request import SALE_FIELD
from sale_graph.integrations.gateway.sessions import Pin
from sale_graph.llm import ModelFactory
from sale_graph.memory import AuctionMemory
from sale_graph.nodes.execute import runner_up
from sale_graph.pool import AgentPool
from sale_graph.services import open_memory

GRAPHS_KEPT = 32
"""Compiled auctions kept, one per set of tool names the clients offered."""

NO_TURN = "the conversation has no user message with text: the auction needs a human turn to bid on"


def summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """The auction summary a response carries: who won, by how much, every bid and its scores (no ledger)."""
    selection = record["selection"]
    bids = [{k: b[k] for k in ("agent", "round", "strategy", "tokens", "status", "error") if k in b}
            for b in record.get("bids", [])]
    scores = [{k: r[k] for k in ("agent", "round", "price", "tokens", "cost", "entropy", "jury", "value", "net") if k in r}
              for r in record.get("scores", [])]
    out = {
        "auction_id": record["auction_id"],
        "winner": selection["winner"],
        "strategy": selection["strategy"],
        "round": selection["round"],
        "margin": selection["margin"],
        "runner_up": selection.get("runner_up"),
        "reason": selection.get("reason", ""),
        "bids": bids,
        "scores": scores,
    }
    if record.get("degraded"):
        out["degraded"] = record["degraded"]
    return out


def pin_of(record: Mapping[str, Any]) -> Pin:
    """The pin of an auction's record: its winner and strategy, and the runner-up for a fallback."""
    selection = record["selection"]
    second = runner_up(dict(record), selection["winner"])
    return Pin(auction_id=record["auction_id"], agent=selection["winner"], strategy=selection["strategy"],
               runner_up=second[0] if second else None, runner_up_strategy=second[1] if second else None,
               summary=summary(record))


class AuctionStep:
    """Runs the gateway's route-only auctions and reports outcomes to their memory.

    Args:
        context: the gateway's auction settings (``route_only`` on).
        model_factory: builds each agent's chat model for the auction (default: from the pool).
        memory: the auction memory (default: the one ``context`` names, opened on first use, when ``use_memory``).
    """

    def __init__(self, context: SaleContext, *, model_factory: ModelFactory | None = None,
                 memory: AuctionMemory | None = None) -> None:
        self.context = context
        self.pool: AgentPool = context.resolved_pool()
        self._factory = model_factory
        self._memory = memory
        self._memory_lock = threading.Lock()  # not an asyncio lock: the CLI opens the memory before the server's loop runs
        self._graphs: OrderedDict[tuple[str, ...], RouteOnlyAuction] = OrderedDict()

    def context_for(self, options: Mapping[str, Any]) -> SaleContext:
        """The settings of one request's auction: the gateway's with the request's ``sale`` options over them.

        Raises:
            GatewayError: 400 naming the option whose value is refused.
        """
        if not options:
            return self.context
        if options.get("use_memory") and not self.context.use_memory:
            raise bad_request("this gateway runs without the auction memory: 'use_memory' can only be turned off per request",
                              f"{SALE_FIELD}.use_memory")
        try:
            return dataclasses.replace(self.context, **dict(options))
        except (TypeError, ValueError) as exc:
            name = next((k for k in options if k in str(exc)), next(iter(options)))
            raise bad_request(f"'{SALE_FIELD}.{name}': {exc}", f"{SALE_FIELD}.{name}") from exc

    def open_memory(self) -> AuctionMemory | None:
        """Open the auction memory now (blocking; once), or ``None`` when the gateway runs without it.

        ``sale gateway`` calls it before serving, so a bad ``memory_dir`` or ``memory_url`` stops
        the command at start; otherwise the first auction opens it.

        Raises:
            MemoryStoreError: it cannot be opened (the message names the setting).
        """
        if not self.context.use_memory:
            return None
        with self._memory_lock:
            if self._memory is None:
                self._memory = open_memory(self.context.memory_dir, self.context.memory_url)
            return self._memory

    async def memory(self, ctx: SaleContext | None = None) -> AuctionMemory | None:
        """The auction memory (opened once, in a thread), or ``None`` when it is off for ``ctx``.

        Raises:
            MemoryStoreError: it cannot be opened (the message names the setting).
        """
        if not (ctx or self.context).use_memory:
            return None
        if self._memory is not None:
            return self._memory
        return await asyncio.to_thread(self.open_memory)

    async def _graph(self, tool_names: Sequence[str], ctx: SaleContext) -> RouteOnlyAuction:
        key = tuple(tool_names)
        auction = self._graphs.get(key)
        if auction is None:
            # The bid prompt names the tools; route-only auctions never call them, so their names stand for them.
            auction = RouteOnlyAuction(model_factory=self._factory, tools=list(key), memory=await self.memory())
            await asyncio.to_thread(auction.graph)  # compile once, off the event loop
            self._graphs[key] = auction
            while len(self._graphs) > GRAPHS_KEPT:
                self._graphs.popitem(last=False)
        else:
            self._graphs.move_to_end(key)
        return auction

    async def run(self, messages: Sequence[Any], *, tool_names: Sequence[str], ctx: SaleContext, auction_id: str) -> dict[str, Any]:
        """Run the auction on the turn that ends ``messages``; its whole record (JSON-ready).

        Args:
            messages: the conversation (OpenAI JSON messages).
            tool_names: the tools the client offers, named in the bid prompt.
            ctx: this request's settings (:meth:`context_for`).
            auction_id: the auction's id (known before it runs, so a failure can name it).

        Raises:
            TaskError: the conversation has no human turn.
            SaleError: the auction failed (``AuctionError`` below the quorum, an unusable endpoint...).
        """
        turn = conversation_task(messages, ctx.conversation_max_tokens)
        if turn is None:
            raise TaskError(NO_TURN)
        await self.memory(ctx)
        auction = await self._graph(tool_names, ctx)
        out = await auction.arun(task_input(turn.text, {"request_id": auction_id}, "the SALE gateway"), ctx)
        return auction_record(out, turn)

    async def report(self, auction_id: str, outcome: str) -> str:
        """Store the outcome of a recorded auction; what was done, in a sentence.

        Raises:
            GatewayError: 409 when the memory is off, 404 when the auction is not in it.
            SaleError: the memory cannot be opened.
        """
        memory = await self.memory()
        if memory is None:
            raise GatewayError(409, "this gateway runs without the auction memory (use_memory=False): outcomes are not "
                               "stored", code="memory_off", param="outcome")
        try:
            bids = await asyncio.to_thread(memory.update_outcome, auction_id, outcome)  # type: ignore[arg-type]
        except KeyError as exc:
            raise GatewayError(404, f"no auction {auction_id!r} in the auction memory", code="auction_not_found",
                               param="auction_id") from exc
        return f"outcome {outcome!r} stored for auction {auction_id} ({bids} bids)"


__all__ = ["GRAPHS_KEPT", "NO_TURN", "AuctionStep", "pin_of", "summary"]
