"""The memory on an in-process Chroma: recording, outcomes, the similarity floor, stats, embedder checks."""

from __future__ import annotations

import pytest

from sale_graph.memory import AuctionMemory, MemoryStoreError
from tests.unit.memory.helpers import BagOfWordsEmbeddings, bid

pytestmark = pytest.mark.disable_socket


def test_record_fills_fields_and_is_idempotent(memory: AuctionMemory) -> None:
    bids = [bid("big", won=True), bid("small")]
    ids1 = memory.record_auction("a1", "find the capital of peru", "search", bids, task_id="q7")
    ids2 = memory.record_auction("a1", "find the capital of peru", "search", bids, task_id="q7")
    assert ids1 == ids2
    assert (memory.count_auctions(), memory.count_strategies()) == (1, 2)
    stored = memory.get_auction("a1")
    assert [(b.agent, b.won, b.task, b.task_id, b.domain) for b in stored] == [
        ("big", True, "find the capital of peru", "q7", "search"),
        ("small", False, "find the capital of peru", "q7", "search"),
    ]
    assert stored[0].jury_scores == {"large": 4.5, "small": 3.0}


def test_record_rejects_conflicts_and_duplicates(memory: AuctionMemory) -> None:
    with pytest.raises(ValueError, match="auction_id='other'"):
        memory.record_auction("a1", "t", "search", [bid("big", auction_id="other")])
    with pytest.raises(ValueError, match="one bid per round"):
        memory.record_auction("a1", "t", "search", [bid("big"), bid("big")])
    with pytest.raises(ValueError, match="task must be a non-empty"):
        memory.record_auction("a1", "  ", "search", [bid("big")])
    assert memory.count_strategies() == 0


def test_bids_written_incrementally_and_outcome_kept(memory: AuctionMemory) -> None:
    task = "sort a list of intervals by start"
    memory.record_auction("a1", task, "coding", [bid("small"), bid("big")])  # bids exist, nothing won yet
    memory.record_auction("a1", task, "coding", [bid("small", round_="refined", won=True)])
    assert memory.update_outcome("a1", "passed") == 3
    # Re-recording after the outcome does not reset it to "unknown".
    memory.record_auction("a1", task, "coding", [bid("small"), bid("big")])
    assert {b.outcome for b in memory.get_auction("a1")} == {"passed"}
    assert memory.stats()["outcomes"] == {"passed": 1, "failed": 0, "unknown": 0}
    with pytest.raises(KeyError, match="'nope' is not in the memory"):
        memory.update_outcome("nope", "failed")
    with pytest.raises(ValueError, match="outcome"):
        memory.update_outcome("a1", "great")  # type: ignore[arg-type]


def test_similarity_floor_filters_and_reasons(memory: AuctionMemory) -> None:
    result = memory.contrastive_pairs("anything", "small")
    assert (result.reason_code, bool(result)) == ("memory_empty", False)
    assert "memory is empty" in result.reason

    memory.record_auction("a1", "capital city of peru", "search", [bid("big", won=True), bid("small")])
    memory.record_auction("a2", "reverse a linked list in python", "coding", [bid("big", won=True), bid("mid")])

    near = memory.similar_tasks("capital city of peru today", k=5, min_similarity=0.5)
    assert [s.auction_id for s in near] == ["a1"]
    assert 0.5 <= near[0].similarity <= 1.0
    assert memory.similar_tasks("capital city of peru", k=5, min_similarity=0.999)[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert memory.similar_tasks("capital city of peru", min_similarity=0.0, domain="coding")[0].auction_id == "a2"
    assert memory.similar_tasks("capital city of peru", min_similarity=0.0, exclude_auction_ids=["a1"])[0].auction_id == "a2"

    far = memory.contrastive_pairs("zebra migration statistics", "small", min_similarity=0.8)
    assert far.reason_code == "no_similar_task"
    assert "above similarity 0.8" in far.reason and "closest" in far.reason

    ok = memory.contrastive_pairs("capital city of peru today", "small", min_similarity=0.5)
    assert ok.reason_code == "ok" and ok.has_own_pair
    assert [(p.winner.agent, p.loser.agent, p.involves) for p in ok] == [("big", "small", "loser")]
    assert ok.pairs[0].winner.strategy == ok.pairs[0].winner_strategy == "big plan (original)"
    assert (ok.pairs[0].past_task, ok.pairs[0].loser_strategy) == ("capital city of peru", "small plan (original)")


def test_similar_tasks_without_pair_explains(memory: AuctionMemory) -> None:
    memory.record_auction("a1", "capital city of peru", "search", [bid("big"), bid("small")])  # no winner yet
    result = memory.contrastive_pairs("capital city of peru", "small", min_similarity=0.5)
    assert result.reason_code == "no_pair"
    assert "no winning bid recorded" in result.reason
    assert [s.auction_id for s in result.similar] == ["a1"]


def test_stats_counts_per_agent(memory: AuctionMemory) -> None:
    memory.record_auction("a1", "t one", "search", [bid("big", won=True), bid("small"), bid("small", round_="refined")])
    memory.record_auction("a2", "t two", "coding", [bid("small", won=True), bid("big")])
    s = memory.stats()
    assert (s["auctions"], s["strategies"]) == (2, 5)
    assert s["agents"] == {
        "big": {"bids": 2, "wins": 1, "losses": 1, "refined": 0},
        "small": {"bids": 3, "wins": 1, "losses": 2, "refined": 1},
    }
    assert s["domains"] == {"coding": 1, "search": 1}


def test_switching_embedder_on_a_memory_is_refused(memory: AuctionMemory) -> None:
    class Other(BagOfWordsEmbeddings):
        model_name = "another-model"

    with pytest.raises(MemoryStoreError, match="holds embeddings from 'test-bag-of-words-64'"):
        AuctionMemory(client=memory.client, embeddings=Other(), collection_prefix=memory.collection_prefix)


def test_contrastive_pairs_only_search_the_tasks_domain(memory: AuctionMemory) -> None:
    # The other-domain and no-domain tasks are exact matches; the search one is less similar.
    memory.record_auction("a-coding", "capital city of peru", "coding", [bid("big", won=True), bid("small")])
    memory.record_auction("a-none", "capital city of peru", "", [bid("big", won=True), bid("mid")])
    memory.record_auction("a-search", "capital city of peru today please", "search", [bid("big", won=True), bid("small")])
    task = "capital city of peru"
    # k=1: the domain is a filter of the query itself, so the top 1 is never an excluded task.
    search = memory.contrastive_pairs(task, "small", k=1, min_similarity=0.3, domain="search")
    assert [s.auction_id for s in search.similar] == ["a-search"]
    assert {p.auction_id for p in search} == {"a-search"}
    # No domain matches only the tasks recorded with none.
    none = memory.contrastive_pairs(task, "small", k=5, min_similarity=0.3, domain="")
    assert [s.auction_id for s in none.similar] == ["a-none"]
    assert memory.similar_tasks(task, k=5, min_similarity=0.3, domain="coding")[0].auction_id == "a-coding"
    other = memory.contrastive_pairs(task, "small", k=5, min_similarity=0.3, domain="zoology")
    assert other.reason_code == "no_similar_task" and "in domain 'zoology'" in other.reason
    # None still searches every domain.
    assert {s.auction_id for s in memory.similar_tasks(task, k=5, min_similarity=0.3)} == {"a-coding", "a-none", "a-search"}


def test_own_pair_survives_more_similar_pairs_of_others(memory: AuctionMemory) -> None:
    task = "reverse a linked list in python"
    for i in range(3):  # exact matches, bids of other agents only
        memory.record_auction(f"x{i}", task, "coding", [bid("big", won=True), bid("mid", value=0.9)], outcome="passed")
    memory.record_auction("own", task + " without recursion quickly", "coding", [bid("big", won=True), bid("small", value=0.1)])
    crowded = memory.contrastive_pairs(task, "nobody", k=5, min_similarity=0.3, max_pairs=2, domain="coding")
    assert all(p.auction_id != "own" for p in crowded) and not crowded.has_own_pair
    result = memory.contrastive_pairs(task, "small", k=5, min_similarity=0.3, max_pairs=2, domain="coding")
    assert result.has_own_pair and "1 with 'small'" in result.reason
    own = [p for p in result if p.involves is not None]
    assert [(p.auction_id, p.loser.agent, p.own_loser, p.own_winner) for p in own] == [("own", "small", True, False)]
    assert result.similar[-1].auction_id == "own"  # it really was the least similar task retrieved


def test_degraded_flag_is_stored_kept_and_counted(memory: AuctionMemory) -> None:
    memory.record_auction("a1", "t one", "search", [bid("big", won=True), bid("small")], degraded=True, degraded_reason="quorum 1/3")
    memory.record_auction("a2", "t two", "search", [bid("big", won=True), bid("small")])
    assert memory.stats()["degraded"] == 1
    memory.record_auction("a1", "t one", "search", [bid("big", won=True)])  # None keeps the stored flag
    memory.update_outcome("a1", "passed")
    assert memory.stats()["degraded"] == 1
    memory.record_auction("a2", "t two", "search", [], degraded=True, degraded_reason="r")
    memory.record_auction("a1", "t one", "search", [], degraded=False)
    assert memory.stats()["degraded"] == 1
    with pytest.raises(ValueError, match="without degraded=True"):
        memory.record_auction("a3", "t three", "search", [bid("big")], degraded_reason="why")
    with pytest.raises(ValueError, match="degraded must be"):
        memory.record_auction("a3", "t three", "search", [bid("big")], degraded="yes")  # type: ignore[arg-type]
    assert memory.count_auctions() == 2
