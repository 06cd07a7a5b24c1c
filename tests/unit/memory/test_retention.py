"""Memory retention (issue 20, finding 10): a count and an age limit, unlabelled auctions pruned first,
graded auctions preferred in retrieval, `sale memory prune`, and the limits applied after each run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sale_graph.memory import AuctionMemory
from sale_graph.memory.retention import AuctionAge, choose_pruned
from tests.unit.memory.helpers import bid

DAY = 86_400.0
NOW = 1_800_000_000.0


def record(memory: AuctionMemory, aid: str, days_ago: float, outcome: str | None = None, task: str | None = None,
           loser: str = "small") -> None:
    ts = NOW - days_ago * DAY
    memory.record_auction(aid, task or f"task {aid} find the capital", "search",
                          [bid("big", won=True, timestamp=ts), bid(loser, timestamp=ts)], outcome=outcome)  # type: ignore[arg-type]


def test_choose_pruned_takes_the_oldest_unlabelled_first() -> None:
    auctions = [
        AuctionAge("graded-old", NOW - 9 * DAY, "passed"),
        AuctionAge("unknown-old", NOW - 5 * DAY, "unknown"),
        AuctionAge("failed-mid", NOW - 4 * DAY, "failed"),
        AuctionAge("unknown-new", NOW - 1 * DAY, "unknown"),
        AuctionAge("graded-new", NOW, "passed"),
    ]
    ids = lambda gone: [a.auction_id for a in gone]  # noqa: E731 - a one-line helper for the asserts
    assert ids(choose_pruned(auctions, 3, None, now=NOW)) == ["unknown-old", "unknown-new"]
    assert ids(choose_pruned(auctions, 2, None, now=NOW)) == ["unknown-old", "unknown-new", "graded-old"]
    assert ids(choose_pruned(auctions, None, 4.5, now=NOW)) == ["graded-old", "unknown-old"]
    assert ids(choose_pruned(auctions, 2, 4.5, now=NOW)) == ["graded-old", "unknown-old", "unknown-new"]
    assert ids(choose_pruned(auctions, 1, None, now=NOW, keep={"unknown-new"})) == [
        "unknown-old", "graded-old", "failed-mid", "graded-new"]
    assert choose_pruned(auctions, 10, 30, now=NOW) == []
    for bad in ({"max_auctions": 0}, {"max_age_days": -1}, {"max_age_days": 0}):
        with pytest.raises(ValueError, match="must be a positive"):
            choose_pruned(auctions, bad.get("max_auctions"), bad.get("max_age_days"), now=NOW)


def test_prune_removes_auctions_with_their_bids_and_says_so(memory: AuctionMemory) -> None:
    record(memory, "graded-old", 9, "passed")
    record(memory, "unknown-old", 5)
    record(memory, "unknown-new", 1)
    record(memory, "graded-new", 0, "failed")
    dry = memory.prune(max_auctions=2, now=NOW, dry_run=True)
    assert (dry.auctions, dry.unlabelled, dry.graded, dry.bids, dry.kept) == (2, 2, 0, 4, 2)
    assert "would prune 2 auction(s)" in dry.note() and memory.count_auctions() == 4
    result = memory.prune(max_auctions=2, now=NOW)
    assert result.note() == ("memory retention (max_auctions=2): pruned 2 auction(s) (2 unlabelled, 0 graded), "
                             "4 bid(s); 2 auction(s) kept")
    assert (memory.count_auctions(), memory.count_strategies()) == (2, 4)
    assert memory.get_auction("unknown-old") == [] and len(memory.get_auction("graded-old")) == 2
    by_age = memory.prune(max_age_days=3, now=NOW)
    assert (by_age.auctions, by_age.graded, by_age.kept) == (1, 1, 1)
    assert [b.auction_id for b in memory.get_auction("graded-new")] == ["graded-new", "graded-new"]
    assert memory.prune(max_auctions=5, max_age_days=30, now=NOW).auctions == 0


def test_retrieval_can_prefer_or_require_graded_auctions(memory: AuctionMemory) -> None:
    task = "find the capital of peru"
    # The unlabelled auction holds small's own losing bid, which the method's order puts first.
    record(memory, "unlabelled", 0, task=task)
    record(memory, "graded", 1, "passed", task="find the capital of peru quickly", loser="mid")
    assert [p.auction_id for p in memory.contrastive_pairs(task, "small", min_similarity=0.5).pairs] == ["unlabelled", "graded"]
    first = memory.contrastive_pairs(task, "small", min_similarity=0.5, graded="first")
    assert [p.auction_id for p in first.pairs] == ["graded", "unlabelled"]
    only = memory.contrastive_pairs(task, "small", min_similarity=0.5, graded="only")
    assert [p.auction_id for p in only.pairs] == ["graded"] and [s.auction_id for s in only.similar] == ["graded"]
    assert [s.auction_id for s in memory.similar_tasks(task, min_similarity=0.5, graded="first")] == ["graded", "unlabelled"]
    with pytest.raises(ValueError, match="graded must be one of"):
        memory.similar_tasks(task, graded="sometimes")  # type: ignore[arg-type]


def test_sale_memory_prune_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sale_graph.cli import main

    store = tmp_path / "memory"
    memory = AuctionMemory(path=store)
    now = time.time()
    for i, (days, outcome) in enumerate([(40, "passed"), (20, None), (10, None), (1, "passed")]):
        memory.record_auction(f"a{i}", f"task number {i}", "", [bid("big", won=True, timestamp=now - days * DAY)],
                              outcome=outcome)  # type: ignore[arg-type]
    del memory
    assert main(["memory", "prune", "--memory-dir", str(store)]) == 2
    assert "needs a limit" in capsys.readouterr().err
    assert main(["memory", "prune", "--memory-dir", str(store), "--max-age-days", "30", "--max-auctions", "2"]) == 0
    out = capsys.readouterr().out
    assert "pruned 2 auction(s) (1 unlabelled, 1 graded), 2 bid(s); 2 auction(s) kept" in out
    reopened = AuctionMemory(path=store)
    assert sorted(reopened.stats()["outcomes"].items()) == [("failed", 0), ("passed", 1), ("unknown", 1)]
    with pytest.raises(SystemExit):
        main(["memory", "prune", "--memory-dir", str(store), "--max-auctions", "0"])


def test_a_run_applies_the_retention_limits_and_notes_them(tmp_path: Path) -> None:
    from sale_graph import SaleContext, build_sale_graph
    from tests.fakes import FakeFactory, pool_of

    memory = AuctionMemory(path=tmp_path / "memory")
    old = time.time() - 50 * DAY
    for i in range(3):
        memory.record_auction(f"old-{i}", f"an old task {i}", "", [bid("small", won=True, timestamp=old + i)])
    factory = FakeFactory({"bid": lambda a, m: "1. answer", "jury": lambda a, m: "SCORE: 3",
                           "execute": lambda a, m: "Final Answer: 4"})
    graph = build_sale_graph(model_factory=factory, memory=memory, tools=[]).compile()
    context = SaleContext(pool=pool_of(("small", 0.05), ("large", 0.36)), check_endpoints=False, memory_max_auctions=2)
    out = graph.invoke({"task": "What is 2 + 2?"}, context=context)
    assert any(n.startswith("memory retention (max_auctions=2): pruned 2 auction(s) (2 unlabelled, 0 graded)")
               for n in out["notes"])
    assert memory.count_auctions() == 2 and memory.get_auction(out["auction_id"])  # the run's own auction is kept
    assert memory.get_auction("old-2") and not memory.get_auction("old-0")
    # By age: everything older than 30 days goes, the run's auction stays.
    out = graph.invoke({"task": "What is 3 + 3?"}, context=SaleContext(
        pool=context.pool, check_endpoints=False, memory_max_age_days=30))
    assert any("pruned 1 auction(s) (1 unlabelled, 0 graded)" in n for n in out["notes"])
    assert memory.count_auctions() == 2


def test_retention_settings_are_checked() -> None:
    from sale_graph import SaleContext

    for bad in ({"memory_max_auctions": 0}, {"memory_max_age_days": 0.0}, {"refine_graded": "sometimes"}):
        with pytest.raises(ValueError):
            SaleContext(**bad)  # type: ignore[arg-type]
