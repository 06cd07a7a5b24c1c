"""The progress events on fake models: every event a run sends matches its declared type, and the CLI formats it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NotRequired, get_origin

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from pydantic import TypeAdapter
from typing_extensions import get_type_hints

from sale_graph import SaleContext, build_sale_graph
from sale_graph.events import EVENT_NAMES, EVENT_TYPES, BidEvent, SaleEvent, describe
from sale_graph.memory import AuctionMemory, StrategyRecord
from tests.fakes import FakeFactory, pool_of, prompt_text

POOL = pool_of(("small", 0.05), ("large", 0.36))
TASK = "What is the capital of Australia?"
WEAK = "guess the answer from memory"
STRONG = "1. search two sources 2. verify they agree 3. answer"
LARGE = "1. search the web 2. verify with a second source 3. answer concisely"
QUIET = {"bid_start", "score", "approve", "remember"}  # sale run prints no line for these


def judge(agent: str, messages: Any) -> str:
    text = prompt_text(messages)
    plans = re.findall(r"Plan ([A-Z]): <strategy-\w+>(.*?)</strategy", text)
    if plans:  # a batched prompt: one line per plan
        return "\n".join(f"{label}: {5 if 'verify' in plan else 1}" for label, plan in plans)
    return "SCORE: 5" if "verify" in text.split("Task:")[-1] else "SCORE: 1"


def factory() -> FakeFactory:
    return FakeFactory({
        "bid": lambda agent, m: WEAK if agent == "small" else LARGE,
        "jury": judge,
        "refine": lambda agent, m: STRONG if "WINNING strategy" in prompt_text(m) else WEAK,
        "execute": lambda agent, m: "Final Answer: Canberra",
    })


def custom_events(graph: Any, inputs: Any, context: SaleContext, config: Any = None) -> list[dict[str, Any]]:
    return [data for mode, data in graph.stream(inputs, config, context=context, stream_mode=["custom", "updates"])
            if mode == "custom"]


@pytest.fixture
def memory(tmp_path: Path) -> AuctionMemory:
    """A memory with a past auction close to TASK, so the cheaper agent refines its bid."""
    mem = AuctionMemory(path=tmp_path / "memory")
    mem.record_auction("past-1", "What is the capital city of Australia?", "search", [
        StrategyRecord(agent="small", strategy=STRONG, cost=0.01, entropy=0.9, value=1.2, won=True),
        StrategyRecord(agent="large", strategy=WEAK, cost=0.2, entropy=0.5, value=0.4, won=False),
    ], outcome="passed")
    return mem


@pytest.fixture
def events(memory: AuctionMemory, tmp_path: Path) -> list[dict[str, Any]]:
    """Every custom event of four runs that together send each event at least once."""
    out: list[dict[str, Any]] = []
    # With the memory: a refinement round, then the execution and the memory write.
    graph = build_sale_graph(model_factory=factory(), memory=memory, tools=[]).compile()
    out += custom_events(graph, {"task": TASK, "domain": "search"}, SaleContext(pool=POOL, check_endpoints=False))
    # A batched jury, and a refinement skipped for want of similar past tasks.
    graph = build_sale_graph(model_factory=factory(), memory=AuctionMemory(path=tmp_path / "empty"), tools=[]).compile()
    out += custom_events(graph, {"task": TASK, "domain": "search"},
                         SaleContext(pool=POOL, check_endpoints=False, jury_mode="batched"))
    # The approval pause, resumed with another winner.
    graph = build_sale_graph(model_factory=factory(), tools=[]).compile(checkpointer=InMemorySaver())
    ctx = SaleContext(pool=POOL, check_endpoints=False, use_memory=False, approve_before_execute=True)
    cfg = {"configurable": {"thread_id": "events"}}
    out += custom_events(graph, {"task": TASK}, ctx, cfg)
    out += custom_events(graph, Command(resume={"winner": "small"}), ctx, cfg)
    return out


def declared_keys(cls: type) -> tuple[set[str], set[str]]:
    """The required and all keys of a TypedDict, read from its annotations (``NotRequired`` marks the optional)."""
    hints = get_type_hints(cls, include_extras=True)
    required = {k for k, hint in hints.items() if get_origin(hint) is not NotRequired}
    return required, set(hints)


def test_every_event_is_declared_and_sent(events: list[dict[str, Any]]) -> None:
    assert set(EVENT_TYPES) == set(EVENT_NAMES) and len(EVENT_NAMES) == 12
    assert {e["event"] for e in events} == set(EVENT_NAMES)
    statuses = {(e["event"], e.get("status")) for e in events}
    assert {("refine", "ok"), ("refine", "skipped")} <= statuses
    assert {e["overridden"] for e in events if e["event"] == "approve"} == {True}


def test_every_sent_event_matches_its_declared_type(events: list[dict[str, Any]]) -> None:
    for event in events:
        cls = EVENT_TYPES[event["event"]]
        required, allowed = declared_keys(cls)
        assert required <= set(event) <= allowed, (event, sorted(required), sorted(allowed))
        TypeAdapter(cls).validate_python(event)  # and each value has its declared type


def test_the_cli_formats_every_event(events: list[dict[str, Any]]) -> None:
    seen = set()
    for event in events:
        line = describe(event)
        seen.add(event["event"])
        if event["event"] in QUIET:
            assert line is None
        else:
            assert isinstance(line, str) and line.strip(), event
    assert seen == set(EVENT_NAMES)


def test_a_failed_bid_and_a_missing_score_read_as_such() -> None:
    failed = BidEvent(event="bid", agent="small", tokens=0, reasoning_tokens=None, entropy=0.0, entropy_source="text",
                      status="error", error="TimeoutError: slow", truncated=None, retries=["timeout, retried"])
    assert describe(failed) == "bid from small FAILED TimeoutError: slow"
    missing: SaleEvent = {"event": "jury", "judge": "large", "bidder": "small", "round": "original", "likert": None,
                          "status": "missing", "reason": "unparseable", "answer_format": "text"}
    assert describe(missing) == "jury: large scores small (original): missing (unparseable)"
