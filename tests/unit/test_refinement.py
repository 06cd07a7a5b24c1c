"""Refinement from the auction memory, on fake models and a real (persistent, temp) Chroma store."""

from __future__ import annotations

from pathlib import Path

import pytest

from sale_graph import SaleContext, build_sale_graph
from sale_graph.memory import AuctionMemory, StrategyRecord
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


def run(memory: AuctionMemory, refine_responder) -> tuple[dict, FakeFactory]:
    factory = FakeFactory({"bid": bids, "jury": judge, "refine": refine_responder, "execute": lambda a, m: "Final Answer: Canberra"})
    graph = build_sale_graph(model_factory=factory, memory=memory, tools=[]).compile()
    out = graph.invoke({"task": TASK, "domain": "search", "gold": ["Canberra"]},
                       context=SaleContext(pool=POOL, check_endpoints=False))
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
