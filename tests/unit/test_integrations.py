"""The integrations on fake models (no sockets): settings by name, route checks, strict API contexts, the grader."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from pydantic import BaseModel
from typing_extensions import TypedDict

from sale_graph import PoolError, SaleContext, SaleError
from sale_graph.integrations import (
    ContextError,
    RouteError,
    SaleMiddleware,
    SaleRouterState,
    check_context,
    check_routes,
    sale_router,
    strict_context,
)
from sale_graph.integrations._route_settings import KEEP, route_context
from tests.fakes import FakeFactory, ScriptedChatModel, pool_of, prompt_text

POOL = pool_of(("small", 0.05), ("large", 0.36))
ROUTES = {"small": "quick", "large": "thorough"}


def factory() -> FakeFactory:
    return FakeFactory({
        "bid": lambda a, m: "1. verify with a second source 2. answer" if a == "large" else "1. answer",
        "jury": lambda a, m: "SCORE: 5" if "verify" in prompt_text(m).split("Task:")[-1] else "SCORE: 1",
        "execute": lambda a, m: f"Final Answer: 5 (by {a})",
    })


SETTINGS: dict[str, Any] = {"pool": POOL, "check_endpoints": False, "use_memory": False}


# --- settings --------------------------------------------------------------------------------------


def test_settings_are_sale_context_fields_and_route_only_is_forced() -> None:
    ctx = route_context(SaleContext(pool="a.toml", route_only=False), KEEP, {"bid_max_tokens": 64}, "test")
    assert ctx.route_only and ctx.pool == "a.toml" and ctx.bid_max_tokens == 64
    with pytest.raises(ContextError) as err:
        route_context(None, None, {"use_memmory": False, "bid_tokens": 3}, "SaleMiddleware setting")
    message = str(err.value)
    assert "unknown SaleMiddleware setting keys 'bid_tokens' (did you mean 'bid_max_tokens'?)" in message
    assert "'use_memmory' (did you mean 'use_memory'?)" in message and "allowed: pool, weights, max_concurrency" in message
    assert isinstance(err.value, SaleError) and isinstance(err.value, ValueError)


def test_middleware_and_router_refuse_unknown_settings_and_missing_pools(tmp_path: Any) -> None:
    with pytest.raises(ContextError, match="did you mean 'use_memory'"):
        SaleMiddleware(pool=POOL, use_memmory=False)
    with pytest.raises(ContextError, match="did you mean 'jury_mode'"):
        sale_router(ROUTES, pool=POOL, jury_mod="batched")
    with pytest.raises(PoolError, match="does not exist"):
        SaleMiddleware(pool=tmp_path / "missing.toml")


@pytest.mark.parametrize("schema_kind", ["dataclass", "pydantic", "typeddict"])
def test_check_context_names_the_allowed_keys_of_any_context_schema(schema_kind: str) -> None:
    @dataclass
    class DC:
        tenant: str = ""

    class PM(BaseModel):
        tenant: str = ""

    class TD(TypedDict):
        tenant: str

    schema = {"dataclass": DC, "pydantic": PM, "typeddict": TD}[schema_kind]
    check_context({"tenant": "x"}, schema)
    with pytest.raises(ContextError, match="unknown 'app' context key 'tenat' \\(did you mean 'tenant'\\?\\); allowed: tenant"):
        check_context({"tenat": "x"}, schema, "app")


def test_strict_context_graph_is_still_the_compiled_graph_and_checks_each_api_run() -> None:
    pytest.importorskip("langgraph_api")
    from langgraph_api._factory_utils import _classify_factory
    from langgraph_sdk.runtime import _ExecutionRuntime, _ReadRuntime

    from examples.auction_graph import graph

    assert graph.checkpointer is None and "prepare" in graph.get_graph().nodes
    hook = _classify_factory(graph)  # how the server calls it: as a factory taking the ServerRuntime
    assert hook is not None and hook({}, "RUNTIME") == {"runtime": "RUNTIME"}
    read = _ReadRuntime(access_context="assistants.read", user=None, store=None)  # type: ignore[arg-type]
    assert graph(read) is graph
    run = _ExecutionRuntime(access_context="threads.create_run", user=None, store=None,  # type: ignore[arg-type]
                            context={"use_memmory": False, "pool": None})
    with pytest.raises(ContextError, match="unknown 'sale' context key 'use_memmory' \\(did you mean 'use_memory'\\?\\)"):
        graph(run)
    ok = _ExecutionRuntime(access_context="threads.create_run", user=None, store=None, context={"use_memory": False})  # type: ignore[arg-type]
    assert graph(ok) is graph
    assert strict_context(graph).get_graph().nodes.keys() == graph.get_graph().nodes.keys()


# --- sale_router -----------------------------------------------------------------------------------


class State(MessagesState, SaleRouterState):
    pass


def answer_as(name: str) -> Any:
    def node(state: dict[str, Any]) -> dict[str, Any]:  # no schema of its own: the graph's keys are the state's
        return {"messages": [AIMessage(f"{name}: {state['sale_strategy']}", name=name)]}
    return node


def routed(routes: dict[str, str] = ROUTES, nodes: tuple[str, ...] = ("quick", "thorough"), schema: Any = State,
           **kwargs: Any) -> StateGraph[Any, Any, Any, Any]:
    g = StateGraph(schema)
    g.add_node("route", sale_router(routes, model_factory=factory(), **{**SETTINGS, **kwargs}))
    for n in nodes:
        g.add_node(n, answer_as(n))
        g.add_edge(n, END)
    g.add_edge(START, "route")
    return g


def test_router_routes_on_the_task_key_or_the_last_human_message() -> None:
    app = routed().compile()
    out = app.invoke({"messages": [HumanMessage("2 + 3?")]})
    assert out["messages"][-1].name == "thorough" and out["sale_auction"]["task"] == "2 + 3?"
    assert "verify" in out["sale_strategy"] and set(out["sale_auction"]) >= {"auction_id", "bids", "votes", "scores", "ledger"}

    class TaskState(SaleRouterState):
        task: str
        messages: list[Any]

    out = routed(schema=TaskState).compile().invoke({"task": "the task key wins", "messages": [HumanMessage("not this")]})
    assert out["sale_auction"]["task"] == "the task key wins"


def test_a_pool_agent_without_a_route_or_a_route_to_an_unknown_agent_is_refused_at_build_time() -> None:
    with pytest.raises(RouteError, match="pool agent\\(s\\) 'large' have no route: add 'large': '<node>' to the routes"):
        sale_router({"small": "quick"}, **SETTINGS)
    with pytest.raises(RouteError, match="route\\(s\\) for 'medium', which the pool \\(test\\) lacks; its agents: small, large"):
        sale_router({**ROUTES, "medium": "quick"}, **SETTINGS)
    with pytest.raises(RouteError, match="needs routes"):
        sale_router({}, **SETTINGS)


def test_a_route_to_a_node_the_graph_lacks_is_caught_by_check_routes_compile_and_at_run_time() -> None:
    g = routed(nodes=("quick",))
    with pytest.raises(RouteError, match="node 'route' routes 'large' to 'thorough', which the graph lacks"):
        check_routes(g)
    with pytest.raises(ValueError, match="unknown node `thorough`"):  # LangGraph checks the router's destinations
        g.compile()
    # Destinations overridden by hand: compile passes, the router still refuses to route into the void.
    g = StateGraph(State)
    g.add_node("route", sale_router(ROUTES, model_factory=factory(), **SETTINGS), destinations=("quick",))
    g.add_node("quick", answer_as("quick"))
    g.add_edge(START, "route")
    with pytest.raises(RouteError, match="'large' won the auction, but its route names node 'thorough', which the graph lacks"):
        g.compile().invoke({"messages": [HumanMessage("2 + 3?")]})
    check_routes(routed().compile())  # compiled graphs too; a good graph passes


def test_a_state_without_the_router_keys_is_caught_by_check_routes_and_at_run_time() -> None:
    g = routed(schema=MessagesState)
    with pytest.raises(RouteError, match="writes sale_strategy, sale_auction, which the state schema lacks"):
        check_routes(g)
    with pytest.raises(RouteError, match="the state schema has no 'sale_strategy', 'sale_auction': add SaleRouterState"):
        g.compile().invoke({"messages": [HumanMessage("2 + 3?")]})


def test_router_with_settings_from_the_run_context_checks_the_routes_at_run_time() -> None:
    g = StateGraph(State, context_schema=SaleContext)
    g.add_node("route", sale_router({"small": "quick"}, context=lambda c: c, model_factory=factory()))
    g.add_node("quick", answer_as("quick"))
    g.add_edge(START, "route")
    with pytest.raises(RouteError, match="'large' have no route"):
        g.compile().invoke({"messages": [HumanMessage("2 + 3?")]}, context=SaleContext(**SETTINGS))


def test_router_without_a_task_says_where_it_looked() -> None:
    with pytest.raises(SaleError, match="sale_router found no task: give the state a 'task' or a human message"):
        routed().compile().invoke({"messages": [AIMessage("no human turn")]})


@pytest.mark.parametrize("setting", [{"execute_max_steps": 2}, {"search_first": False}, {"on_execution_error": "raise"}])
def test_router_refuses_settings_of_an_execution_it_never_runs(setting: dict[str, Any]) -> None:
    (name,) = setting
    with pytest.raises(ContextError, match=f"sale_router setting '{name}' has no effect: sale_router only routes"):
        sale_router(ROUTES, pool=POOL, **setting)
    with pytest.raises(ContextError, match=f"sale_router setting '{name}' has no effect"):  # the same from a fixed context
        sale_router(ROUTES, context=SaleContext(**{**SETTINGS, **setting}))


def test_router_on_the_run_context_refuses_its_own_execution_keywords_only() -> None:
    def app(**settings: Any) -> Any:
        g = StateGraph(State, context_schema=SaleContext)
        g.add_node("route", sale_router(ROUTES, context=lambda c: c, model_factory=factory(), **settings))
        for n in ("quick", "thorough"):
            g.add_node(n, answer_as(n))
        g.add_edge(START, "route")
        return g.compile()

    question = {"messages": [HumanMessage("2 + 3?")]}
    # the app's context may bound an execution elsewhere in the app: not the router's concern
    out = app().invoke(question, context=SaleContext(**SETTINGS, execute_max_steps=2))
    assert out["sale_auction"]["selection"]["winner"] == "large"
    with pytest.raises(ContextError, match="'execute_wall_time_s' has no effect"):
        app(execute_wall_time_s=5.0).invoke(question, context=SaleContext(**SETTINGS))


# --- SaleMiddleware --------------------------------------------------------------------------------


def middleware_agent(**kwargs: Any) -> Any:
    sale = SaleMiddleware(model_factory=factory(), **{**SETTINGS, **kwargs})
    return create_agent(model=ScriptedChatModel(responder=lambda m: "default model"), tools=[], middleware=[sale])


def test_middleware_grader_outcome_without_memory_is_a_note_and_a_bad_outcome_an_error() -> None:
    seen: list[str] = []

    def grader(state: Any) -> str:
        seen.append(state["messages"][-1].content)
        return "passed"

    out = middleware_agent(grader=grader).invoke({"messages": [HumanMessage("2 + 3?")]})
    assert seen == ["Final Answer: 5 (by large)"]
    assert out["sale_auction"]["execution"] == {"agent": "large", "model_calls": 1, "status": "completed", "outcome": "passed"}
    assert out["sale_auction"]["notes"][-1] == "outcome 'passed' not stored: memory is off (use_memory=False)"
    with pytest.raises(ValueError, match="returned 'ok'; it must return one of \\('passed', 'failed', 'unknown'\\)"):
        middleware_agent(grader=lambda s: "ok").invoke({"messages": [HumanMessage("2 + 3?")]})


def test_middleware_needs_a_human_message() -> None:
    with pytest.raises(SaleError, match="SaleMiddleware found no task"):
        middleware_agent().invoke({"messages": [AIMessage("hello")]})


def test_middleware_approval_pauses_the_agent_run_and_the_override_answers() -> None:
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import Command

    sale = SaleMiddleware(model_factory=factory(), approve_before_execute=True, **SETTINGS)
    agent = create_agent(model=ScriptedChatModel(responder=lambda m: "default model"), tools=[], middleware=[sale],
                         checkpointer=InMemorySaver())
    cfg: Any = {"configurable": {"thread_id": "approve"}}
    paused = agent.invoke({"messages": [HumanMessage("2 + 3?")]}, cfg)
    assert paused["__interrupt__"][0].value["winner"] == "large"
    done = agent.invoke(Command(resume={"winner": "small"}), cfg)
    assert done["messages"][-1].content == "Final Answer: 5 (by small)"
    assert done["sale_auction"]["execution"] == {"agent": "small", "model_calls": 1, "status": "completed", "outcome": "unknown"}
