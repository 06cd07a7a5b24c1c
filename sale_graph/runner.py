"""Run one auction with progress events and phase timings (used by the CLI and the benchmarks)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StreamMode

from sale_graph.context import SaleContext
from sale_graph.events import SaleEvent
from sale_graph.graph import build_sale_graph


@dataclass
class AuctionRun:
    """The final state of one run and its wall-clock timings (seconds)."""

    state: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


def run_auction(
    task: Mapping[str, Any] | str,
    context: SaleContext,
    *,
    graph: Any | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> AuctionRun:
    """Run the auction on ``task`` and time the auction (bids, jury, refinement) against the execution.

    ``on_event`` receives every progress event of the ``custom`` stream as it
    happens (bids, jury scores, selection, execution steps: a
    :data:`~sale_graph.events.SaleEvent`), with ``t``, the seconds since the start, added.
    """
    inputs = {"task": task} if isinstance(task, str) else dict(task)
    compiled: CompiledStateGraph[Any, SaleContext, Any, Any] = graph if graph is not None else build_sale_graph().compile()
    start = time.perf_counter()
    marks: dict[str, float] = {}
    final: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    modes: list[StreamMode] = ["custom", "values"]
    for item in compiled.stream(inputs, context=context, stream_mode=modes):
        mode, payload = cast(tuple[str, dict[str, Any]], item)
        if mode == "values":
            final = payload
            continue
        now = time.perf_counter() - start
        event = {**payload, "t": round(now, 3)}
        events.append(event)
        name = cast(SaleEvent, payload)["event"]
        if name == "auction_start":
            marks.setdefault("auction_start", now)
        elif name == "execute_start":
            marks["execute_start"] = now
        elif name == "execute":
            marks["execute_end"] = now
        if on_event is not None:
            on_event(event)
    total = time.perf_counter() - start
    a0 = marks.get("auction_start", 0.0)
    e0 = marks.get("execute_start", total)
    timings = {"total": total, "auction": e0 - a0, "execute": marks.get("execute_end", total) - e0}
    return AuctionRun(state=dict(final), timings=timings, events=events)
