"""``build_sale_graph()``: the SALE auction as an uncompiled LangGraph ``StateGraph``.

Flow (see docs/architecture.md)::

    START -> prepare -> bid (Send, one per agent) -> score -> jury (Send, judge x bid) -> select
          -> [refine (Send, one per cheaper agent) -> score -> jury -> select]?
          -> approve (pauses only with approve_before_execute) -> execute (skipped when route_only) -> remember -> END

The graph is returned uncompiled so a parent app can add it as a subgraph with
its own checkpointer and store; ``graph.compile()`` runs it standalone.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from sale_graph.context import SaleContext, context_from
from sale_graph.llm import ModelFactory, openai_factory
from sale_graph.memory import AuctionMemory
from sale_graph.nodes._common import inline_node, started_fingerprint, threaded_node
from sale_graph.nodes.approve import approve
from sale_graph.nodes.bid import BidTask, make_bid_node
from sale_graph.nodes.execute import make_execute_node
from sale_graph.nodes.jury import make_jury_node, pending_jury
from sale_graph.nodes.jury_batch import make_jury_batch_node, pending_batches
from sale_graph.nodes.prepare import make_prepare_node
from sale_graph.nodes.refine import RefineTask, make_refine_node
from sale_graph.nodes.remember import make_remember_node
from sale_graph.nodes.score import score
from sale_graph.nodes.select import make_select_node
from sale_graph.services import SaleServices
from sale_graph.state import SaleInput, SaleOutput, SaleState

NODE_NAMES = ("prepare", "bid", "score", "jury", "jury_batch", "select", "refine", "approve", "execute", "remember")


def _route_bids(state: SaleState) -> list[Send]:
    tool_names = state.get("tool_names", [])
    started = started_fingerprint(state)  # checked when a resumed run makes a call again
    tasks = [BidTask(auction_id=state["auction_id"], agent=a, task=state["task"], tool_names=tool_names) for a in state["agents"]]
    for task in tasks:
        if started:
            task["run_fingerprint"] = started
    return [Send("bid", t) for t in tasks]


def _route_jury(state: SaleState, runtime: Runtime[SaleContext]) -> list[Send] | str:
    if context_from(runtime.context).jury_mode == "batched":
        batches = pending_batches(state)
        return [Send("jury_batch", b) for b in batches] if batches else "select"
    pending = pending_jury(state)
    return [Send("jury", p) for p in pending] if pending else "select"


def _route_after_select(state: SaleState) -> list[Send] | str:
    refinement = state.get("refinement") or {}
    if refinement.get("status") == "running":
        originals = {b["agent"]: b["strategy"] for b in state.get("bids", []) if b["round"] == "original" and b["status"] == "ok"}
        started = started_fingerprint(state)
        tasks = [RefineTask(agent=a, auction_id=state["auction_id"], task=state["task"], own_strategy=originals[a],
                            domain=state.get("domain")) for a in refinement.get("refiners", [])]
        for task in tasks:
            if started:
                task["run_fingerprint"] = started
        return [Send("refine", t) for t in tasks]
    return "approve"


def _route_after_approve(state: SaleState, runtime: Runtime[SaleContext]) -> str:
    return "remember" if context_from(runtime.context).route_only else "execute"


def build_sale_graph(
    *,
    model_factory: ModelFactory | None = None,
    tools: list[Any] | None = None,
    memory: AuctionMemory | None = None,
) -> StateGraph[SaleState, SaleContext, SaleInput, SaleOutput]:
    """Build the SALE auction graph (uncompiled).

    Args:
        model_factory: builds each agent's chat model per phase; default ``ChatOpenAI``
            from the pool config (see :class:`sale_graph.llm.ModelFactory`).
        tools: LangChain tools for the executor; default: the project's tools for the
            task's domain (web search for ``search``, the code sandbox for ``coding``).
        memory: an :class:`~sale_graph.memory.AuctionMemory`; default: the one the
            runtime context names (``memory_dir`` / ``memory_url``), when ``use_memory``.

    Runtime settings (pool, weights, limits) come through ``context``
    (:class:`~sale_graph.context.SaleContext`)::

        graph = build_sale_graph().compile()
        out = graph.invoke({"task": "..."}, context=SaleContext(pool="pool.toml"))
    """
    services = SaleServices(model_factory=model_factory or openai_factory, tools=tools, memory=memory)
    g = StateGraph(SaleState, context_schema=SaleContext, input_schema=SaleInput, output_schema=SaleOutput)
    g.add_node("prepare", threaded_node(make_prepare_node(services)))
    g.add_node("bid", make_bid_node(services))
    g.add_node("score", inline_node(score))
    g.add_node("jury", make_jury_node(services))
    g.add_node("jury_batch", make_jury_batch_node(services))
    g.add_node("select", threaded_node(make_select_node(services)))
    g.add_node("refine", make_refine_node(services))
    g.add_node("approve", inline_node(approve))
    g.add_node("execute", make_execute_node(services))
    g.add_node("remember", threaded_node(make_remember_node(services)))

    g.add_edge(START, "prepare")
    g.add_conditional_edges("prepare", _route_bids, ["bid"])
    g.add_edge("bid", "score")
    g.add_conditional_edges("score", _route_jury, ["jury", "jury_batch", "select"])
    g.add_edge("jury", "select")
    g.add_edge("jury_batch", "select")
    g.add_conditional_edges("select", _route_after_select, ["refine", "approve"])
    g.add_edge("refine", "score")
    g.add_conditional_edges("approve", _route_after_approve, ["execute", "remember"])
    g.add_edge("execute", "remember")
    g.add_edge("remember", END)
    return g
