"""Contrastive pair selection (pure): ordering, failed winners, limits, and why there are none."""

from __future__ import annotations

import pytest

from sale_graph.memory import select_contrastive_pairs
from tests.unit.memory.helpers import bid, sim

pytestmark = pytest.mark.disable_socket


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


def test_own_pair_is_kept_when_others_are_more_similar() -> None:
    # Three auctions of other agents, all more similar than the one auction where "small" bid.
    bids = [bid("big", won=True, auction_id=a, outcome="passed") for a in ("X", "Y", "Z")]
    bids += [bid("mid", auction_id=a, outcome="passed", value=0.9) for a in ("X", "Y", "Z")]
    bids += [bid("big", won=True, auction_id="OWN"), bid("small", auction_id="OWN", value=0.1)]
    similar = [sim("X", 0.99), sim("Y", 0.98), sim("Z", 0.97), sim("OWN", 0.80)]
    # Ranked for an agent that never bid, the own auction's pair is crowded out of the top 2.
    others, _ = select_contrastive_pairs(similar, bids, agent="nobody", max_pairs=2)
    assert [p.auction_id for p in others] == ["X", "Y"] and all(p.involves is None for p in others)
    pairs, _ = select_contrastive_pairs(similar, bids, agent="small", max_pairs=2)
    assert [(p.auction_id, p.involves) for p in pairs] == [("OWN", "loser"), ("X", None)]
    assert (pairs[0].own_loser, pairs[0].own_winner, pairs[1].own_loser, pairs[1].own_winner) == (True, False, False, False)


def test_pairs_say_which_side_is_the_agents_own() -> None:
    bids = [
        bid("small", auction_id="A", round_="original"),
        bid("small", won=True, auction_id="A", round_="refined"),
        bid("big", won=True, auction_id="B"),
        bid("mid", auction_id="B"),
        bid("small", won=True, auction_id="C"),
        bid("big", auction_id="C"),
    ]
    pairs, _ = select_contrastive_pairs([sim("A", 0.9), sim("B", 0.9), sim("C", 0.9)], bids, agent="small", max_pairs=5)
    sides = {(p.auction_id, p.loser.agent): (p.agent, p.own_winner, p.own_loser) for p in pairs}
    assert sides == {
        ("A", "small"): ("small", True, True),  # its refined bid won over its own original one
        ("C", "big"): ("small", True, False),
        ("B", "mid"): ("small", False, False),
    }
