"""Fast tests of the auction memory's logic: records, pair selection, similarity floor, export.

No model and no sockets: an in-process ``chromadb.EphemeralClient`` and a tiny
deterministic bag-of-words embedder stand in for the real ones.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from sale_graph.memory import (
    AuctionMemory,
    MemoryStoreError,
    SimilarTask,
    StrategyRecord,
    select_contrastive_pairs,
    strategy_id,
)

pytestmark = pytest.mark.disable_socket


class BagOfWordsEmbeddings(Embeddings):
    """Deterministic toy embedder: hashed word counts, L2-normalised (texts sharing words are close)."""

    model_name = "test-bag-of-words-64"

    def _vec(self, text: str) -> list[float]:
        v = np.zeros(64)
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            v[int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
        n = np.linalg.norm(v)
        return (v / n if n else v).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)


@pytest.fixture
def memory() -> AuctionMemory:
    import chromadb
    from chromadb.config import Settings

    client = chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))
    # EphemeralClient instances share one in-process system: a unique prefix isolates each test.
    return AuctionMemory(
        client=client, embeddings=BagOfWordsEmbeddings(), collection_prefix=f"t{uuid.uuid4().hex[:12]}"
    )


def bid(agent: str, won: bool = False, round_: str = "original", value: float = 0.5, cost: float = 0.1, **kw) -> StrategyRecord:
    return StrategyRecord(
        agent=agent,
        strategy=f"{agent} plan ({round_})",
        cost=cost,
        entropy=0.4,
        value=value,
        round=round_,  # type: ignore[arg-type]
        jury_scores={"small": 3, "large": 4.5},
        won=won,
        **kw,
    )


def sim(aid: str, s: float) -> SimilarTask:
    return SimilarTask(aid, f"task {aid}", "", "search", s, "unknown", 0.0)


# ----------------------------------------------------------------- records


def test_record_round_trips_through_chroma_and_dict() -> None:
    rec = bid("qwen-4b", won=True, auction_id="a1", task="find x", domain="search", task_id="t1", outcome="passed")
    rid, doc, meta = rec.to_chroma()
    assert all(isinstance(v, (str, int, float, bool)) for v in meta.values())
    assert json.loads(meta["jury_scores"]) == {"large": 4.5, "small": 3.0}
    assert StrategyRecord.from_chroma(doc, meta) == rec
    assert StrategyRecord.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec
    assert rid == strategy_id("a1", "qwen-4b", "original")


def test_ids_are_deterministic_and_separator_safe() -> None:
    assert strategy_id("a", "b", "original") == strategy_id("a", "b", "original")
    assert strategy_id("a::b", "c", "original") != strategy_id("a", "b::c", "original")
    assert strategy_id("a", "b", "original") != strategy_id("a", "b", "refined")


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"round": "final"}, "round must be one of"),
        ({"outcome": "ok"}, "outcome must be one of"),
        ({"cost": float("nan")}, "cost must be finite"),
        ({"agent": " "}, "agent must be a non-empty"),
        ({"jury_scores": {"j": "high"}}, "jury_scores['j'] must be a number"),
    ],
)
def test_bad_records_are_rejected_with_the_field_named(kwargs: dict, fragment: str) -> None:
    base = dict(agent="a", strategy="s", cost=0.1, entropy=0.2, value=0.3)
    base.update(kwargs)
    with pytest.raises(ValueError, match=re.escape(fragment)):
        StrategyRecord(**base)


def test_from_dict_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="unknown StrategyRecord field"):
        StrategyRecord.from_dict({"agent": "a", "strategy": "s", "cost": 1, "entropy": 0, "value": 0, "wonn": True})


# ----------------------------------------------------------------- pure pair selection


def test_pairs_prefer_own_losing_bid_then_own_win_then_others() -> None:
    bids = [
        bid("big", won=True, auction_id="A", outcome="unknown"),
        bid("small", auction_id="A", outcome="unknown"),
        bid("mid", auction_id="A", outcome="unknown"),
        bid("small", won=True, auction_id="B", outcome="passed"),
        bid("mid", auction_id="B", outcome="passed"),
    ]
    pairs, why = select_contrastive_pairs([sim("B", 0.99), sim("A", 0.9)], bids, agent="small", max_pairs=5)
    assert why == ""
    assert [(p.auction_id, p.winner.agent, p.loser.agent, p.involves) for p in pairs] == [
        ("A", "big", "small", "loser"),
        ("B", "small", "mid", "winner"),
        ("A", "big", "mid", None),
    ]


def test_pairs_never_use_a_failed_winner_and_prefer_passed() -> None:
    bids = [
        bid("big", won=True, auction_id="F", outcome="failed"),
        bid("small", auction_id="F", outcome="failed"),
        bid("big", won=True, auction_id="U", outcome="unknown"),
        bid("small", auction_id="U", outcome="unknown"),
        bid("big", won=True, auction_id="P", outcome="passed"),
        bid("small", auction_id="P", outcome="passed"),
    ]
    similar = [sim("F", 0.99), sim("U", 0.98), sim("P", 0.9)]
    pairs, _ = select_contrastive_pairs(similar, bids, agent="small", max_pairs=5)
    assert [p.auction_id for p in pairs] == ["P", "U"]
    assert all(p.winner.outcome != "failed" for p in pairs)


def test_max_pairs_and_tie_break_on_similarity_then_hardest_loser() -> None:
    bids = [
        bid("big", won=True, auction_id="A"),
        bid("x", auction_id="A", value=0.2),
        bid("y", auction_id="A", value=0.9),
        bid("big", won=True, auction_id="B"),
        bid("z", auction_id="B", value=0.99),
    ]
    pairs, _ = select_contrastive_pairs([sim("A", 0.95), sim("B", 0.9)], bids, agent="small", max_pairs=2)
    assert [(p.auction_id, p.loser.agent) for p in pairs] == [("A", "y"), ("A", "x")]
    with pytest.raises(ValueError, match="max_pairs"):
        select_contrastive_pairs([], [], agent="small", max_pairs=0)


def test_refined_winner_pairs_with_its_own_original_bid() -> None:
    bids = [
        bid("small", auction_id="A", round_="original"),
        bid("small", won=True, auction_id="A", round_="refined"),
        bid("big", auction_id="A"),
    ]
    pairs, _ = select_contrastive_pairs([sim("A", 0.95)], bids, agent="small", max_pairs=1)
    assert (pairs[0].winner.round, pairs[0].loser.agent, pairs[0].loser.round) == ("refined", "small", "original")


def test_empty_selection_says_why() -> None:
    bids = [
        bid("big", auction_id="NOWIN"),
        bid("big", won=True, auction_id="FAIL", outcome="failed"),
        bid("small", auction_id="FAIL", outcome="failed"),
        bid("big", won=True, auction_id="ALONE"),
    ]
    pairs, why = select_contrastive_pairs(
        [sim("NOWIN", 0.9), sim("FAIL", 0.9), sim("ALONE", 0.9), sim("GONE", 0.9)], bids, agent="small"
    )
    assert pairs == []
    for fragment in ("4 similar", "1 with no stored bids", "1 with no winning bid", "1 whose winner failed", "1 with no losing bid"):
        assert fragment in why


# ----------------------------------------------------------------- on an in-process Chroma


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


def test_export_import_round_trip_is_exact(memory: AuctionMemory, tmp_path: Path) -> None:
    memory.record_auction("a2", "second task ünïcode", "coding", [bid("big", won=True, timestamp=2.5), bid("small", timestamp=2.5)])
    memory.record_auction("a1", "first task", "search", [bid("big", won=True, timestamp=1.0), bid("small", round_="refined", timestamp=1.1)], task_id="q1")
    memory.update_outcome("a1", "failed")
    memory.record_auction("a3", "orphan task with no bids", "", [])
    first = tmp_path / "one.jsonl"
    assert memory.export_jsonl(first) == 4
    before = memory.stats()

    memory.clear()
    assert (memory.count_auctions(), memory.count_strategies()) == (0, 0)
    assert memory.import_jsonl(first) == (3, 4)
    assert memory.import_jsonl(first) == (3, 4)  # idempotent
    assert (memory.count_auctions(), memory.count_strategies()) == (3, 4)
    second = tmp_path / "two.jsonl"
    memory.export_jsonl(second)
    assert first.read_bytes() == second.read_bytes()
    assert memory.stats() == before
    lines = [json.loads(x) for x in first.read_text(encoding="utf-8").splitlines()]
    assert [x["kind"] for x in lines] == ["header", "auction", "strategy", "strategy", "auction", "strategy", "strategy", "auction"]
    assert lines[1]["auction_id"] == "a1" and lines[1]["outcome"] == "failed"


def test_import_validates_whole_file_before_writing(memory: AuctionMemory, tmp_path: Path) -> None:
    good = bid("big", auction_id="a1", task="t").to_dict()
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps({"kind": "strategy", **good}) + "\n" + json.dumps({"kind": "strategy", **{**good, "round": "third"}}) + "\n"
    )
    with pytest.raises(MemoryStoreError, match=r"bad.jsonl:2: .*round must be one of"):
        memory.import_jsonl(path)
    assert memory.count_strategies() == 0
    with pytest.raises(FileNotFoundError, match="does not exist"):
        memory.import_jsonl(tmp_path / "missing.jsonl")


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
