"""Refinement from the auction memory, on fake models and a real (persistent, temp) Chroma store."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from sale_graph import SaleContext, Weights, build_sale_graph
from sale_graph.memory import AuctionMemory, StrategyRecord
from sale_graph.nodes.refine import RefineTask, make_refine_node
from sale_graph.prompts import RefineExample, refine_messages
from sale_graph.services import SaleServices
from tests.fakes import FakeFactory, pool_of, prompt_text

POOL = pool_of(("small", 0.05), ("large", 0.36))
WEAK = "guess the answer from memory"
STRONG = "1. search two sources 2. verify they agree 3. answer"
LARGE = "1. search the web 2. verify with a second source 3. answer concisely"
PAST_TASK = "What is the capital city of Australia?"
TASK = "What is the capital of Australia?"


@pytest.fixture
def memory(tmp_path: Path) -> AuctionMemory:
    mem = AuctionMemory(path=tmp_path / "memory")
    mem.record_auction("past-1", PAST_TASK, "search", [
        StrategyRecord(agent="small", strategy=STRONG, cost=0.01, entropy=0.9, value=1.2, won=True),
        StrategyRecord(agent="large", strategy=WEAK, cost=0.2, entropy=0.5, value=0.4, won=False),
    ], outcome="passed")
    mem.record_auction("past-2", PAST_TASK + " Answer briefly.", "search", [
        StrategyRecord(agent="large", strategy=LARGE, cost=0.2, entropy=0.9, value=1.2, won=True),
        StrategyRecord(agent="small", strategy=WEAK, cost=0.01, entropy=0.5, value=0.3, won=False),
    ], outcome="passed")
    return mem


def judge(agent: str, messages) -> str:
    text = prompt_text(messages)
    return "SCORE: 5" if "verify" in text else "SCORE: 1"


def bids(agent: str, messages) -> str:
    return WEAK if agent == "small" else LARGE


def run(memory: AuctionMemory, refine_responder, domain: str = "search") -> tuple[dict, FakeFactory]:
    factory = FakeFactory({"bid": bids, "jury": judge, "refine": refine_responder, "execute": lambda a, m: "Final Answer: Canberra"})
    graph = build_sale_graph(model_factory=factory, memory=memory, tools=[]).compile()
    out = graph.invoke({"task": TASK, "domain": domain, "gold": ["Canberra"]},
                       context=SaleContext(pool=POOL, weights=Weights(w_c=0.01), check_endpoints=False))
    return out, factory


def test_refined_bid_takes_the_task_its_original_lost(memory: AuctionMemory) -> None:
    seen_prompts: list[str] = []

    def refine(agent: str, messages) -> str:
        text = prompt_text(messages)
        seen_prompts.append(text)
        return STRONG if "WINNING strategy" in text else WEAK

    out, factory = run(memory, refine)
    assert out["selection"]["provisional_winner"] == "large"
    assert out["selection"]["winner"] == "small" and out["selection"]["round"] == "refined"
    assert out["refinement"]["status"] == "done" and "took the task" in out["refinement"]["outcome"]
    assert out["refinement"]["agents"]["small"]["pairs"] >= 1
    # The contrastive prompt held a past winner and loser, and the agent's own losing bid came first.
    assert STRONG in seen_prompts[0] and WEAK in seen_prompts[0]
    # Only the cheaper agent paid for refinement; its refined bid was judged by every agent.
    refine_calls = [(a, p) for a, p in factory.calls if p == "refine"]
    assert refine_calls == [("small", "refine")]
    assert {(e["phase"], e["agent"]) for e in out["ledger"] if e["phase"] == "refine"} == {("refine", "small"), ("refine", "large")}
    assert out["execution"]["agent"] == "small" and out["execution"]["outcome"] == "passed"
    # Remembered: both original bids and the refined one, the refined one labelled as the winner.
    stored = memory.get_auction(out["auction_id"])
    labels = {(b.agent, b.round): b.won for b in stored}
    assert {b.outcome for b in stored} == {"passed"}
    assert labels == {("small", "original"): False, ("large", "original"): False, ("small", "refined"): True}


def test_refinement_that_cannot_help_keeps_provisional_winner(memory: AuctionMemory) -> None:
    out, _ = run(memory, lambda agent, messages: WEAK)
    assert out["selection"]["winner"] == "large" and out["selection"]["round"] == "original"
    assert out["refinement"]["outcome"] == "no refined bid beat the provisional winner"
    assert any(b["round"] == "refined" for b in out["bids"])


def test_no_similar_task_skips_refinement_and_says_why(tmp_path: Path) -> None:
    empty = AuctionMemory(path=tmp_path / "empty")
    out, factory = run(empty, lambda a, m: STRONG)
    assert out["selection"]["winner"] == "large"
    assert out["refinement"]["agents"]["small"]["status"] == "skipped"
    assert "no past task" in out["refinement"]["agents"]["small"]["reason"]
    assert not [c for c in factory.calls if c[1] == "refine"]


def test_cheapest_winner_pays_nothing_for_refinement(tmp_path: Path) -> None:
    mem = AuctionMemory(path=tmp_path / "m")
    factory = FakeFactory({"bid": lambda a, m: STRONG, "jury": judge, "refine": lambda a, m: STRONG,
                           "execute": lambda a, m: "Final Answer: Canberra"})
    graph = build_sale_graph(model_factory=factory, memory=mem, tools=[]).compile()
    out = graph.invoke({"task": TASK}, context=SaleContext(pool=POOL, check_endpoints=False))
    assert out["selection"]["winner"] == "small"
    assert out["refinement"] == {"status": "skipped", "reason": "the provisional winner is the cheapest agent"}
    assert not [c for c in factory.calls if c[1] == "refine"]


def test_refine_prompt_marks_the_agents_own_strategies(memory: AuctionMemory) -> None:
    seen: list[str] = []

    def refine(agent: str, messages) -> str:
        seen.append(prompt_text(messages))
        return STRONG

    run(memory, refine)
    # past-2: the agent ("small") lost to large; past-1: it won against large.
    assert f"WINNING strategy: {LARGE}\n  LOSING strategy (yours): {WEAK}" in seen[0]
    assert f"WINNING strategy (yours): {STRONG}\n  LOSING strategy: {WEAK}" in seen[0]
    assert seen[0].index("LOSING strategy (yours)") < seen[0].index("WINNING strategy (yours)")  # own losing bid first


def test_refine_messages_render_own_sides_and_accept_plain_triples() -> None:
    text = refine_messages("new task", "my plan", [
        RefineExample("past one", "plan W", "plan L", own_loser=True),
        RefineExample("past two", "plan W2", "plan L2", own_winner=True, own_loser=True),
        ("past three", "plan W3", "plan L3"),
    ])[0][1]
    assert "Example 1. Past task: past one\n  WINNING strategy: plan W\n  LOSING strategy (yours): plan L" in text
    assert "Example 2. Past task: past two\n  WINNING strategy (yours): plan W2\n  LOSING strategy (yours): plan L2" in text
    assert "Example 3. Past task: past three\n  WINNING strategy: plan W3\n  LOSING strategy: plan L3" in text
    assert text.endswith("Improved plan:\n1.")


def test_refinement_only_uses_past_tasks_of_the_same_domain(memory: AuctionMemory) -> None:
    out, factory = run(memory, lambda a, m: STRONG, domain="coding")  # the memory holds search tasks only
    entry = out["refinement"]["agents"]["small"]
    assert entry["status"] == "skipped" and "in domain 'coding'" in entry["reason"]
    assert not [c for c in factory.calls if c[1] == "refine"]


def test_failed_refined_bid_is_noted(memory: AuctionMemory) -> None:
    out, _ = run(memory, lambda agent, messages: "")
    assert out["refinement"]["agents"]["small"]["status"] == "error"
    assert "refined bid of small failed: the agent returned an empty strategy" in out["notes"]
    assert out["selection"]["winner"] == "large"


def test_refine_node_refuses_to_run_without_memory() -> None:
    node = make_refine_node(SaleServices(model_factory=FakeFactory({})))
    runtime = SimpleNamespace(context=SaleContext(pool=POOL, check_endpoints=False, use_memory=False))
    payload = RefineTask(agent="small", auction_id="a1", task=TASK, own_strategy=WEAK, domain=None)
    with pytest.raises(RuntimeError, match="auction memory off"):
        node(payload, runtime)
