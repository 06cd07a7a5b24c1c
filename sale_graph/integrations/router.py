"""Way 3, a router node: ``sale_router``, a LangGraph node that sends each run to the node of the agent that wins a SALE auction.

For apps that already have one agent node per model::

    from sale_graph import SaleRouterState, sale_router

    class State(MessagesState, SaleRouterState):        # adds sale_strategy and sale_auction
        pass

    g = StateGraph(State)
    g.add_node("route", sale_router({"qwen3-4b": "small_agent", "gpt-4o-mini": "large_agent"}, pool="pool.toml"))
    g.add_node("small_agent", small_agent)
    g.add_node("large_agent", large_agent)
    g.add_edge(START, "route")

The node runs a route-only auction on the state's ``task`` (or, without one, the turn
of ``messages``: the latest human message in its conversation,
:mod:`sale_graph.conversation`) and returns ``Command(goto=<winner's node>,
update={"sale_strategy": ..., "sale_auction": ...})``: the winning strategy for the
winner's prompt and the whole auction record. A ``request_id`` in the state is the
auction's id and is cleared (one id per auction). With ``auction_per="thread"`` later
turns on the thread go to the winner of its first auction (``sale_auction`` on the app's
checkpointer) with no new bids. The node carries its destinations in
its return type, so ``add_node`` draws the edges without ``destinations=``.

Checks: at build time every pool agent needs a route and every route an agent of the
pool (when the pool is known then); ``compile()`` refuses a route to a node the graph
lacks (LangGraph checks the destinations); :func:`check_routes` says the same naming the
route, and that the state lacks the two keys. At run time the router checks both again
before it routes (a ``goto`` to a missing node, or an update to an undeclared key, is
otherwise dropped by LangGraph with only a log line, e.g. when ``add_node`` was given
other ``destinations=``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NotRequired, cast

from langchain_core.runnables import RunnableConfig
from langgraph._internal._constants import CONFIG_KEY_READ
from langgraph._internal._runnable import RunnableCallable
from langgraph.graph import StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command
from typing_extensions import TypedDict

from sale_graph.context import SaleContext
from sale_graph.errors import RouteError
from sale_graph.integrations._route_only import RouteOnlyAuction, RouteTurn, plan_turn
from sale_graph.integrations._route_settings import EXECUTION_KEYS, KEEP, PoolSpec, as_context, refuse_settings, route_context
from sale_graph.llm import ModelFactory
from sale_graph.memory import AuctionMemory
from sale_graph.pool import AgentPool

ROUTER_KEYS = ("sale_strategy", "sale_auction")
RunContext = Callable[[Any], "SaleContext | Mapping[str, Any] | None"]


class SaleRouterState(TypedDict):
    """The state keys a :func:`sale_router` node writes; mix it into the app's state schema.

    Attributes:
        sale_strategy: the winning strategy, for the winner's prompt.
        sale_auction: the whole auction record (task, bids, votes, scores, selection, ledger, notes).
    """

    sale_strategy: NotRequired[str]
    sale_auction: NotRequired[dict[str, Any]]


def route_problems(routes: Mapping[str, str], pool: AgentPool) -> list[str]:
    """What is wrong with ``routes`` for ``pool``: agents with no route, routes to agents the pool lacks."""
    problems = []
    missing = [a for a in pool.names if a not in routes]
    if missing:
        problems.append(f"pool agent(s) {', '.join(map(repr, missing))} have no route: add "
                        + ", ".join(f"{a!r}: '<node>'" for a in missing) + " to the routes")
    extra = [a for a in routes if a not in pool.names]
    if extra:
        problems.append(f"route(s) for {', '.join(map(repr, extra))}, which the pool ({pool.source}) lacks; "
                        f"its agents: {', '.join(pool.names)}")
    bad = [a for a, node in routes.items() if not isinstance(node, str) or not node]
    if bad:
        problems.append(f"route(s) for {', '.join(map(repr, bad))} name no node")
    return problems


class SaleRouterNode(RunnableCallable):
    """A :func:`sale_router` node: sync and async, with its routes and destinations as attributes.

    Attributes:
        routes: pool agent name -> node name.
        destinations: the node names it may go to.
    """

    routes: dict[str, str]
    destinations: tuple[str, ...]

    def __call__(self, state: Any, config: RunnableConfig, runtime: Any) -> Any:
        """Run the blocking implementation (LangGraph calls the node through ``invoke``/``ainvoke``)."""
        assert self.func is not None
        return self.func(state, config, runtime)


def sale_router(
    routes: Mapping[str, str],
    *,
    pool: PoolSpec = KEEP,
    context: SaleContext | Mapping[str, Any] | RunContext | None = None,
    memory: AuctionMemory | None = None,
    tools: Sequence[Any] = (),
    model_factory: ModelFactory | None = None,
    name: str = "sale_router",
    **settings: Any,
) -> SaleRouterNode:
    """A node that routes each run to the node of the auction's winner.

    Args:
        routes: pool agent name -> the app's node for that agent (every pool agent needs one).
        pool: an :class:`AgentPool`, a path to a pool TOML, or ``None`` for the embedded pool;
            left out, the ``context``'s pool (else the embedded pool).
        context: the auction's settings: a :class:`SaleContext` or a dict of its fields, or a
            callable mapping the app run's context to them (e.g. ``lambda c: c`` for an app whose
            ``context_schema`` is :class:`SaleContext`); ``route_only`` is forced on.
        memory: an :class:`AuctionMemory`; default: the one the settings name, when memory is on.
        tools: the agents' tools, named to the bidders in the bid prompt (optional).
        model_factory: builds each agent's chat model for the auction (default: from the pool).
        name: the node's name (``add_node(router)`` uses it).
        **settings: more :class:`SaleContext` fields (``weights``, ``use_memory``...).

    Returns:
        The node; it returns ``Command(goto=routes[winner], update={"sale_strategy", "sale_auction"})``.

    Raises:
        RouteError: a pool agent has no route, or a route names an agent the pool lacks.
        ContextError: a setting is not a :class:`SaleContext` field.
    """
    routes = dict(routes)
    if not routes:
        raise RouteError("sale_router needs routes: {'<pool agent>': '<node name>', ...}, one per pool agent")
    auction = RouteOnlyAuction(model_factory=model_factory, tools=tools, memory=memory)
    fixed, run_context = _build_settings(routes, context, pool, settings)

    def settings_of(runtime: Any) -> SaleContext:
        if fixed is not None or run_context is None:
            return cast(SaleContext, fixed)
        base = as_context(run_context(getattr(runtime, "context", None)), "sale_router context")
        ctx = route_context(base, pool, settings, "sale_router setting")
        refuse_settings(route_context(None, KEEP, settings, "sale_router setting"), ROUTER_REFUSES, "sale_router setting",
                        ROUTER_EXECUTES)  # the keywords only: the app's own context may set them for its other parts
        _raise(route_problems(routes, ctx.resolved_pool()))
        return ctx

    def prepare(state: Mapping[str, Any], config: RunnableConfig, runtime: Any) -> tuple[RouteTurn, SaleContext]:
        _check_graph(config, ROUTER_KEYS, "the state schema has no {missing}: add SaleRouterState to it "
                     "(class State(YourState, SaleRouterState))")
        ctx = settings_of(runtime)
        return plan_turn(state, ctx, "sale_router", task_key=True), ctx

    def finish(record: dict[str, Any], state: Mapping[str, Any], config: RunnableConfig) -> Command[Any]:
        selection = record["selection"]
        node = routes[selection["winner"]]
        _check_graph(config, [f"branch:to:{node}"], f"{selection['winner']!r} won the auction, but its route names "
                     f"node {node!r}, which the graph lacks: add the node or fix the route")
        update = {"sale_strategy": selection["strategy"], "sale_auction": record}
        if state.get("request_id") is not None:  # consumed, as the auction graph's prepare does: one id per auction
            update["request_id"] = None
        return Command(goto=node, update=update)

    def route(state: Mapping[str, Any], config: RunnableConfig, runtime: Runtime[Any]) -> Command[Any]:
        turn, ctx = prepare(state, config, runtime)
        record = turn.pinned if turn.pinned is not None else turn.record(auction.run(turn.inputs, ctx))
        return finish(record, state, config)

    async def aroute(state: Mapping[str, Any], config: RunnableConfig, runtime: Runtime[Any]) -> Command[Any]:
        turn, ctx = await asyncio.to_thread(prepare, state, config, runtime)  # a pool file is read and checked
        record = turn.pinned if turn.pinned is not None else turn.record(await auction.arun(turn.inputs, ctx))
        return finish(record, state, config)

    destinations = tuple(dict.fromkeys(routes.values()))
    node_type = _typed_node_class(destinations)
    node = node_type(route, aroute, name=name)
    node.routes, node.destinations = routes, destinations
    return node


ROUTER_REFUSES = (*EXECUTION_KEYS, "on_execution_error")
ROUTER_EXECUTES = "sale_router only routes, and the node it routes to runs the winner, so bound that node instead"


def _build_settings(
    routes: Mapping[str, str], context: Any, pool: PoolSpec, settings: Mapping[str, Any]
) -> tuple[SaleContext | None, RunContext | None]:
    """The router's fixed settings, or the callable that takes them from each run; routes checked if the pool is known."""
    if callable(context) and not isinstance(context, (SaleContext, Mapping)):
        if pool is not KEEP:
            _raise(route_problems(routes, route_context(None, pool, {}, "sale_router").resolved_pool()))
        return None, context
    fixed = route_context(context, pool, settings, "sale_router setting")
    refuse_settings(fixed, ROUTER_REFUSES, "sale_router setting", ROUTER_EXECUTES)
    _raise(route_problems(routes, fixed.resolved_pool()))
    return fixed, None


def _typed_node_class(destinations: tuple[str, ...]) -> type[SaleRouterNode]:
    """A :class:`SaleRouterNode` subclass whose ``__call__`` returns ``Command[Literal[*destinations]]``.

    ``StateGraph.add_node`` reads a node's possible ``goto`` targets from that return type,
    so the graph's drawing (``get_graph()``, Studio) shows the router's edges.
    """

    def __call__(self: SaleRouterNode, state: Any, config: RunnableConfig, runtime: Any) -> Any:
        assert self.func is not None
        return self.func(state, config, runtime)

    __call__.__annotations__ = {"state": Any, "config": RunnableConfig, "runtime": Any,
                                "return": Command[Literal[destinations]]}  # type: ignore[valid-type]
    return type("SaleRouterNode", (SaleRouterNode,), {"__call__": __call__})


def _check_graph(config: RunnableConfig, channels: Sequence[str], message: str) -> None:
    """Raise :class:`RouteError` when the running graph lacks one of ``channels``.

    LangGraph has no public way for a node to list its graph's nodes or keys; the node's
    state reader (the internal ``CONFIG_KEY_READ``) raises ``KeyError`` for a channel the
    graph lacks, and every node ``n`` has a channel ``branch:to:n``. Where that reader is
    absent (a call outside a graph, another LangGraph version), nothing is checked:
    :func:`check_routes` checks a built graph instead.
    """
    read = ((config or {}).get("configurable") or {}).get(CONFIG_KEY_READ)
    if not callable(read):
        return
    missing = []
    for channel in channels:
        try:
            read([channel], False)
        except KeyError:
            missing.append(channel.removeprefix("branch:to:"))
    if missing:
        raise RouteError(message.format(missing=", ".join(map(repr, missing))))


def _raise(problems: list[str]) -> None:
    if problems:
        raise RouteError("sale_router: " + "; ".join(problems))


def check_routes(graph: Any) -> None:
    """Check every :func:`sale_router` node of a graph: its routes lead to nodes of the graph, its keys exist.

    Call it once the graph is built (uncompiled ``StateGraph`` or compiled); at run time
    the router checks the same before it routes.

    Args:
        graph: a ``StateGraph`` or a compiled graph.

    Raises:
        RouteError: naming each route to a node the graph lacks, and missing state keys.
        TypeError: ``graph`` is neither.
    """
    builder = graph if isinstance(graph, StateGraph) else getattr(graph, "builder", None)
    if not isinstance(builder, StateGraph):
        raise TypeError(f"check_routes takes a StateGraph or a compiled graph, got {type(graph).__name__}")
    problems = []
    keys = set(builder.channels) | set(builder.managed)  # every schema's keys: the state's and the nodes' own
    for node_name, spec in builder.nodes.items():
        router = spec.runnable
        if not isinstance(router, SaleRouterNode):
            continue
        for agent, target in router.routes.items():
            if target not in builder.nodes:
                problems.append(f"node {node_name!r} routes {agent!r} to {target!r}, which the graph lacks")
        missing = [k for k in ROUTER_KEYS if k not in keys]
        if missing:
            problems.append(f"node {node_name!r} writes {', '.join(missing)}, which the state schema lacks: "
                            "add SaleRouterState to it")
    if problems:
        raise RouteError("; ".join(problems) + f" (nodes: {', '.join(builder.nodes)})")


__all__ = ["ROUTER_KEYS", "SaleRouterNode", "SaleRouterState", "check_routes", "route_problems", "sale_router"]
